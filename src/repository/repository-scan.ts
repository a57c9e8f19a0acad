/**
 * Reading a model repository from disk: model folders, their config.yaml, and version folders
 * with a fingerprint (names, sizes, mtimes) so a changed or still-being-written version is seen.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { parseConfigText, validateConfig } from '../config/load-config.ts';
import { InflowError } from '../errors.ts';
import { MODEL_NAME, type ModelConfig, modelConfigSchema, VERSION_DIR } from './model-config.ts';

export interface VersionOnDisk {
  version: number;
  dir: string;
  /** Changes when any file in the version folder changes. */
  fingerprint: string;
  /** Newest file modification time, ms since the epoch. */
  newestMtimeMs: number;
}

export interface ModelOnDisk {
  name: string;
  dir: string;
  /** Hash of config.yaml's text (undefined when missing). */
  configHash: string | undefined;
  config: ModelConfig | undefined;
  configError: InflowError | undefined;
  versions: VersionOnDisk[];
}

/** Resolves `child` under `root`, refusing anything that escapes it (symlinks are not followed here). */
export function insideRoot(root: string, child: string): string {
  const full = resolve(root, child);
  const rel = relative(resolve(root), full);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new InflowError('INVALID_ARGUMENT', `path "${child}" is outside the model repository ${root}`);
  }
  return full;
}

async function walkFiles(dir: string, depth = 0): Promise<Array<{ path: string; size: number; mtimeMs: number }>> {
  if (depth > 8) return [];
  const out: Array<{ path: string; size: number; mtimeMs: number }> = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walkFiles(path, depth + 1)));
    else if (entry.isFile()) {
      const s = await stat(path);
      out.push({ path, size: s.size, mtimeMs: s.mtimeMs });
    }
  }
  return out;
}

/**
 * A version folder holding this file was written completely elsewhere and renamed in whole
 * (model delivery does that): it is settled at once, whatever its files' modification times.
 */
export const COMPLETE_MARKER = '.inflow-complete';

async function scanVersion(dir: string, version: number): Promise<VersionOnDisk> {
  const files = (await walkFiles(dir)).sort((a, b) => (a.path < b.path ? -1 : 1));
  const hash = createHash('sha1');
  let newest = 0;
  let complete = false;
  for (const f of files) {
    const name = relative(dir, f.path);
    hash.update(`${name}\0${f.size}\0${f.mtimeMs}\n`);
    newest = Math.max(newest, f.mtimeMs);
    if (name === COMPLETE_MARKER) complete = true;
  }
  return { version, dir, fingerprint: hash.digest('hex'), newestMtimeMs: complete ? 0 : newest };
}

/** Reads one model folder. A bad config is reported in `configError`, never thrown. */
export async function scanModel(root: string, name: string): Promise<ModelOnDisk> {
  const dir = insideRoot(root, name);
  const configPath = join(dir, 'config.yaml');
  let configHash: string | undefined;
  let config: ModelConfig | undefined;
  let configError: InflowError | undefined;
  try {
    const text = await readFile(configPath, 'utf8');
    configHash = createHash('sha1').update(text).digest('hex');
    config = validateConfig(modelConfigSchema, parseConfigText(text, configPath), configPath);
  } catch (error) {
    configError =
      (error as NodeJS.ErrnoException).code === 'ENOENT'
        ? new InflowError('INVALID_CONFIG', `${configPath} is missing: every model folder needs a config.yaml (platform: onnx, …)`)
        : InflowError.from(error, 'INVALID_CONFIG');
  }
  const versions: VersionOnDisk[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory() && VERSION_DIR.test(entry.name)) versions.push(await scanVersion(join(dir, entry.name), Number(entry.name)));
  }
  versions.sort((a, b) => a.version - b.version);
  return { name, dir, configHash, config, configError, versions };
}

/** Model folder names in the repository (invalid names are returned separately, to be reported). */
export async function listModels(root: string): Promise<{ names: string[]; invalid: string[] }> {
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (error) {
    throw new InflowError(
      'INVALID_CONFIG',
      `model repository ${root} cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      {
        cause: error,
      },
    );
  }
  const names: string[] = [];
  const invalid: string[] = [];
  for (const e of entries) {
    if (!e.isDirectory() || e.name.startsWith('.')) continue;
    (MODEL_NAME.test(e.name) ? names : invalid).push(e.name);
  }
  return { names: names.sort(), invalid };
}
