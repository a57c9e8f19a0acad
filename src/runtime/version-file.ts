/** Files of a version folder: the path rule every platform's `file` option follows, and reading one. */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { InflowError } from '../errors.ts';
import { isInsideRelative } from './signature-check.ts';

/** A `file` option: a relative path inside the version folder (no absolute paths, no `..`). */
export const versionFile = z.string().refine(isInsideRelative, 'must be a relative path inside the version folder');

/** Reads a text file of the version folder; a missing or unreadable file is INVALID_CONFIG naming it. */
export async function readVersionFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InflowError(
      'INVALID_CONFIG',
      code === 'ENOENT' ? `${what} ${path} does not exist` : `cannot read ${what} ${path}: ${String(code)}`,
      { cause: error },
    );
  }
}
