/**
 * Runs a {@link Topology} on Kafka: one consumer-group member, concurrent micro-batched
 * inference, outputs in input order per partition, offsets committed only after the outputs
 * (or dead-letter records) are acknowledged — in Kafka transactions in exactly-once mode.
 *
 * The runner wires the runtime together and owns its life cycle (start, close, failure):
 * a {@link StreamThread} polls and applies backpressure through a {@link PauseController}; a
 * {@link TaskManager} admits records into tasks (one per input partition of a sub-topology),
 * releases them in offset order through a record collector and the {@link StreamsProducer}
 * (transactions), commits and rewinds.
 *
 * Failures: a revoked partition's in-flight records are abandoned uncommitted (the new owner
 * reprocesses them). In exactly-once mode a revocation or any transaction error aborts the open
 * transaction, drops all in-flight work and rewinds every partition to its committed offset.
 */
import { hostname } from 'node:os';
import { InflowError } from '../../errors.ts';
import type { KafkaAdmin, KafkaClient, KafkaConsumer, TopicPartition } from '../../kafka/types.ts';
import { partitionKey } from '../../kafka/types.ts';
import { retryTransient } from '../../kafka/connection.ts';
import type { Logger } from '../../observability/logger.ts';
import { silentLogger } from '../../observability/logger.ts';
import { type Clock, systemClock } from '../../serving/clock.ts';
import type { Topology } from '../api/topology.ts';
import { createMemoryStoreProvider, type StoreProvider } from '../state/store-provider.ts';
import { deadLetterRecord, type ErrorPolicy } from './dead-letter.ts';
import { createGlobalTables } from './global-tables.ts';
import { createRunnerStoreQuery } from './runner-store-query.ts';
import type { StoreQuery } from './store-query.ts';
import { createPauseController } from './pause-controller.ts';
import type { InFlightRecord } from './partition-queue.ts';
import { createPredictBatchers } from './predict-batcher.ts';
import { createRecordCollector } from './record-collector.ts';
import { createRecordProcessor, DEFAULT_MAX_RECORD_BYTES, Stage, StageError } from './record-processor.ts';
import { createRepartitionPurger, createRepartitionTopics } from './repartition-topics.ts';
import { StreamThread } from './stream-thread.ts';
import { createStreamsMetrics, type StreamsMetrics } from './streams-metrics.ts';
import { StreamsProducer } from './streams-producer.ts';
import { TaskManager } from './task-manager.ts';
import { TaskStores } from './task-stores.ts';
import { PauseReason, type PauseController } from './pause-controller.ts';

export const Guarantee = { AT_LEAST_ONCE: 'at-least-once', EXACTLY_ONCE: 'exactly-once' } as const;
export type Guarantee = (typeof Guarantee)[keyof typeof Guarantee];

/** Options of {@link createStreamsRunner}. Times are milliseconds. */
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
  /** Directory of the persistent state stores (`<stateDir>/<applicationId>/<task>/<store>`). */
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

/** A record in the runner longer than this is logged once, ms. */
const STALL_WARN_MS = 60_000;

/** Transactional ids of the runners of this process: two would fence each other. */
const liveTransactionalIds = new Set<string>();

/** Creates a runner; nothing happens until start(). */
export function createStreamsRunner(unbound: Topology, options: StreamsRunnerOptions): StreamsRunner {
  // Internal (repartition) topics are named for the application id.
  const topology = unbound.forApplication(options.applicationId);
  const guarantee = options.guarantee ?? 'at-least-once';
  const eos = guarantee === 'exactly-once';
  const policy: ErrorPolicy = options.onError ?? 'dlq';
  const dlqTopic = options.deadLetterTopic ?? `${options.applicationId}-dlq`;
  const maxInFlight = options.maxInFlight ?? 2048;
  const maxPoll = options.maxPollRecords ?? 500;
  const commitIntervalMs = options.commitIntervalMs ?? (eos ? 100 : 1000);
  const clock = options.clock ?? systemClock;
  const log = (options.logger ?? silentLogger).child({ pipeline: options.applicationId });
  const metrics = options.metrics ?? createStreamsMetrics();
  const labels = { pipeline: options.applicationId };
  const client = options.client;

  const batchers = createPredictBatchers(topology, clock, metrics, log, options.applicationId);
  /** Dead letters of global table records: outside any task, so from a plain idempotent producer. */
  let tableDlq: ReturnType<KafkaClient['producer']> | undefined;
  const globalTables = createGlobalTables({
    topology,
    client,
    log,
    onFatal: (e) => fail(e),
    async onBadRecord(record, table, error) {
      log.warn(
        { table, topic: record.topic, partition: record.partition, offset: String(record.offset), err: error.message },
        'bad table record',
      );
      if (policy === 'fail') return fail(error);
      if (policy !== 'dlq') return;
      const failure = new StageError(Stage.DESERIALIZE, `table:${table}`, error);
      tableDlq ??= client.producer();
      await tableDlq.send([deadLetterRecord(dlqTopic, record, failure, Date.now(), options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES)]);
      metrics.deadLettered.inc({ ...labels, stage: Stage.DESERIALIZE, code: error.code });
    },
  });
  const stores =
    options.stores || topology.stores.size === 0
      ? undefined
      : new TaskStores({
          topology,
          applicationId: options.applicationId,
          client,
          ...(options.stateDir === undefined ? {} : { stateDir: options.stateDir }),
          ...(options.maxStoreBytes === undefined ? {} : { maxStoreBytes: options.maxStoreBytes }),
          metrics,
          labels,
          log,
        });
  const storeProvider: StoreProvider = options.stores ?? stores ?? createMemoryStoreProvider();
  const processor = createRecordProcessor(topology, batchers, {
    ...(options.maxRecordBytes === undefined ? {} : { maxRecordBytes: options.maxRecordBytes }),
    stores: storeProvider,
    globalTables: (name) => globalTables.store(name),
  });

  let state: RunnerStats['state'] = 'created';
  let consumer: KafkaConsumer | undefined;
  let producer: StreamsProducer | undefined;
  let admin: KafkaAdmin | undefined;
  let tasks: TaskManager | undefined;
  let thread: StreamThread | undefined;
  let pauses: PauseController | undefined;
  let commitTimer: ReturnType<typeof setInterval> | undefined;
  let lagTimer: ReturnType<typeof setInterval> | undefined;
  let fatal: InflowError | undefined;
  let resolveDone!: () => void;
  let rejectDone!: (e: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  // A runner that is never awaited must not crash the process with an unhandled rejection.
  done.catch(() => undefined);

  function fail(error: unknown): void {
    if (fatal || state === 'closed') return;
    // close() during an outage ends the client's retries: that is the stop, not a failure.
    if (state === 'closing' && InflowError.from(error).code === 'CANCELLED') return;
    fatal = InflowError.from(error);
    log.error({ code: fatal.code, err: fatal.message }, 'pipeline stopped on a fatal error');
    state = 'failed';
    void thread?.stop();
    void shutdown().finally(() => rejectDone(fatal));
  }

  function onKafkaError(error: unknown): void {
    const e = InflowError.from(error, 'KAFKA_ERROR');
    if (e.code === 'KAFKA_FENCED' || !e.retriable) {
      fail(e);
      return;
    }
    log.warn({ code: e.code, err: e.message }, 'producing or committing failed; rewinding');
    const t = tasks as TaskManager;
    t.requestRewind(e.code);
    // The poll loop runs the rewind between two polls, so no poll overlaps the seek.
    thread?.wake();
    if (!thread?.started || state !== 'running') void t.exclusive(() => t.rewind(e.code)).catch((r: unknown) => fail(r));
  }

  /** Rows queued in or sent by the predict batchers. */
  function predictPending(): number {
    let n = 0;
    for (const b of batchers.values()) n += b.pending;
    return n;
  }

  /** Logs a record stuck in the runner (once per record): where it waits tells a slow model from a stalled producer. */
  let reportedStall: InFlightRecord | undefined;
  function checkStall(): void {
    const oldest = tasks?.oldestInFlight();
    if (!oldest || oldest.age < STALL_WARN_MS || oldest.entry === reportedStall) return;
    reportedStall = oldest.entry;
    const r = oldest.entry.record;
    log.warn(
      {
        topic: r.topic,
        partition: r.partition,
        offset: String(r.offset),
        ageMs: oldest.age,
        processed: oldest.entry.out !== undefined,
        inFlight: tasks?.inFlight ?? 0,
        predictPending: predictPending(),
      },
      oldest.entry.out === undefined
        ? 'a record has waited for its prediction for over a minute'
        : 'a processed record has waited to be produced for over a minute',
    );
  }

  async function onRevoked(revoked: TopicPartition[]): Promise<void> {
    log.info({ partitions: revoked.map((p) => partitionKey(p.topic, p.partition)) }, 'partitions revoked');
    thread?.onRevoked(revoked);
    const t = tasks as TaskManager;
    if (eos) {
      // The open transaction may hold outputs of revoked partitions whose offsets can no longer be committed.
      await t.exclusive(() => t.rewind('rebalance'));
      await stores?.revoked(revoked);
      return;
    }
    t.revoke(revoked);
    await stores?.revoked(revoked);
  }

  /** New partitions: those whose tasks have stores stay paused until the stores are restored. */
  function onAssigned(added: TopicPartition[]): void {
    thread?.onAssigned(added);
    const stateful = stores ? added.filter((p) => stores.stateful(p.topic)) : [];
    if (!stores || stateful.length === 0) return;
    pauses?.pause(stateful, PauseReason.RESTORING);
    metrics.pausedPartitions.set(labels, pauses?.size ?? 0);
    stores.assigned(stateful).then(
      () => {
        pauses?.resume(stateful, PauseReason.RESTORING);
        metrics.pausedPartitions.set(labels, pauses?.size ?? 0);
        thread?.wake();
      },
      (error: unknown) => {
        // A revoked partition or a stop cancels its restore: nothing to do.
        if (InflowError.from(error).code === 'CANCELLED') return;
        fail(
          new InflowError(InflowError.from(error, 'KAFKA_ERROR').code, `restoring state stores failed: ${(error as Error).message}`, {
            cause: error,
          }),
        );
      },
    );
  }

  async function updateLag(): Promise<void> {
    if (!admin) return;
    const lag = await admin.groupLag(options.applicationId, [...topology.inputTopics]);
    for (const l of lag) metrics.consumerLag.set({ ...labels, topic: l.topic, partition: String(l.partition) }, Number(l.lag));
  }

  let closing: Promise<void> | undefined;
  /** Aborted by close(): ends start()'s wait for a broker that is away. */
  const stopping = new AbortController();
  let unwatchConnection = (): void => undefined;
  let releaseId = (): boolean => false;
  async function shutdown(): Promise<void> {
    releaseId();
    unwatchConnection();
    if (commitTimer) clearInterval(commitTimer);
    if (lagTimer) clearInterval(lagTimer);
    for (const b of batchers.values()) b.close();
    await tasks?.idle();
    await globalTables.close();
    await tableDlq?.close().catch(() => undefined);
    // After the final commit: stores close cleanly (flushed, checkpointed) while the broker is still reachable.
    await stores?.close().catch((e: unknown) => log.warn({ err: (e as Error).message }, 'closing state stores failed'));
    await consumer?.close().catch(() => undefined);
    await producer?.close();
    await admin?.close().catch(() => undefined);
  }

  /**
   * Creates each store's compacted changelog topic with as many partitions as its
   * sub-topology's input (a task writes its own partition); existing ones are left alone, but
   * one with fewer partitions than the input is refused: tasks would lose their state.
   */
  async function createChangelogTopics(a: KafkaAdmin): Promise<void> {
    const changelogs = topology.internalTopics(options.applicationId).filter((t) => t.kind === 'changelog');
    if (changelogs.length === 0) return;
    const inputs = await a.describeTopics([...topology.inputTopics]);
    const partitionsOf = new Map(inputs.map((d) => [d.topic, d.partitions]));
    const wanted = changelogs.map((c) => {
      const st = topology.subtopologies[c.subtopology];
      const partitions = Math.max(...(st?.inputTopics ?? []).map((t) => partitionsOf.get(t) ?? 1), 1);
      return { topic: c.name, partitions, configs: { 'cleanup.policy': 'compact' } };
    });
    await a.createTopics(wanted);
    for (const d of await a.describeTopics(wanted.map((w) => w.topic))) {
      const want = wanted.find((w) => w.topic === d.topic)?.partitions ?? 0;
      if (d.partitions < want) {
        throw new InflowError(
          'FAILED_PRECONDITION',
          `changelog topic "${d.topic}" has ${d.partitions} partitions but its input has ${want}: delete it (the state is rebuilt) or give it ${want}`,
        );
      }
    }
  }

  /** One pump through the exclusive chain; Kafka errors rewind (or stop) the runner. */
  function pumpNow(): Promise<void> {
    const t = tasks as TaskManager;
    return t.exclusive(() => t.pump());
  }

  async function start(): Promise<void> {
    if (state !== 'created') throw new InflowError('FAILED_PRECONDITION', `runner is ${state}; create a new one`);
    state = 'running';
    const topics = [...topology.inputTopics];
    admin = client.admin();
    const a = admin;
    // A broker still booting (or away) is waited for, not taken for a missing topic.
    const existing = new Set(
      await retryTransient(() => a.listTopics(), {
        signal: stopping.signal,
        ...(client.connection ? { monitor: client.connection } : {}),
      }),
    );
    const tableTopics = [...topology.globalTables.values()].map((g) => g.topic);
    // The runner creates the repartition topics; the others are the user's.
    const internal = new Set(await createRepartitionTopics(a, topology, options.applicationId));
    const missing = [...topics, ...tableTopics, ...topology.outputTopics, ...(policy === 'dlq' ? [dlqTopic] : [])].filter(
      (t) => !existing.has(t) && !internal.has(t),
    );
    if (missing.length > 0) {
      state = 'failed';
      await admin.close();
      throw new InflowError(
        'KAFKA_TOPIC_NOT_FOUND',
        `topics missing: ${missing.join(', ')}; create them first (the pipeline does not create topics)`,
      );
    }
    const instanceId = options.instanceId ?? hostname();
    const transactionalId = `${options.applicationId}-${instanceId}`;
    if (eos) {
      if (liveTransactionalIds.has(transactionalId)) {
        state = 'failed';
        await admin.close();
        throw new InflowError(
          'FAILED_PRECONDITION',
          `another exactly-once runner of this process uses transactional id "${transactionalId}"; give each runner its own instanceId`,
        );
      }
      liveTransactionalIds.add(transactionalId);
      releaseId = () => liveTransactionalIds.delete(transactionalId);
    }
    if (stores) await createChangelogTopics(a);
    const p = new StreamsProducer({
      client,
      log,
      ...(eos ? { transactionalId } : {}),
      ...(options.transactionTimeoutMs === undefined ? {} : { transactionTimeoutMs: options.transactionTimeoutMs }),
    });
    producer = p;
    const t = new TaskManager({
      topology,
      processor,
      producer: p,
      collector: createRecordCollector(p, metrics, labels),
      policy,
      dlqTopic,
      maxRecordBytes: options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES,
      commitIntervalMs,
      autoOffsetReset: options.autoOffsetReset ?? 'earliest',
      metrics,
      labels,
      log,
      isFailed: () => fatal !== undefined,
      onFatal: fail,
      onKafkaError,
      onReleased: () => thread?.maybeResume(),
      // Repartition records consumed and committed are not needed again (Kafka Streams purges them too).
      onCommitted: createRepartitionPurger(
        () => admin,
        internal,
        (e: unknown) =>
          log.warn({ err: InflowError.from(e).message }, 'purging consumed repartition records failed; retried at the next commit'),
      ),
      ...(stores ? { state: stores } : {}),
    });
    tasks = t;
    await p.start();
    // Every row of every global table is in place before the first record is processed.
    await globalTables.start(stopping.signal);
    const c = client.consumer({
      groupId: options.applicationId,
      autoOffsetReset: options.autoOffsetReset ?? 'earliest',
      isolationLevel: eos ? 'read_committed' : 'read_uncommitted',
      maxBufferedRecords: Math.max(maxPoll * 2, 1024),
      // A task reads partition p of each input topic of its sub-topology: the group assigns them together.
      copartitioned: topology.subtopologies.map((s) => s.inputTopics).filter((topics) => topics.length > 1),
      ...(options.sessionTimeoutMs ? { sessionTimeoutMs: options.sessionTimeoutMs } : {}),
      ...(options.applicationServer === undefined ? {} : { applicationServer: options.applicationServer }),
    });
    consumer = c;
    t.attach(c);
    pauses = createPauseController(c);
    thread = new StreamThread({
      consumer: c,
      tasks: t,
      pauses,
      maxInFlight,
      maxPollRecords: maxPoll,
      metrics,
      labels,
      log,
      onFatal: fail,
    });
    await c.subscribe(topics, { onRevoked, onAssigned });
    t.restartCommitInterval();
    commitTimer = setInterval(() => {
      t.kick();
      checkStall();
    }, commitIntervalMs);
    commitTimer.unref();
    if ((options.lagIntervalMs ?? 5000) > 0) {
      lagTimer = setInterval(() => void updateLag().catch(() => undefined), options.lagIntervalMs ?? 5000);
      lagTimer.unref();
    }
    log.info({ guarantee, topics, instanceId }, 'pipeline started');
    const connection = client.connection;
    if (connection) {
      metrics.kafkaConnected.set(labels, connection.state === 'connected' ? 1 : 0);
      unwatchConnection = connection.onChange((c) => metrics.kafkaConnected.set(labels, c.state === 'connected' ? 1 : 0));
    }
    // A fatal error during start-up (a rewind in onRevoked) has stopped the runner already.
    if (!fatal) thread.start();
  }

  async function close(): Promise<void> {
    if (state !== 'running') {
      if (state === 'created') state = 'closed';
      return;
    }
    state = 'closing';
    stopping.abort();
    // During an outage the loop may be waiting in a rewind for the broker to return (a new
    // producer's InitProducerId, committed offsets): closing the clients ends those waits.
    const drainMs = options.drainTimeoutMs ?? 10_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stopped = await Promise.race([
      (thread?.stop() ?? Promise.resolve()).then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(r, drainMs, false))),
    ]).finally(() => clearTimeout(timer));
    if (!stopped) {
      log.warn('Kafka unreachable while stopping: in-flight records stay uncommitted and are reprocessed on restart');
      await Promise.all([consumer?.close().catch(() => undefined), producer?.close().catch(() => undefined)]);
      await thread?.stop();
    }
    const t = tasks as TaskManager;
    const deadline = Date.now() + drainMs;
    // After a failed produce or commit nothing drains: the records stay uncommitted and are redone later.
    while (t.inFlight > 0 && Date.now() < deadline && !fatal && t.rewindReason === undefined) {
      await new Promise((r) => setTimeout(r, 5));
      await pumpNow().catch((e: unknown) => onKafkaError(e));
    }
    if (!fatal) {
      t.requestCommit();
      await pumpNow().catch((e: unknown) => log.warn({ err: (e as Error).message }, 'final commit failed'));
      await producer?.abandonTransaction();
    }
    if (t.inFlight > 0)
      log.warn({ inFlight: t.inFlight }, 'closed with records in flight; they were not committed and will be reprocessed');
    await shutdown();
    if (!fatal) {
      state = 'closed';
      resolveDone();
    }
  }

  const storeQuery = createRunnerStoreQuery({
    topology,
    provider: storeProvider,
    groupId: options.applicationId,
    ...(options.applicationServer === undefined ? {} : { applicationServer: options.applicationServer }),
    // Only a running runner answers for its partitions (a closing one has handed them over or soon will).
    assignment: () => (state === 'running' ? consumer?.assignment() : undefined),
    admin: () => (state === 'running' ? admin : undefined),
  });

  return {
    metrics,
    done,
    start,
    syncGlobalTables: () => globalTables.catchUp(),
    stores: storeQuery,
    commitNow() {
      if (!tasks) return Promise.resolve();
      tasks.requestCommit();
      return pumpNow();
    },
    close() {
      closing ??= close();
      return closing;
    },
    stats() {
      return {
        state,
        connection: client.connection?.state ?? 'connected',
        inFlight: tasks?.inFlight ?? 0,
        assigned: consumer?.assignment() ?? [],
        paused: consumer?.paused().length ?? 0,
        predictPending: predictPending(),
        oldestInFlightMs: tasks?.oldestInFlight()?.age ?? 0,
        restoring: stores?.restoring ?? 0,
      };
    },
  };
}
