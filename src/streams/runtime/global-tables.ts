/**
 * The global tables of a topology on one instance (api/table.ts): one in-memory store per table
 * holding every partition of its topic. `start()` reads each topic from its beginning up to the
 * end offsets taken at start (read_committed) before the runner processes a record — the table's
 * topic is its own changelog, so nothing else is written — then a background loop keeps applying
 * updates. A record that does not decode or fails the table's `validate` is handed to
 * `onBadRecord` (the runner dead-letters it) and the row keeps its previous value: nothing is lost,
 * nothing stops.
 */
import { InflowError } from '../../errors.ts';
import { jsonSerde, stringSerde } from '../../kafka/serdes.ts';
import type { ConsumedRecord, KafkaClient, RestoreConsumer, TopicPartition, TopicPartitionOffset } from '../../kafka/types.ts';
import type { Logger } from '../../observability/logger.ts';
import type { GlobalTableDeclaration } from '../api/table.ts';
import type { Topology } from '../api/topology.ts';
import { createKeyValueStore, type KeyValueStore } from '../state/key-value-store.ts';
import { createMemoryStore } from '../state/memory-store.ts';

/** A table's store and the partitions it follows. */
interface Table {
  readonly decl: GlobalTableDeclaration;
  readonly store: KeyValueStore<unknown, unknown>;
}

export interface GlobalTables {
  /** Materializes every table up to the end offsets of now; resolves when done (at once without tables). */
  start(signal: AbortSignal): Promise<void>;
  /** The store of table `name` (undefined for an unknown name). */
  store(name: string): KeyValueStore<unknown, unknown> | undefined;
  /** Resolves once every table has applied everything committed to its topic when called. */
  catchUp(signal?: AbortSignal): Promise<void>;
  /** Rows applied since start, per table (for tests and logs). */
  applied(name: string): number;
  close(): Promise<void>;
}

export interface GlobalTablesOptions {
  readonly topology: Topology;
  readonly client: KafkaClient;
  readonly log: Logger;
  /** A table record that does not decode or fails validation; the runner dead-letters it. */
  readonly onBadRecord: (record: ConsumedRecord, table: string, error: InflowError) => Promise<void>;
  /** The loop hit an error it cannot ride out. */
  readonly onFatal: (error: unknown) => void;
}

const defaultKey = stringSerde;
const defaultValue = jsonSerde();

/** Creates the global tables of `options.topology` (none: every call is a no-op). */
export function createGlobalTables(options: GlobalTablesOptions): GlobalTables {
  const { topology, client, log } = options;
  const tables = new Map<string, Table>();
  const byTopic = new Map<string, Table>();
  for (const decl of topology.globalTables.values()) {
    const t: Table = { decl, store: createKeyValueStore(decl.name, createMemoryStore()) };
    tables.set(decl.name, t);
    byTopic.set(decl.topic, t);
  }
  const counts = new Map<string, number>();
  let consumer: RestoreConsumer | undefined;
  let partitions: TopicPartition[] = [];
  let loop: Promise<void> | undefined;
  const stop = new AbortController();
  /** Waiters of catchUp(): resolved when every partition's position reaches its target. */
  let waiters: { target: TopicPartitionOffset[]; resolve: () => void }[] = [];

  async function apply(record: ConsumedRecord): Promise<void> {
    const t = byTopic.get(record.topic) as Table;
    const { decl } = t;
    try {
      const key = await (decl.serdes.key ?? defaultKey).deserialize(record.key);
      if (key === null || key === undefined) throw new InflowError('INVALID_ARGUMENT', 'the table record has no key; a row needs one');
      if (record.value === null) {
        t.store.delete(key);
      } else {
        const value = await (decl.serdes.value ?? defaultValue).deserialize(record.value);
        if (value === null || value === undefined) t.store.delete(key);
        else {
          decl.validate?.(value);
          t.store.put(key, value);
        }
      }
      counts.set(decl.name, (counts.get(decl.name) ?? 0) + 1);
    } catch (e) {
      const error = e instanceof InflowError ? e : new InflowError('INVALID_ARGUMENT', (e as Error)?.message ?? String(e), { cause: e });
      await options.onBadRecord(record, decl.name, error);
    }
  }

  function reached(target: readonly TopicPartitionOffset[]): boolean {
    const c = consumer as RestoreConsumer;
    return target.every((p) => c.position(p) >= p.offset);
  }

  function settleWaiters(): void {
    if (waiters.length === 0) return;
    const still: typeof waiters = [];
    for (const w of waiters) {
      if (reached(w.target)) w.resolve();
      else still.push(w);
    }
    waiters = still;
  }

  async function follow(): Promise<void> {
    const c = consumer as RestoreConsumer;
    while (!stop.signal.aborted) {
      let records: ConsumedRecord[];
      try {
        records = await c.poll({ maxRecords: 1000, timeoutMs: 200, signal: stop.signal });
      } catch (e) {
        if (stop.signal.aborted) return;
        const err = InflowError.from(e);
        if (!err.retriable) throw err;
        log.warn({ err: err.message }, 'global tables: poll failed, retrying');
        continue;
      }
      for (const r of records) await apply(r);
      settleWaiters();
    }
  }

  async function catchUp(signal?: AbortSignal): Promise<void> {
    if (!consumer || partitions.length === 0) return;
    const target = await consumer.endOffsets(partitions);
    if (reached(target)) return;
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(new InflowError('CANCELLED', 'global tables: catching up was cancelled'));
      signal?.addEventListener('abort', onAbort, { once: true });
      waiters.push({
        target,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      });
    });
  }

  return {
    async start(signal) {
      if (tables.size === 0) return;
      const admin = client.admin();
      try {
        const described = await admin.describeTopics([...byTopic.keys()]);
        partitions = described.flatMap((d) => Array.from({ length: d.partitions }, (_, partition) => ({ topic: d.topic, partition })));
      } finally {
        await admin.close();
      }
      consumer = client.restoreConsumer();
      consumer.assign(partitions.map((p) => ({ ...p, offset: 0n })));
      loop = follow().catch((e: unknown) => {
        if (!stop.signal.aborted) options.onFatal(e);
      });
      const started = Date.now();
      await catchUp(signal);
      log.info(
        {
          tables: [...tables.keys()],
          rows: Object.fromEntries([...tables.keys()].map((n) => [n, counts.get(n) ?? 0])),
          ms: Date.now() - started,
        },
        'global tables loaded',
      );
    },
    store: (name) => tables.get(name)?.store,
    catchUp,
    applied: (name) => counts.get(name) ?? 0,
    async close() {
      stop.abort();
      await loop;
      for (const w of waiters.splice(0)) w.resolve();
      await consumer?.close().catch(() => undefined);
    },
  };
}
