/**
 * A store's local checkpoint: the changelog offset its engine holds everything below, written
 * after the engine flushed to disk. Under exactly-once it is written only when the local state
 * is known good (clean close) and deleted when processing starts, as Kafka Streams does: after a
 * crash there is no checkpoint and the store is wiped and restored from the changelog's
 * beginning. Under at-least-once commits write it too (the runtime's task-stores.ts). A
 * checkpoint that cannot be read or parsed counts as none (a full restore), never as an offset.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** File name inside the store's directory. */
export const CHECKPOINT_FILE = '.checkpoint';

/** What a checkpoint read found. */
export type CheckpointRead =
  | { readonly kind: 'offset'; readonly offset: bigint }
  | { readonly kind: 'missing' }
  | { readonly kind: 'corrupt'; readonly reason: string };

/** The checkpoint file's text, or why there is none to read. */
function readCheckpointText(
  storeDir: string,
): { readonly kind: 'text'; readonly text: string } | { readonly kind: 'missing' } | { readonly kind: 'corrupt'; readonly reason: string } {
  try {
    return { kind: 'text', text: readFileSync(join(storeDir, CHECKPOINT_FILE), 'utf8') };
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return { kind: 'missing' };
    return { kind: 'corrupt', reason: (error as Error).message };
  }
}

export function readCheckpoint(storeDir: string): CheckpointRead {
  const read = readCheckpointText(storeDir);
  if (read.kind !== 'text') return read;
  const { text } = read;
  try {
    const parsed = JSON.parse(text) as { version?: unknown; offset?: unknown };
    if (parsed.version !== 1 || typeof parsed.offset !== 'string' || !/^\d{1,19}$/.test(parsed.offset)) {
      return { kind: 'corrupt', reason: `expected {"version":1,"offset":"<digits>"}, got ${text.slice(0, 80)}` };
    }
    return { kind: 'offset', offset: BigInt(parsed.offset) };
  } catch (error) {
    return { kind: 'corrupt', reason: `not JSON: ${(error as Error).message}` };
  }
}

/** Writes the checkpoint atomically (temporary file, fsync, rename). */
export function writeCheckpoint(storeDir: string, offset: bigint): void {
  writeAtomically(join(storeDir, CHECKPOINT_FILE), JSON.stringify({ version: 1, offset: offset.toString() }));
}

function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** What a read of a multi-partition checkpoint found: offsets by `topic:partition`. */
export type OffsetsCheckpointRead =
  | { readonly kind: 'offsets'; readonly offsets: ReadonlyMap<string, bigint> }
  | { readonly kind: 'missing' }
  | { readonly kind: 'corrupt'; readonly reason: string };

/**
 * The checkpoint of a store fed by several partitions (a global table: every partition of its
 * topic in one store), like Kafka Streams' global `.checkpoint`: the next offset to read of each
 * `topic:partition`, everything below it in the store.
 */
export function readOffsetsCheckpoint(storeDir: string): OffsetsCheckpointRead {
  const read = readCheckpointText(storeDir);
  if (read.kind !== 'text') return read;
  const { text } = read;
  try {
    const parsed = JSON.parse(text) as { version?: unknown; offsets?: unknown };
    const entries = parsed.offsets !== null && typeof parsed.offsets === 'object' ? Object.entries(parsed.offsets) : undefined;
    if (parsed.version !== 1 || !entries || !entries.every(([, o]) => typeof o === 'string' && /^\d{1,19}$/.test(o))) {
      return { kind: 'corrupt', reason: `expected {"version":1,"offsets":{"<topic>:<partition>":"<digits>"}}, got ${text.slice(0, 80)}` };
    }
    return { kind: 'offsets', offsets: new Map(entries.map(([k, o]) => [k, BigInt(o as string)])) };
  } catch (error) {
    return { kind: 'corrupt', reason: `not JSON: ${(error as Error).message}` };
  }
}

/** Writes a multi-partition checkpoint atomically (temporary file, fsync, rename). */
export function writeOffsetsCheckpoint(storeDir: string, offsets: ReadonlyMap<string, bigint>): void {
  const body = Object.fromEntries([...offsets].map(([k, o]) => [k, o.toString()]));
  writeAtomically(join(storeDir, CHECKPOINT_FILE), JSON.stringify({ version: 1, offsets: body }));
}

export function deleteCheckpoint(storeDir: string): void {
  rmSync(join(storeDir, CHECKPOINT_FILE), { force: true });
}
