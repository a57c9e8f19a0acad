/**
 * The public shape of a streams runner: its options (guarantee, error policy, backpressure,
 * state, timing), its stats snapshot and its interface. The runner itself is streams-runner.ts.
 */
import type { KafkaClient, TopicPartition } from '../../kafka/types.ts';
import type { Logger } from '../../observability/logger.ts';
import type { Clock } from '../../serving/clock.ts';
import type { StoreProvider } from '../state/store-provider.ts';
import type { ErrorPolicy } from './dead-letter.ts';
import type { StoreQuery } from './store-query.ts';
import type { StreamsMetrics } from './streams-metrics.ts';

/**
 * Default `maxTaskIdleMs`: 0, Kafka Streams' default `max.task.idle.ms` — records are still
 * processed in timestamp order across a task's partitions as far as they are buffered, but the
 * task never waits on the clock for an empty partition, so a task whose second input is quiet (a
 * table that rarely changes, a labels topic) adds no latency. Kafka Streams' 0 also waits for a
 * partition its consumer knows to lag; inflow's consumer does not report per-partition lag, so a
 * pipeline whose inputs may lag one another (catch-up after a restart, producers at different
 * speeds) and whose results depend on the interleaving (a co-partitioned table join, a windowed
 * aggregation of merged topics) sets a wait: a few commit intervals (e.g. 500 ms) covers fetch
 * jitter, seconds cover a slower producer.
 */
export const DEFAULT_MAX_TASK_IDLE_MS = 0;

export const Guarantee = { AT_LEAST_ONCE: 'at-least-once', EXACTLY_ONCE: 'exactly-once' } as const;
export type Guarantee = (typeof Guarantee)[keyof typeof Guarantee];

/** Options of `createStreamsRunner` (streams-runner.ts). Times are milliseconds. */
export interface StreamsRunnerOptions {
  readonly client: KafkaClient;
  /** The consumer group id, and the prefix of the transactional id. */
  readonly applicationId: string;
  /**
   * Stable id of this instance (default: the host name). In exactly-once mode the transactional
   * id is `<applicationId>-<instanceId>`: a restarted instance with the same id aborts its
   * predecessor's open transaction at once instead of waiting for the transaction timeout.
   */
  readonly instanceId?: string;
  /**
   * Join the consumer group as a static member (KIP-345) with `instanceId` as its
   * `group.instance.id`. After a broker outage or a restart within `sessionTimeoutMs` the
   * instance takes its partitions back without a rebalance of the whole group; on close it does
   * not leave the group, so its partitions wait for it until the session times out. Needs an
   * `instanceId` unique in the group and stable across restarts (a StatefulSet's pod name — the
   * host name there — is both). Default false.
   */
  readonly staticMembership?: boolean;
  readonly guarantee?: Guarantee;
  /** What happens to a record that fails: dead-letter it (default), skip it, or stop the pipeline. */
  readonly onError?: ErrorPolicy;
  /** Default `<applicationId>-dlq`. */
  readonly deadLetterTopic?: string;
  /** Records between poll() and acknowledgement, at most; default 2048. */
  readonly maxInFlight?: number;
  /**
   * Largest output record (key + value + headers), bytes; a bigger one fails its input record
   * under the error policy; dead letters are cut to it. Default 1 000 000 (the broker's
   * message.max.bytes is 1 MiB by default).
   */
  readonly maxRecordBytes?: number;
  /**
   * The tasks' state store instances. Default: the runner's own — a transactional overlay per
   * store, a compacted changelog topic per store (created at start), restored on assignment;
   * on lmdb under `stateDir` when one is given, else in memory (restored from the changelog on
   * every assignment). A provider passed here is used as it is (no changelogs).
   */
  readonly stores?: StoreProvider;
  /**
   * Directory of the persistent state stores (`<stateDir>/<applicationId>/<task>/<store>`) and
   * global tables (`<stateDir>/<applicationId>/global/<table>`, with a checkpoint of the table
   * topic's offsets: a restart reads only what is newer). Without it both are in memory.
   */
  readonly stateDir?: string;
  /** Size limit of each store instance on disk, bytes; default 1 GiB. */
  readonly maxStoreBytes?: number;
  /**
   * This instance's interactive-query address (`host:port`), advertised to the group like Kafka
   * Streams' `application.server`: a query for a key another instance owns answers with it.
   */
  readonly applicationServer?: string;
  /** Default 500 (Kafka's max.poll.records). */
  readonly maxPollRecords?: number;
  /**
   * A task that reads several partitions (a stream-stream join, a co-partitioned table, merged
   * sources) processes their records in timestamp order; while one of them holds no record, the
   * task waits this long (ms of wall-clock time) for it before processing the others' records,
   * so a partition that lags a little does not make its records late (Kafka Streams'
   * `max.task.idle.ms`). Default {@link DEFAULT_MAX_TASK_IDLE_MS}: never wait — no latency is added.
   */
  readonly maxTaskIdleMs?: number;
  /**
   * Exactly-once: the coordinator aborts this instance's open transaction when it dies and is
   * not restarted under the same instance id after this long; the members that take its
   * partitions over wait for that before reading their offsets (KIP-447). Default: the Kafka
   * client's requestTimeoutMs (30 000), because the client sends one value for both: a shorter
   * transaction timeout also shortens every request of this producer (Kafka Streams uses
   * 10 000 for the transaction alone).
   */
  readonly transactionTimeoutMs?: number;
  /** Default 100 in exactly-once mode (like Kafka Streams), 1000 otherwise. */
  readonly commitIntervalMs?: number;
  /** Where a group without committed offsets starts; default `earliest`. */
  readonly autoOffsetReset?: 'earliest' | 'latest';
  /** How long close() waits for in-flight records; default 10 000. */
  readonly drainTimeoutMs?: number;
  /** How often consumer lag is read for the metrics; default 5000; 0 = never. */
  readonly lagIntervalMs?: number;
  readonly sessionTimeoutMs?: number;
  /** Time of predict delays and retry backoff, µs (tests inject a manual clock). */
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly metrics?: StreamsMetrics;
}

/** A snapshot of the runner. */
export interface RunnerStats {
  readonly state: 'created' | 'running' | 'closing' | 'closed' | 'failed';
  /** Whether the Kafka cluster is reachable; during an outage the runner waits and retries. */
  readonly connection: 'connected' | 'disconnected';
  readonly inFlight: number;
  readonly assigned: readonly TopicPartition[];
  readonly paused: number;
  /** Rows queued in predict batchers. */
  readonly predictPending: number;
  /** How long the oldest record not yet produced has been in the runner, ms (0 when none). */
  readonly oldestInFlightMs: number;
  /** Tasks whose stores are being restored (their partitions are paused; the runner is not ready). */
  readonly restoring: number;
}

export interface StreamsRunner {
  /** Subscribes and starts processing; resolves once the group assigned partitions. */
  start(): Promise<void>;
  /** Settles when the runner stops: resolves after close(), rejects on a fatal error. */
  readonly done: Promise<void>;
  /** Stops polling, drains in-flight records (bounded), commits and closes. */
  close(): Promise<void>;
  /** Produces what is ready and commits now (tests, shutdown). */
  commitNow(): Promise<void>;
  /** Resolves once the global tables applied everything committed to their topics when called (tests). */
  syncGlobalTables(): Promise<void>;
  stats(): RunnerStats;
  readonly metrics: StreamsMetrics;
  /** Interactive queries: the pipeline's stores read by key (committed state; other instances' keys name their owner). */
  readonly stores: StoreQuery;
}
