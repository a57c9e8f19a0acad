/**
 * The global tables of a topology on one instance (api/table.ts): one store per table holding
 * every partition of its topic. `start()` reads each topic up to the end offsets taken at start
 * (read_committed) before the runner processes a record — the table's topic is its own
 * changelog, so nothing else is written — then a background loop keeps applying updates. A
 * record that does not decode or fails the table's `validate` is handed to `onBadRecord` (the
 * runner dead-letters it) and the row keeps its previous value: nothing is lost, nothing stops.
 *
 * Memory (issue 17: bounded by configuration, not by rows): with a state directory a table lives
 * in lmdb under `<stateDir>/<applicationId>/global/<table>`, not in the heap, with a checkpoint
 * of its topic's offsets (Kafka Streams' global `.checkpoint`): written after the engine flushed,
 * every {@link CHECKPOINT_DELTA_RECORDS} rows, once loaded and at close, so a restart reads only
 * what is newer. Replaying past a checkpoint is harmless: a row is the latest value of its key.
 * Without a state directory (the in-process log, the test driver) tables are in memory and load
 * from the beginning. Each poll's rows go to the engine in one write.
 */
import { join } from 'node:path';
import { InflowError } from '../../errors.ts';
import { jsonSerde, stringSerde } from '../../kafka/serdes.ts';
import type { ConsumedRecord, KafkaClient, RestoreConsumer, TopicPartition, TopicPartitionOffset } from '../../kafka/types.ts';
import { partitionKey } from '../../kafka/types.ts';
import type { Logger } from '../../observability/logger.ts';
import type { GlobalTableDeclaration } from '../api/table.ts';
import type { Topology } from '../api/topology.ts';
import { readOffsetsCheckpoint, writeOffsetsCheckpoint } from '../state/checkpoint.ts';
import { createKeyValueStore, type KeyValueBytesStore, type KeyValueStore } from '../state/key-value-store.ts';
import { createLmdbEngine } from '../state/lmdb-engine.ts';
import { createMemoryEngine, type StoreEngine, type StoreWrite } from '../state/store-engine.ts';
import type { StreamsMetrics } from './streams-metrics.ts';

/**
 * Rows applied since a table's last checkpoint before the loop writes a new one (Kafka Streams'
 * OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT): a checkpoint costs an engine flush to disk; a restart
 * after a crash re-reads at most about this many rows more.
 */
export const GLOBAL_CHECKPOINT_DELTA_RECORDS = 10_000;

/** Records per poll of the table consumer (and at most per engine write). */
const POLL_RECORDS = 1_000;

/** A table's store and the partitions it follows. */
interface Table {
  readonly decl: GlobalTableDeclaration;
  readonly engine: StoreEngine;
  /** Where its checkpoint lives (persistent engines only). */
  readonly dir: string | undefined;
  /** Lookups: the engine, typed. */
  readonly store: KeyValueStore<unknown, unknown>;
  /** Writes of the current poll, typed: they collect in `pending` and go to the engine in one write. */
  readonly writer: KeyValueStore<unknown, unknown>;
  readonly pending: StoreWrite[];
  /** Its topic's partitions. */
  partitions: TopicPartition[];
  /** Rows applied since its last checkpoint. */
  sinceCheckpoint: number;
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
  /** Root of persistent stores: tables go on lmdb under `<stateDir>/<applicationId>/global/<table>`; undefined: in memory. */
  readonly stateDir?: string;
  /** Needed with `stateDir`. */
  readonly applicationId?: string;
  /** Size limit of each table's lmdb store, bytes (the engine's default otherwise). */
  readonly maxStoreBytes?: number;
  /** Rows read while loading count as restored records (`inflow_stream_restored_records_total{store=<table>}`). */
  readonly metrics?: StreamsMetrics;
  readonly labels?: { readonly pipeline: string };
}

const defaultKey = stringSerde;
const defaultValue = jsonSerde();

/** Creates the global tables of `options.topology` (none: every call is a no-op). */
export function createGlobalTables(options: GlobalTablesOptions): GlobalTables {
  const { topology, client, log } = options;
  if (options.stateDir !== undefined && options.applicationId === undefined)
    throw new InflowError(
      'INVALID_ARGUMENT',
      'global tables on a state directory need the applicationId (the directory is per application)',
    );
  const tables = new Map<string, Table>();
  const byTopic = new Map<string, Table>();
  /** Opens a table's engine (at start: a runner never started opens no files). */
  function open(decl: GlobalTableDeclaration): Table {
    const dir = options.stateDir === undefined ? undefined : join(options.stateDir, options.applicationId as string, 'global', decl.name);
    const engine =
      dir === undefined
        ? createMemoryEngine()
        : createLmdbEngine({
            dir,
            name: `${decl.name} (global table)`,
            ...(options.maxStoreBytes ? { maxBytes: options.maxStoreBytes } : {}),
          });
    const pending: StoreWrite[] = [];
    const collector: KeyValueBytesStore = {
      get: (key) => engine.get(key),
      put: (key, value) => void pending.push([key, value]),
      range: (from, to, rangeOptions) => engine.range(from, to, rangeOptions),
      approximateCount: () => engine.approximateCount(),
    };
    return {
      decl,
      engine,
      dir,
      store: createKeyValueStore(decl.name, engine),
      writer: createKeyValueStore(decl.name, collector),
      pending,
      partitions: [],
      sinceCheckpoint: 0,
    };
  }
  const counts = new Map<string, number>();
  /** While start() loads the tables: rows read count as restored. */
  let loading = false;
  let closed = false;
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
        t.writer.delete(key);
      } else {
        const value = await (decl.serdes.value ?? defaultValue).deserialize(record.value);
        if (value === null || value === undefined) t.writer.delete(key);
        else {
          decl.validate?.(value);
          t.writer.put(key, value);
        }
      }
      counts.set(decl.name, (counts.get(decl.name) ?? 0) + 1);
      t.sinceCheckpoint++;
      if (loading && options.metrics && options.labels) options.metrics.restoredRecords.inc({ ...options.labels, store: decl.name });
    } catch (e) {
      const error = e instanceof InflowError ? e : new InflowError('INVALID_ARGUMENT', (e as Error)?.message ?? String(e), { cause: e });
      await options.onBadRecord(record, decl.name, error);
    }
  }

  /**
   * Next offset to apply per `topic:partition`: every row below it is in its table's engine.
   * The consumer's position runs ahead of it while a poll's rows are being applied.
   */
  const appliedTo = new Map<string, bigint>();

  function reached(target: readonly TopicPartitionOffset[]): boolean {
    return target.every((p) => (appliedTo.get(partitionKey(p.topic, p.partition)) ?? 0n) >= p.offset);
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
        records = await c.poll({ maxRecords: POLL_RECORDS, timeoutMs: 200, signal: stop.signal });
      } catch (e) {
        if (stop.signal.aborted) return;
        const err = InflowError.from(e);
        if (!err.retriable) throw err;
        log.warn({ err: err.message }, 'global tables: poll failed, retrying');
        continue;
      }
      for (const r of records) await apply(r);
      for (const t of tables.values()) {
        if (t.pending.length === 0) continue;
        t.engine.write(t.pending);
        t.pending.length = 0;
      }
      for (const p of partitions) appliedTo.set(partitionKey(p.topic, p.partition), c.position(p));
      for (const t of tables.values()) if (t.sinceCheckpoint >= GLOBAL_CHECKPOINT_DELTA_RECORDS) await checkpoint(t);
      settleWaiters();
    }
  }

  /**
   * Flushes a persistent table's engine and writes its topic's positions as its checkpoint:
   * every row below them is in the engine (a poll's rows are written before its positions are
   * read) and, after the flush, on disk.
   */
  async function checkpoint(t: Table): Promise<void> {
    t.sinceCheckpoint = 0;
    if (t.dir === undefined) return;
    const offsets = new Map(
      t.partitions.map((p) => [partitionKey(p.topic, p.partition), appliedTo.get(partitionKey(p.topic, p.partition)) ?? 0n]),
    );
    await t.engine.flush();
    writeOffsetsCheckpoint(t.dir, offsets);
  }

  /** Where each partition of `t` starts: its checkpoint when there is a usable one, else the beginning after a wipe. */
  async function startOffsets(t: Table, c: RestoreConsumer): Promise<TopicPartitionOffset[]> {
    const fromBeginning = t.partitions.map((p) => ({ ...p, offset: 0n }));
    if (t.dir === undefined) return fromBeginning;
    const read = readOffsetsCheckpoint(t.dir);
    if (read.kind !== 'offsets') {
      if (read.kind === 'corrupt')
        log.warn({ table: t.decl.name, reason: read.reason }, 'global table checkpoint unreadable; reading the whole topic');
      t.engine.clear();
      return fromBeginning;
    }
    const ends = new Map((await c.endOffsets(t.partitions)).map((e) => [partitionKey(e.topic, e.partition), e.offset]));
    const positions = t.partitions.map((p) => ({ ...p, offset: read.offsets.get(partitionKey(p.topic, p.partition)) ?? 0n }));
    // A checkpoint past a partition's end: the topic was deleted and created again; its rows are gone.
    const stale = positions.find((p) => p.offset > (ends.get(partitionKey(p.topic, p.partition)) ?? 0n));
    if (stale) {
      log.warn(
        { table: t.decl.name, partition: partitionKey(stale.topic, stale.partition), checkpoint: String(stale.offset) },
        'global table checkpoint is past the end of its topic (was the topic re-created?); reading the whole topic',
      );
      t.engine.clear();
      return fromBeginning;
    }
    return positions;
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
      if (topology.globalTables.size === 0 || closed) return;
      for (const decl of topology.globalTables.values()) {
        const t = open(decl);
        tables.set(decl.name, t);
        byTopic.set(decl.topic, t);
      }
      const admin = client.admin();
      try {
        const described = await admin.describeTopics([...byTopic.keys()]);
        partitions = described.flatMap((d) => Array.from({ length: d.partitions }, (_, partition) => ({ topic: d.topic, partition })));
      } finally {
        await admin.close();
      }
      for (const p of partitions) (byTopic.get(p.topic) as Table).partitions.push(p);
      consumer = client.restoreConsumer();
      const starts: TopicPartitionOffset[] = [];
      for (const t of tables.values()) starts.push(...(await startOffsets(t, consumer)));
      consumer.assign(starts);
      for (const p of starts) appliedTo.set(partitionKey(p.topic, p.partition), p.offset);
      loading = true;
      loop = follow().catch((e: unknown) => {
        if (!stop.signal.aborted) options.onFatal(e);
      });
      const started = Date.now();
      try {
        await catchUp(signal);
      } finally {
        loading = false;
      }
      // Loaded: a restart from here on reads only what is newer.
      for (const t of tables.values()) await checkpoint(t);
      log.info(
        {
          tables: [...tables.keys()],
          rows: Object.fromEntries([...tables.keys()].map((n) => [n, counts.get(n) ?? 0])),
          from: Object.fromEntries(starts.map((s) => [partitionKey(s.topic, s.partition), String(s.offset)])),
          ms: Date.now() - started,
        },
        'global tables loaded',
      );
    },
    store: (name) => tables.get(name)?.store,
    catchUp,
    applied: (name) => counts.get(name) ?? 0,
    async close() {
      if (closed) return;
      closed = true;
      stop.abort();
      await loop;
      for (const w of waiters.splice(0)) w.resolve();
      try {
        // Up to the last poll applied in full (appliedTo): a poll the stop cut short is read again.
        for (const t of tables.values()) await checkpoint(t);
      } finally {
        await consumer?.close().catch(() => undefined);
        for (const t of tables.values()) await t.engine.close();
      }
    },
  };
}
