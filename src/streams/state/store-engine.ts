/**
 * What the runtime needs of a store's engine beyond {@link KeyValueBytesStore}: atomic batch
 * writes (a commit folds its write sets in one engine transaction), a wipe (before a full
 * restore), a flush (before a checkpoint claims the local state good) and close. Engines: the
 * in-memory one (here, over ./memory-store.ts) and lmdb (./lmdb-engine.ts, see
 * docs/decisions/0003-state-stores.md).
 */
import type { KeyValueBytesStore } from './key-value-store.ts';
import { createMemoryStore } from './memory-store.ts';

/** A write: a key and its new value; `null` deletes the key. */
export type StoreWrite = readonly [key: Buffer, value: Buffer | null];

export interface StoreEngine extends KeyValueBytesStore {
  /** Applies every write in one engine transaction: after a crash all of them are there or none. */
  write(writes: Iterable<StoreWrite>): void;
  /** Removes every entry. */
  clear(): void;
  /** Resolves once every write so far is on disk (a no-op in memory). */
  flush(): Promise<void>;
  close(): Promise<void>;
  /** Whether the data survives the process (a checkpoint of an in-memory engine means nothing). */
  readonly persistent: boolean;
}

/** An in-memory {@link StoreEngine}: the in-process log and the test driver use it. */
export function createMemoryEngine(): StoreEngine {
  const store = createMemoryStore();
  return {
    get: (key) => store.get(key),
    put: (key, value) => store.put(key, value),
    range: (from, to, options) => store.range(from, to, options),
    approximateCount: () => store.approximateCount(),
    write(writes) {
      for (const [k, v] of writes) store.put(k, v);
    },
    clear: () => store.clear(),
    flush: async () => undefined,
    close: async () => undefined,
    persistent: false,
  };
}
