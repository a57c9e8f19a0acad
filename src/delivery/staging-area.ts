/**
 * Where versions are assembled before they enter the repository: `<repo>/.inflow-staging/`
 * (same filesystem as the repository, so the final rename is atomic; a dot folder, so the
 * repository never takes it for a model). Chunks are written at their offset into one file per
 * manifest file index as they arrive — never held in memory — and a version moves into
 * `<repo>/<model>/<version>/` only after every file's size and sha256 matched.
 */
import { createHash, randomUUID } from 'node:crypto';
import { type FileHandle, mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { COMPLETE_MARKER } from '../repository/repository-scan.ts';
import { basename, dirname, join, relative, sep } from 'node:path';
import type { Manifest, ManifestFile } from './delivery-format.ts';

/** Name of the staging folder inside the repository. */
export const STAGING_DIR = '.inflow-staging';
/** Bytes read at a time when hashing files, 1 MiB. */
const READ_BYTES = 1024 * 1024;

/** Size and sha256 (hex) of a file, read in 1 MiB pieces; `sync` also flushes it to disk. */
export async function hashFile(path: string, sync = false): Promise<{ size: number; sha256: string }> {
  const handle = await open(path, 'r');
  try {
    const hash = createHash('sha256');
    const buffer = Buffer.allocUnsafe(READ_BYTES);
    let size = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, READ_BYTES, size);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      size += bytesRead;
    }
    if (sync) await handle.sync();
    return { size, sha256: hash.digest('hex') };
  } finally {
    await handle.close();
  }
}

/** Writes `text` to `path` atomically: a temporary file beside it, flushed, then renamed over it. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomUUID()}.tmp`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(tmp, 'w');
    await handle.writeFile(text, 'utf8');
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(tmp, path);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw error;
  }
}

async function listFiles(dir: string, out: string[] = [], root = dir, depth = 0): Promise<string[]> {
  if (depth > 16) return out;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) await listFiles(full, out, root, depth + 1);
    else out.push(relative(root, full).split(sep).join('/'));
  }
  return out;
}

/**
 * Whether `dir` holds exactly the manifest's files with their sizes and sha256s; a reason why not
 * otherwise (`undefined` = it matches). A missing folder is a reason too.
 */
export async function compareWithDisk(dir: string, files: readonly ManifestFile[]): Promise<string | undefined> {
  let onDisk: string[];
  try {
    // The completion marker is ours, not the model's.
    onDisk = (await listFiles(dir)).filter((f) => f !== COMPLETE_MARKER).sort();
  } catch {
    return 'not on disk';
  }
  const wanted = files.map((f) => f.path).sort();
  if (onDisk.join('\0') !== wanted.join('\0')) return `files differ (on disk: ${onDisk.length}, in the manifest: ${wanted.length})`;
  for (const f of files) {
    const s = await stat(join(dir, f.path));
    if (s.size !== f.size) return `file ${f.path} size differs`;
  }
  for (const f of files) {
    const { sha256 } = await hashFile(join(dir, f.path));
    if (sha256 !== f.sha256) return `file ${f.path} sha256 differs`;
  }
  return undefined;
}

/** The staging folder of one repository. */
export interface StagingArea {
  readonly root: string;
  /** Removes everything staged (at start and after a reconnect, when the topic is re-read from the committed offset). */
  reset(): Promise<void>;
  /** Writes one chunk at `offset` into the staged file `file` of a publish. */
  writeChunk(publishId: string, file: number, offset: number, data: Buffer): Promise<void>;
  /** Checks a staged file against the manifest; the reason it is wrong, or undefined. Flushes it to disk when right. */
  verify(publishId: string, file: number, expected: ManifestFile): Promise<string | undefined>;
  /** Moves a verified publish into `target` (replacing a folder there) in one rename. */
  install(publishId: string, manifest: Manifest, target: string): Promise<void>;
  /** Removes a version folder: renamed out of the repository first, so it never shows half-deleted. */
  remove(target: string): Promise<boolean>;
  discard(publishId: string): Promise<void>;
}

export function createStagingArea(repository: string): StagingArea {
  const root = join(repository, STAGING_DIR);
  const dirOf = (publishId: string): string => join(root, publishId);
  const fileOf = (publishId: string, file: number): string => join(dirOf(publishId), `f${file}`);
  const created = new Set<string>();
  const discard = async (publishId: string): Promise<void> => {
    created.delete(publishId);
    await rm(dirOf(publishId), { recursive: true, force: true });
  };

  return {
    root,
    async reset() {
      created.clear();
      await rm(root, { recursive: true, force: true });
      await mkdir(root, { recursive: true });
    },
    async writeChunk(publishId, file, offset, data) {
      const path = fileOf(publishId, file);
      if (!created.has(publishId)) {
        await mkdir(dirOf(publishId), { recursive: true });
        created.add(publishId);
      }
      let handle: FileHandle;
      try {
        handle = await open(path, 'r+');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        handle = await open(path, 'w');
      }
      try {
        await handle.write(data, 0, data.length, offset);
      } finally {
        await handle.close();
      }
    },
    async verify(publishId, file, expected) {
      const path = fileOf(publishId, file);
      if (expected.size === 0) return undefined;
      let actual: { size: number; sha256: string };
      try {
        // The size first: hashing reads the whole file, and a file larger than declared is wrong without reading it.
        const { size } = await stat(path);
        if (size !== expected.size) return `file ${expected.path} size mismatch (expected ${expected.size} bytes, got ${size})`;
        actual = await hashFile(path, true);
      } catch {
        return `file ${expected.path}: no chunk was received`;
      }
      if (actual.size !== expected.size) return `file ${expected.path} size mismatch (expected ${expected.size} bytes, got ${actual.size})`;
      if (actual.sha256 !== expected.sha256)
        return `file ${expected.path} sha256 mismatch (expected ${expected.sha256}, got ${actual.sha256})`;
      return undefined;
    },
    async install(publishId, manifest, target) {
      const build = join(dirOf(publishId), 'version');
      await mkdir(build, { recursive: true });
      for (const [index, f] of manifest.files.entries()) {
        const to = join(build, ...f.path.split('/'));
        await mkdir(dirname(to), { recursive: true });
        if (f.size === 0) await writeFile(to, '');
        else await rename(fileOf(publishId, index), to);
      }
      // Renamed in whole below: the repository may load it without waiting for its files to settle.
      await writeFile(join(build, COMPLETE_MARKER), `${manifest.model} ${manifest.version} ${publishId}\n`);
      await mkdir(dirname(target), { recursive: true });
      const exists = await stat(target).then(
        () => true,
        () => false,
      );
      if (exists) {
        // rename(2) cannot replace a non-empty folder: move the old one aside first (the
        // repository may see no folder for that instant; it only matters for a republished version).
        const aside = join(dirOf(publishId), 'replaced');
        await rename(target, aside);
        await rename(build, target);
      } else {
        await rename(build, target);
      }
      await discard(publishId);
    },
    async remove(target) {
      const aside = join(root, `removed-${randomUUID()}`);
      try {
        await rename(target, aside);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw error;
      }
      await rm(aside, { recursive: true, force: true });
      return true;
    },
    discard,
  };
}
