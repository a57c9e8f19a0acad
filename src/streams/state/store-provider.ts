/**
 * How the runtime hands a task's store instances to the record processor. A store has one
 * instance per task (`<subtopology>_<partition>`); the processor asks for it once per input
 * record that touches it, naming the record, so a transactional provider can group that
 * record's writes into one write set (dropped if the record fails, folded in at commit). The
 * in-memory provider here writes straight through: it backs the test driver and runners that have no persistent engine.
 */
import { createMemoryStore, type MemoryKeyValueStore } from './memory-store.ts';
import type { KeyValueBytesStore } from './key-value-store.ts';

/** The input record whose processing reads and writes a store (its write set's owner). */
export interface StoreWriter {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
}

/**
 * What interactive queries may read of one store instance: its committed state (the engine,
 * never write sets not yet committed), or that it is still restoring its changelog.
 */
export type CommittedStore =
  | { readonly state: 'ready'; readonly store: KeyValueBytesStore }
  | { readonly state: 'restoring'; readonly restored?: number; readonly total?: number };

/** Gives a task's store instances by name. */
export interface StoreProvider {
  /**
   * Interactive queries: the committed state of store `store` of task `taskId` on this instance
   * (undefined when the instance does not exist here). A provider without it is not queryable.
   */
  queryable?(taskId: string, store: string): CommittedStore | undefined;
  /**
   * The instance of store `store` of task `taskId`, as `writer` (the input record being
   * processed) sees it: reads see every earlier write of the task, writes belong to `writer`.
   * Called synchronously while the record is processed; the result is not kept past it.
   */
  store(taskId: string, store: string, writer: StoreWriter): KeyValueBytesStore;
}

/** An in-memory provider that also lists its instances (for the test driver's reads). */
export interface MemoryStoreProvider extends StoreProvider {
  /** The instances of `store`, per task id, in task id order. */
  instances(store: string): [taskId: string, store: MemoryKeyValueStore][];
  /** Drops every store of `taskId` (its state is gone: in-memory stores have no changelog to restore from). */
  dropTask(taskId: string): void;
}

/** Creates a provider of in-memory stores, created on first use. */
export function createMemoryStoreProvider(): MemoryStoreProvider {
  const tasks = new Map<string, Map<string, MemoryKeyValueStore>>();
  return {
    store(taskId, store) {
      let stores = tasks.get(taskId);
      if (!stores) {
        stores = new Map();
        tasks.set(taskId, stores);
      }
      let s = stores.get(store);
      if (!s) {
        s = createMemoryStore();
        stores.set(store, s);
      }
      return s;
    },
    instances(store) {
      const out: [string, MemoryKeyValueStore][] = [];
      for (const [taskId, stores] of tasks) {
        const s = stores.get(store);
        if (s) out.push([taskId, s]);
      }
      return out.sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }));
    },
    dropTask(taskId) {
      tasks.delete(taskId);
    },
    // In-memory stores are written straight through (no overlay): what they hold is what was
    // processed, committed or not. Runners with a transactional provider answer the engine only.
    queryable(taskId, store) {
      const s = tasks.get(taskId)?.get(store);
      return s === undefined ? undefined : { state: 'ready', store: s };
    },
  };
}
