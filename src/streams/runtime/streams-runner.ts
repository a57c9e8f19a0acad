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
import type { KafkaAdmin, KafkaConsumer, TopicPartition } from '../../kafka/types.ts';
import { partitionKey } from '../../kafka/types.ts';
import { silentLogger } from '../../observability/logger.ts';
import { systemClock } from '../../serving/clock.ts';
import type { Topology } from '../api/topology.ts';
import { createMemoryStoreProvider, type StoreProvider } from '../state/store-provider.ts';
import type { ErrorPolicy } from './dead-letter.ts';
import { createGlobalTables } from './global-tables.ts';
import { createPauseController, type PauseController } from './pause-controller.ts';
import { createPredictBatchers } from './predict-batcher.ts';
import { createRecordCollector } from './record-collector.ts';
import { createRecordProcessor } from './record-processor.ts';
import { createChangelogTopics, prepareTopics } from './prepare-topics.ts';
import { createRepartitionPurger } from './repartition-topics.ts';
import { createRestorePauser } from './restore-pauser.ts';
import { createRunnerStoreQuery } from './runner-store-query.ts';
import { DEFAULT_MAX_RECORD_BYTES } from './sink-record.ts';
import { createStallWatch } from './stall-watch.ts';
import { StreamThread } from './stream-thread.ts';
import { createStreamsMetrics } from './streams-metrics.ts';
import { StreamsProducer } from './streams-producer.ts';
import { DEFAULT_MAX_TASK_IDLE_MS, type RunnerStats, type StreamsRunner, type StreamsRunnerOptions } from './streams-runner-options.ts';
import { createTableDeadLetters } from './table-dead-letters.ts';
import { TaskManager } from './task-manager.ts';
import { TaskStores } from './task-stores.ts';

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

  const maxRecordBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;

  const batchers = createPredictBatchers(topology, clock, metrics, log, options.applicationId);
  const tableDlq = createTableDeadLetters({ client, policy, dlqTopic, maxRecordBytes, metrics, labels, log, fail });
  const globalTables = createGlobalTables({
    topology,
    client,
    log,
    onFatal: (e) => fail(e),
    onBadRecord: (record, table, error) => tableDlq.onBadRecord(record, table, error),
    applicationId: options.applicationId,
    ...(options.stateDir === undefined ? {} : { stateDir: options.stateDir }),
    ...(options.maxStoreBytes === undefined ? {} : { maxStoreBytes: options.maxStoreBytes }),
    metrics,
    labels,
  });
  const stores =
    options.stores || topology.stores.size === 0
      ? undefined
      : new TaskStores({
          topology,
          applicationId: options.applicationId,
          client,
          eos,
          ...(options.stateDir === undefined ? {} : { stateDir: options.stateDir }),
          ...(options.maxStoreBytes === undefined ? {} : { maxStoreBytes: options.maxStoreBytes }),
          metrics,
          labels,
          log,
        });
  const storeProvider: StoreProvider = options.stores ?? stores ?? createMemoryStoreProvider();
  const processor = createRecordProcessor(topology, batchers, {
    maxRecordBytes,
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

  const checkStall = createStallWatch(() => tasks, predictPending, log);

  async function onRevoked(revoked: TopicPartition[]): Promise<void> {
    log.info({ partitions: revoked.map((p) => partitionKey(p.topic, p.partition)) }, 'partitions revoked');
    thread?.onRevoked(revoked);
    if (isDesignated(revoked)) void tableDlq.setWriter(false);
    const t = tasks as TaskManager;
    t.unassigned(revoked);
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
  const pauseWhileRestoring = stores
    ? createRestorePauser({ stores, pauses: () => pauses, metrics, labels, wake: () => thread?.wake(), fail })
    : undefined;
  /**
   * The designated task's partition: its owner writes the dead letters of bad global-table rows
   * (table-dead-letters.ts), so each is written by one instance, not by every one that reads it.
   */
  const designated = topology.subtopologies[0]?.inputTopics[0];
  const isDesignated = (tps: readonly TopicPartition[]): boolean => tps.some((tp) => tp.topic === designated && tp.partition === 0);
  function onAssigned(added: TopicPartition[]): void {
    if (isDesignated(added)) void tableDlq.setWriter(true).catch((e: unknown) => fail(e));
    tasks?.assigned(added);
    thread?.onAssigned(added);
    pauseWhileRestoring?.(added);
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
    await tableDlq.close();
    // After the final commit: stores close cleanly (flushed, checkpointed) while the broker is still reachable.
    await stores?.close().catch((e: unknown) => log.warn({ err: (e as Error).message }, 'closing state stores failed'));
    await consumer?.close().catch(() => undefined);
    await producer?.close();
    await admin?.close().catch(() => undefined);
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
    let internal: Set<string>;
    try {
      internal = await prepareTopics(a, topology, {
        applicationId: options.applicationId,
        dlqTopic: policy === 'dlq' ? dlqTopic : undefined,
        signal: stopping.signal,
        ...(client.connection ? { monitor: client.connection } : {}),
      });
    } catch (e) {
      if (InflowError.from(e).code === 'KAFKA_TOPIC_NOT_FOUND') {
        state = 'failed';
        await a.close();
      }
      throw e;
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
    if (stores) await createChangelogTopics(a, topology, options.applicationId);
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
      maxRecordBytes,
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
      maxTaskIdleMs: options.maxTaskIdleMs ?? DEFAULT_MAX_TASK_IDLE_MS,
      now: () => clock.now() / 1000,
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
      ...(options.staticMembership ? { groupInstanceId: instanceId } : {}),
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
      // Held records of a task waiting for an idle partition go once the wait ends (max.task.idle.ms).
      t.processReady();
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
