/**
 * A broker-less harness for topologies, like Kafka Streams' `TopologyTestDriver`: it runs the
 * real runner on the in-process log, so what passes here passes the same code path as
 * production. Pipe records in, `await flush()`, read outputs and dead letters; time (predict
 * delays, retry backoff) moves only when the test says so.
 */
import { InflowError } from '../../errors.ts';
import type { Serde } from '../../kafka/serdes.ts';
import { createMemoryClient } from '../../kafka/memory/memory-client.ts';
import type { ConsumedRecord, KafkaHeader } from '../../kafka/types.ts';
import { createManualClock, type ManualClock } from '../../serving/clock.ts';
import type { ErrorPolicy } from '../runtime/dead-letter.ts';
import { createStreamsRunner } from '../runtime/streams-runner.ts';
import type { Guarantee, StreamsRunner } from '../runtime/streams-runner-options.ts';
import type { Topology } from '../api/topology.ts';
import { createStoreView } from './store-view.ts';
import type { KeyValueStore, StoreKey } from '../state/key-value-store.ts';
import { createMemoryStoreProvider } from '../state/store-provider.ts';
import { decodeOrderedKey, orderedKeyLength } from '../state/ordered-key.ts';
import { allWindowsRange, parseWindowKey } from '../state/window-key.ts';

export interface TopologyTestDriverOptions {
  readonly guarantee?: Guarantee;
  readonly onError?: ErrorPolicy;
  /** Partitions of every topic the driver creates; default 1. */
  readonly partitions?: number;
  readonly maxInFlight?: number;
  readonly applicationId?: string;
}

/** A window held in a window or session store. */
export interface StoredWindow<K, V> {
  readonly key: K;
  readonly start: number;
  /** Sessions only (fixed windows end at start + size). */
  readonly end?: number;
  readonly value: V;
}

/** One output record, deserialized. */
export interface TestRecord<K, V> {
  readonly key: K;
  readonly value: V;
  readonly headers: Record<string, string>;
  readonly partition: number;
  readonly timestamp: number;
}

export interface TopologyTestDriver {
  /** Produces a record to an input topic (serialized with `serdes`, bytes by default). */
  pipe<K, V>(
    topic: string,
    key: K,
    value: V,
    options?: { serdes?: { key?: Serde<K>; value?: Serde<V> }; headers?: Record<string, string>; timestamp?: number },
  ): Promise<void>;
  /** Produces raw bytes (for undecodable input). */
  pipeRaw(topic: string, key: Buffer | null, value: Buffer | null): Promise<void>;
  /** Processes until every piped record is produced and committed, or only time can move things. */
  flush(): Promise<void>;
  /** Moves the driver's clock forward (predict maxDelayMs, retry backoff). */
  advanceTime(ms: number): void;
  /** Committed records of `topic` (read_committed), deserialized. */
  read<K = Buffer | null, V = Buffer | null>(topic: string, serdes?: { key?: Serde<K>; value?: Serde<V> }): Promise<TestRecord<K, V>[]>;
  /** Dead-letter records. */
  deadLetters(): Promise<TestRecord<Buffer | null, Buffer | null>[]>;
  /**
   * A read-only view of store `name` over every task's instance (with several partitions each
   * key lives in the instance of its partition's task), typed by the store's serdes. `flush()`
   * first: the view reads what processing wrote so far.
   */
  store<K = StoreKey, V = unknown>(name: string): KeyValueStore<K, V>;
  /** The open windows of window or session store `name` over every task, in key then start order. */
  windows<K = StoreKey, V = unknown>(name: string): StoredWindow<K, V>[];
  readonly runner: StreamsRunner;
  readonly clock: ManualClock;
  close(): Promise<void>;
}

function headerMap(headers: readonly KafkaHeader[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of headers) out[k] = v.toString('utf8');
  return out;
}

/** Creates the topics of `topology` on a fresh in-process log and starts its runner. */
export async function createTopologyTestDriver(unbound: Topology, options: TopologyTestDriverOptions = {}): Promise<TopologyTestDriver> {
  const client = createMemoryClient();
  const clock = createManualClock();
  const applicationId = options.applicationId ?? 'test-driver';
  // Repartition topics named for the application id (created here with the inputs, so with `partitions` partitions).
  const topology = unbound.forApplication(applicationId);
  const dlq = `${applicationId}-dlq`;
  const admin = client.admin();
  await admin.createTopics(
    [...topology.inputTopics, ...[...topology.globalTables.values()].map((g) => g.topic), ...topology.outputTopics, dlq].map((topic) => ({
      topic,
      partitions: options.partitions ?? 1,
    })),
  );
  const stores = createMemoryStoreProvider();
  const runner = createStreamsRunner(topology, {
    client,
    stores,
    applicationId,
    instanceId: 'driver',
    clock,
    lagIntervalMs: 0,
    commitIntervalMs: 3_600_000,
    ...(options.guarantee ? { guarantee: options.guarantee } : {}),
    ...(options.onError ? { onError: options.onError } : {}),
    ...(options.maxInFlight ? { maxInFlight: options.maxInFlight } : {}),
  });
  await runner.start();
  const producer = client.producer();
  let readSeq = 0;

  async function read(
    topic: string,
    serdes: { key?: Serde<unknown>; value?: Serde<unknown> } = {},
  ): Promise<TestRecord<unknown, unknown>[]> {
    const consumer = client.consumer({
      groupId: `driver-reader-${readSeq++}`,
      autoOffsetReset: 'earliest',
      isolationLevel: 'read_committed',
    });
    try {
      await consumer.subscribe([topic]);
      const out: ConsumedRecord[] = [];
      for (;;) {
        const batch = await consumer.poll({ maxRecords: 10_000, timeoutMs: 0 });
        if (batch.length === 0) break;
        out.push(...batch);
      }
      return out.map((r) => ({
        key: serdes.key ? serdes.key.deserialize(r.key) : r.key,
        value: serdes.value ? serdes.value.deserialize(r.value) : r.value,
        headers: headerMap(r.headers),
        partition: r.partition,
        timestamp: r.timestamp,
      }));
    } finally {
      await consumer.close();
    }
  }

  return {
    runner,
    clock,
    async pipe(topic, key, value, o = {}) {
      for (const [what, v, serde] of [
        ['key', key, o.serdes?.key],
        ['value', value, o.serdes?.value],
      ] as const) {
        if (!serde && v !== null && !Buffer.isBuffer(v)) {
          throw new InflowError(
            'INVALID_ARGUMENT',
            `pipe(): the ${what} is a ${typeof v}, not bytes; pass a ${what} serde in options.serdes`,
          );
        }
      }
      const headers = Object.entries(o.headers ?? {}).map(([k, v]) => [k, Buffer.from(v)] as const);
      await producer.send([
        {
          topic,
          key: o.serdes?.key ? o.serdes.key.serialize(key) : (key as Buffer | null),
          value: o.serdes?.value ? o.serdes.value.serialize(value) : (value as Buffer | null),
          headers,
          ...(o.timestamp !== undefined ? { timestamp: o.timestamp } : {}),
        },
      ]);
    },
    async pipeRaw(topic, key, value) {
      await producer.send([{ topic, key, value }]);
    },
    async flush() {
      // Real time only bounds a hung topology; the clock the topology sees does not move.
      const deadline = Date.now() + 10_000;
      // Table rows piped before stream records are in place before those records are processed.
      await runner.syncGlobalTables();
      for (;;) {
        await runner.commitNow();
        const lag = await admin.groupLag(applicationId, [...topology.inputTopics]);
        const stats = runner.stats();
        if (stats.state === 'failed') return;
        const consumed = lag.every((l) => l.lag === 0n);
        if (consumed && stats.inFlight === 0) return;
        // Records wait only for the clock (a predict delay or a retry backoff): let the test move it.
        if (stats.inFlight > 0 && clock.pendingTimers > 0 && stats.predictPending > 0) {
          await new Promise((r) => setTimeout(r, 20));
          if (runner.stats().inFlight === stats.inFlight && clock.pendingTimers > 0) return;
        }
        if (Date.now() > deadline) {
          throw new InflowError(
            'DEADLINE_EXCEEDED',
            `flush(): pipeline not idle after 10 s (in flight ${stats.inFlight}, lag ${lag.map((l) => l.lag).join('/')})`,
          );
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    },
    advanceTime(ms) {
      clock.advance(ms * 1000);
    },
    read: read as TopologyTestDriver['read'],
    deadLetters: () => read(dlq) as Promise<TestRecord<Buffer | null, Buffer | null>[]>,
    windows<K, V>(name: string): StoredWindow<K, V>[] {
      const declared = topology.stores.get(name);
      if (declared?.kind !== 'window' && declared?.kind !== 'session') {
        throw new InflowError('NOT_FOUND', `the topology has no window or session store "${name}"`);
      }
      const session = declared.kind === 'session';
      const out: StoredWindow<K, V>[] = [];
      for (const [, s] of stores.instances(name)) {
        for (const [k, v] of s.range(...allWindowsRange())) {
          // Sliding-window stores also keep raw values (keys 8 bytes longer): not windows.
          if (orderedKeyLength(k.subarray(1)) !== k.length - (session ? 17 : 9)) continue;
          const w = parseWindowKey(k, session);
          out.push({
            key: decodeOrderedKey(w.key) as K,
            start: w.start,
            ...(session ? { end: w.end } : {}),
            value: JSON.parse(v.toString()) as V,
          });
        }
      }
      return out;
    },
    store<K, V>(name: string): KeyValueStore<K, V> {
      const declared = topology.stores.get(name);
      if (!declared) {
        throw new InflowError('NOT_FOUND', `the topology has no store "${name}"; its stores: [${[...topology.stores.keys()].join(', ')}]`);
      }
      return createStoreView<K, V>(name, () => stores.instances(name).map(([, s]) => s), declared.serdes);
    },
    async close() {
      await runner.close();
      await producer.close();
      await admin.close();
      await client.close();
    },
  };
}
