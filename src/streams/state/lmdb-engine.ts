/**
 * The persistent engine: lmdb (an LMDB B+ tree in a memory map; decision and measurements in
 * docs/decisions/0003-state-stores.md). Opened with `noSync`: a commit does not fsync, so a
 * process crash loses nothing committed and a machine crash may lose the latest commits — the
 * changelog holds them, and local state is trusted only after {@link StoreEngine.flush} wrote
 * a checkpoint (./checkpoint.ts). Data lives in the page cache, not the JS heap.
 *
 * Size: lmdb grows its map as needed; `maxBytes` bounds it. A write that would pass the bound is
 * refused before anything is written, with RESOURCE_EXHAUSTED naming the store, its size and
 * the limit; so is one the disk cannot take.
 */
import { mkdirSync } from 'node:fs';
import { open, type RootDatabase } from 'lmdb';
import { InflowError } from '../../errors.ts';
import type { RangeOptions } from './key-value-store.ts';
import type { StoreEngine, StoreWrite } from './store-engine.ts';

/** Options of {@link createLmdbEngine}. */
export interface LmdbEngineOptions {
  /** The store's directory (created if missing). */
  readonly dir: string;
  /** Largest size of the store's data, bytes; default 1 GiB. */
  readonly maxBytes?: number;
  /** Name in errors. */
  readonly name?: string;
}

/** lmdb-js's key limit (LMDB's default max key size with its 1978-byte build setting), bytes. */
export const MAX_KEY_BYTES = 1978;

export const DEFAULT_MAX_STORE_BYTES = 1024 ** 3;

/** Below every key: the end of a reverse scan. */
const NO_KEY = Buffer.alloc(0);

export function createLmdbEngine(options: LmdbEngineOptions): StoreEngine {
  const name = options.name ?? options.dir;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_STORE_BYTES;
  mkdirSync(options.dir, { recursive: true });
  let db: RootDatabase<Buffer, Buffer>;
  try {
    db = open<Buffer, Buffer>({ path: options.dir, keyEncoding: 'binary', encoding: 'binary', noSync: true, compression: false });
  } catch (error) {
    throw new InflowError('FAILED_PRECONDITION', `state store "${name}": cannot open ${options.dir}: ${(error as Error).message}`, {
      cause: error,
    });
  }

  /** Bytes the store's pages take (used pages × page size). */
  function usedBytes(): number {
    const stats = db.getStats() as {
      pageSize: number;
      lastPageNumber?: number;
      treeBranchPageCount: number;
      treeLeafPageCount: number;
      overflowPages: number;
    };
    return stats.pageSize * (stats.lastPageNumber ?? stats.treeBranchPageCount + stats.treeLeafPageCount + stats.overflowPages);
  }

  function checkKey(key: Buffer): void {
    if (key.length === 0 || key.length > MAX_KEY_BYTES) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `state store "${name}": a key of ${key.length} bytes; keys must be 1..${MAX_KEY_BYTES} bytes`,
      );
    }
  }

  function write(writes: Iterable<StoreWrite>): void {
    const list = [...writes];
    if (list.length === 0) return;
    let incoming = 0;
    for (const [k, v] of list) {
      checkKey(k);
      // A B+ tree page holds a key and value with overhead; twice the raw size bounds a batch's growth.
      incoming += 2 * (k.length + (v?.length ?? 0) + 16);
    }
    const used = usedBytes();
    if (used + incoming > maxBytes) {
      throw new InflowError(
        'RESOURCE_EXHAUSTED',
        `state store "${name}" is full: ${used} bytes used + ${incoming} to write > ${maxBytes} bytes allowed (raise the store size limit or free state); nothing was written`,
        { details: { store: name, usedBytes: used, maxBytes } },
      );
    }
    try {
      db.transactionSync(() => {
        for (const [k, v] of list) {
          if (v === null) db.removeSync(k);
          else db.putSync(k, v);
        }
      });
    } catch (error) {
      const code = (error as { code?: string }).code;
      throw new InflowError(
        code === 'ENOSPC' || /MDB_MAP_FULL|No space/i.test((error as Error).message) ? 'RESOURCE_EXHAUSTED' : 'INTERNAL',
        `state store "${name}": writing ${list.length} entries to ${options.dir} failed (nothing was written): ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  return {
    persistent: true,
    get: (key) => (key.length === 0 || key.length > MAX_KEY_BYTES ? undefined : (db.getBinary(key) ?? undefined)),
    put: (key, value) => write([[key, value]]),
    *range(from?: Buffer, to?: Buffer, rangeOptions: RangeOptions = {}): Iterable<[Buffer, Buffer]> {
      if (from !== undefined && to !== undefined && Buffer.compare(from, to) > 0) return;
      if (rangeOptions.reverse) {
        // An explicit empty end: lmdb-js's default end of a reverse scan leaves out the key of one
        // zero byte, and so does a scan starting at it (measured, lmdb 3.x).
        const scan = to === undefined ? { reverse: true, end: NO_KEY } : { start: to, reverse: true, end: NO_KEY };
        for (const { key, value } of db.getRange(scan)) {
          if (from !== undefined && Buffer.compare(key, from) < 0) return;
          yield [key, value];
        }
        return;
      }
      for (const { key, value } of db.getRange(from === undefined ? {} : { start: from })) {
        if (to !== undefined && Buffer.compare(key, to) > 0) return;
        yield [key, value];
      }
    },
    approximateCount: () => (db.getStats() as { entryCount: number }).entryCount,
    write,
    clear: () => db.clearSync(),
    // noSync commits leave pages in the OS cache: sync() is LMDB's mdb_env_sync(force).
    flush: () =>
      new Promise<void>((resolve, reject) =>
        (db as unknown as { sync(cb: (e?: Error) => void): void }).sync((e) => (e ? reject(e) : resolve())),
      ),
    async close() {
      await db.close();
    },
  };
}
