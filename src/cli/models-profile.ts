/**
 * `inflow models publish --reference-data <file>`: the version's reference profile, built from
 * reference rows at publish time and shipped in the version folder (src/monitoring).
 */
import { readFile } from 'node:fs/promises';
import { InflowError } from '../errors.ts';
import type { PublishFile } from '../delivery/index.ts';
import { buildReferenceProfile, PROFILE_FILE, parseReferenceData } from '../monitoring/reference-profile.ts';

/** Reads reference rows from `path` and returns the profile as a version-folder file, with a line saying what it holds. */
export async function referenceProfileFile(path: string, categorical: readonly string[]): Promise<{ file: PublishFile; summary: string }> {
  const text = await readFile(path, 'utf8').catch((error: unknown) => {
    throw new InflowError(
      'INVALID_ARGUMENT',
      `--reference-data ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  });
  const profile = buildReferenceProfile(parseReferenceData(text, path), { source: path, categorical });
  const inputs = Object.keys(profile.inputs).length;
  const outputs = Object.keys(profile.outputs).length;
  return {
    file: { path: PROFILE_FILE, data: Buffer.from(JSON.stringify(profile)) },
    summary: `reference profile of ${profile.rows} rows (${inputs} input feature${inputs === 1 ? '' : 's'}, ${outputs} output${outputs === 1 ? '' : 's'}${outputs === 0 ? ': no prediction drift' : ''})`,
  };
}
