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

export function readCheckpoint(storeDir: string): CheckpointRead {
  let text: string;
  try {
    text = readFileSync(join(storeDir, CHECKPOINT_FILE), 'utf8');
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return { kind: 'missing' };
    return { kind: 'corrupt', reason: (error as Error).message };
  }
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
  const path = join(storeDir, CHECKPOINT_FILE);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, JSON.stringify({ version: 1, offset: offset.toString() }));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export function deleteCheckpoint(storeDir: string): void {
  rmSync(join(storeDir, CHECKPOINT_FILE), { force: true });
}
