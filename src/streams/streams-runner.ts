/**
 * Runs a {@link Topology} on Kafka: one consumer-group member, concurrent micro-batched
 * inference, outputs in input order per partition, offsets committed only after the outputs
 * (or dead-letter records) are acknowledged — in Kafka transactions in exactly-once mode.
 *
 * Backpressure: at most `maxInFlight` records are between poll() and their acknowledgement;
 * beyond that every partition is paused while poll() goes on (heartbeats and rebalances keep
 * working, so a slow model never causes a rebalance storm), and resumed at half the budget.
 *
 * Failures: a revoked partition's in-flight records are abandoned uncommitted (the new owner
 * reprocesses them). In exactly-once mode a revocation or any transaction error aborts the open
 * transaction, drops all in-flight work and rewinds every partition to its committed offset.
 */
import { hostname } from 'node:os';
import { InflowError } from '../errors.ts';
import type {
  ConsumedRecord,
  KafkaAdmin,
  KafkaClient,
  KafkaConsumer,
  KafkaProducer,
  KafkaTransaction,
  ProducerOptions,
  ProducerRecord,
  TopicPartition,
} from '../kafka/types.ts';
import { partitionKey } from '../kafka/types.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';
import { type Clock, systemClock } from '../serving/clock.ts';
import { deadLetterRecord, type ErrorPolicy } from './dead-letter.ts';
import { PartitionState, type InFlightRecord } from './partition-state.ts';
import { createPredictBatcher, type PredictBatcher } from './predict-batcher.ts';
import { createRecordProcessor, StageError } from './record-processor.ts';
import { createStreamsMetrics, type StreamsMetrics } from './streams-metrics.ts';
import type { Topology } from './topology.ts';

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
   * under the error policy. Default 1 000 000 (the broker's message.max.bytes is 1 MiB by default).
   */
  readonly maxRecordBytes?: number;
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
  readonly inFlight: number;
  readonly assigned: readonly TopicPartition[];
  readonly paused: number;
  /** Rows queued in predict batchers. */
  readonly predictPending: number;
  /** How long the oldest record not yet produced has been in the runner, ms (0 when none). */
  readonly oldestInFlightMs: number;
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
  stats(): RunnerStats;
  readonly metrics: StreamsMetrics;
}

/** A record in the runner longer than this is logged once, ms. */
const STALL_WARN_MS = 60_000;

/** Transactional ids of the runners of this process: two would fence each other. */
const liveTransactionalIds = new Set<string>();

/** Creates a runner; nothing happens until start(). */
export function createStreamsRunner(topology: Topology, options: StreamsRunnerOptions): StreamsRunner {
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
  const pipeline = { pipeline: options.applicationId };
  const client = options.client;

  const batchers = new Map<string, PredictBatcher>();
  for (const node of topology.nodes.values()) {
    if (node.kind !== 'predict') continue;
    const labels = { ...pipeline, node: node.name };
    batchers.set(
      node.name,
      createPredictBatcher(node.spec, clock, {
        onBatch(rows, seconds) {
          metrics.batchSize.observe(labels, rows);
          metrics.inferenceDuration.observe(labels, seconds);
        },
        onRetry(error) {
          metrics.inferenceRetries.inc({ ...labels, code: error.code });
          log.warn({ node: node.name, code: error.code, err: error.message }, 'inference failed; retrying');
        },
      }),
    );
  }
  const processor = createRecordProcessor(
    topology,
    batchers,
    options.maxRecordBytes === undefined ? {} : { maxRecordBytes: options.maxRecordBytes },
  );

  let state: RunnerStats['state'] = 'created';
  let consumer: KafkaConsumer | undefined;
  let producer: KafkaProducer | undefined;
  let producerOptions: ProducerOptions = {};
  let admin: KafkaAdmin | undefined;
  let txn: KafkaTransaction | undefined;
  /** Whether the open transaction holds anything (an empty one is neither committed nor aborted). */
  let txnUsed = false;
  const partitions = new Map<string, PartitionState>();
  let inFlight = 0;
  let pausedByUs = false;
  let lastCommit = 0;
  let forceCommit = false;
  /** An at-least-once offset commit running beside produces. */
  let background: Promise<void> | undefined;
  /**
   * Set the moment a produce or commit fails, cleared when the rewind it calls for has moved
   * the consumer: until then nothing is produced or committed. A pump that ran after a failed
   * send took the records behind the failed ones, moved the partitions' produced offsets past
   * them and committed those (seen: 22 inputs without a prediction after "addPartitionsToTransaction
   * failed" under load).
   */
  let rewindReason: string | undefined;
  /** Aborts the poll in progress, so the loop runs a requested rewind at once. */
  let wakePoll: AbortController | undefined;
  let chain: Promise<void> = Promise.resolve();
  let pumpQueued = false;
  const stopPolling = new AbortController();
  let loop: Promise<void> | undefined;
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

  /** Runs `fn` after every earlier exclusive step (pumps, rewinds): one writer to Kafka at a time. */
  function exclusive(fn: () => Promise<void>): Promise<void> {
    const next = chain.then(fn);
    chain = next.catch(() => undefined);
    return next;
  }

  function setInFlight(delta: number): void {
    inFlight += delta;
    metrics.inFlight.set(pipeline, inFlight);
  }

  function fail(error: unknown): void {
    if (fatal || state === 'closed') return;
    fatal = InflowError.from(error);
    log.error({ code: fatal.code, err: fatal.message }, 'pipeline stopped on a fatal error');
    state = 'failed';
    stopPolling.abort();
    void shutdown().finally(() => rejectDone(fatal));
  }

  function complete(ps: PartitionState, entry: InFlightRecord, result: ProducerRecord[] | StageError): void {
    if (!ps.live || fatal) return;
    if (result instanceof StageError) {
      const labels = { ...pipeline, stage: result.stage, code: result.error.code };
      const where = { topic: entry.record.topic, partition: entry.record.partition, offset: String(entry.record.offset) };
      if (policy === 'fail') {
        fail(
          new InflowError(result.error.code, `record ${where.topic}/${where.partition}@${where.offset}: ${result.message}`, {
            cause: result,
          }),
        );
        return;
      }
      log.warn(
        { ...where, stage: result.stage, node: result.node, code: result.error.code, err: result.error.message },
        `record ${policy === 'dlq' ? 'dead-lettered' : 'skipped'}`,
      );
      if (policy === 'dlq') {
        metrics.deadLettered.inc(labels);
        entry.out = [deadLetterRecord(dlqTopic, entry.record, result, Date.now())];
      } else {
        metrics.skipped.inc(labels);
        entry.out = [];
      }
    } else {
      entry.out = result;
    }
    if (ps.headReady()) kick();
  }

  function admit(record: ConsumedRecord): void {
    const key = partitionKey(record.topic, record.partition);
    let ps = partitions.get(key);
    if (!ps) {
      ps = new PartitionState({ topic: record.topic, partition: record.partition });
      partitions.set(key, ps);
    }
    const entry = ps.add(record);
    if (!entry) {
      metrics.redelivered.inc(pipeline);
      return;
    }
    setInFlight(1);
    metrics.recordsIn.inc(pipeline);
    const owner = ps;
    let result;
    try {
      result = processor.process(record);
    } catch (e) {
      complete(owner, entry, e instanceof StageError ? e : new StageError('process', '(runner)', e));
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (out) => complete(owner, entry, out),
        (e: unknown) => complete(owner, entry, e instanceof StageError ? e : new StageError('process', '(runner)', e)),
      );
    } else complete(owner, entry, result);
  }

  /** Schedules one pump (coalesced): produce what is ready, commit when due. */
  function kick(): void {
    if (pumpQueued || fatal) return;
    pumpQueued = true;
    void exclusive(async () => {
      pumpQueued = false;
      await pump();
    }).catch((e: unknown) => onKafkaError(e));
  }

  async function pump(): Promise<void> {
    if (fatal || !producer || rewindReason !== undefined) return;
    const ready: InFlightRecord[] = [];
    const advanced: [PartitionState, bigint][] = [];
    for (const ps of partitions.values()) {
      if (ps.takeReady(ready) > 0) advanced.push([ps, (ready[ready.length - 1] as InFlightRecord).record.offset + 1n]);
    }
    if (ready.length > 0) {
      const records = ready.flatMap((e) => e.out as ProducerRecord[]);
      try {
        if (records.length > 0) {
          if (eos) {
            txn ??= await producer.beginTransaction();
            txnUsed = true;
            await txn.send(records);
          } else await producer.send(records);
        }
      } catch (error) {
        // These records left their partition states; the rewind that follows consumes them
        // again. Counted as in flight still, they would hold the budget (and, after enough
        // failed sends, keep every partition paused) for ever.
        setInFlight(-ready.length);
        rewindReason ??= 'produce failed';
        throw error;
      }
      const now = Date.now();
      for (const e of ready) metrics.endToEnd.observe(pipeline, Math.max(0, now - e.record.timestamp) / 1000);
      for (const r of records) metrics.recordsOut.inc({ ...pipeline, topic: r.topic });
      for (const [ps, offset] of advanced) if (ps.live) ps.produced = offset;
      setInFlight(-ready.length);
      maybeResume();
    }
    const due = forceCommit || Date.now() - lastCommit >= commitIntervalMs;
    if (!due) return;
    if (eos || forceCommit) {
      await background;
      await commit();
      return;
    }
    // At-least-once: the offset commit (a round trip to the group coordinator) runs beside the
    // next produces rather than ahead of them; it only names outputs already acknowledged.
    background ??= commit()
      .catch((e: unknown) => onKafkaError(e))
      .finally(() => {
        background = undefined;
      });
  }

  async function commit(): Promise<void> {
    forceCommit = false;
    lastCommit = Date.now();
    if (rewindReason !== undefined) return;
    try {
      await commitNow();
    } catch (error) {
      rewindReason ??= 'commit failed';
      throw error;
    }
  }

  async function commitNow(): Promise<void> {
    const offsets = [...partitions.values()]
      .filter((ps) => ps.live && ps.produced !== undefined && ps.produced !== ps.committed)
      .map((ps) => ({ ...ps.tp, offset: ps.produced as bigint }));
    if (!consumer || !producer) return;
    if (eos) {
      if (offsets.length === 0 && !txnUsed) return;
      txn ??= await producer.beginTransaction();
      txnUsed = true;
      if (offsets.length > 0) await txn.sendOffsets(consumer, offsets);
      const t = txn;
      txn = undefined;
      txnUsed = false;
      try {
        await t.commit();
      } catch (error) {
        // Outcome unknown: the rewind aborts it, or starts a new producer to end it.
        txn = t;
        txnUsed = true;
        throw error;
      }
    } else {
      if (offsets.length === 0) return;
      await consumer.commit(offsets);
    }
    for (const o of offsets) {
      const ps = partitions.get(partitionKey(o.topic, o.partition));
      if (ps) ps.committed = o.offset;
    }
    metrics.commits.inc(pipeline);
  }

  /** Replaces the producer; in exactly-once mode the new one registers the transactional id at once. */
  async function restartProducer(): Promise<void> {
    const old = producer;
    txn = undefined;
    txnUsed = false;
    producer = client.producer(producerOptions);
    if (eos) txn = await producer.beginTransaction();
    await old?.close().catch(() => undefined);
  }

  /** Drops every in-flight record and rewinds each assigned partition to its committed offset. */
  async function rewind(reason: string): Promise<void> {
    if (!consumer) return;
    const c = consumer;
    metrics.rewinds.inc({ ...pipeline, reason });
    if (rewindReason !== undefined) {
      // After a failed produce or commit the producer's state (idempotent sequence numbers, the
      // transaction's) is not to be trusted: the same producer could not produce again after
      // the broker refused a record (measured). A new one starts clean, and in exactly-once mode
      // its InitProducerId ends the open transaction (commit if it was prepared, abort otherwise).
      await restartProducer();
    } else if (txn && txnUsed) {
      const t = txn;
      txn = undefined;
      txnUsed = false;
      try {
        await t.abort();
      } catch (error) {
        log.warn({ err: (error as Error).message }, 'aborting the transaction failed; starting a new producer to end it');
        await restartProducer();
      }
    }
    const assigned = c.assignment();
    const committed = assigned.length > 0 ? await c.committed(assigned) : [];
    // From here to the seeks, synchronously: drop the partition states and move the consumer.
    // Records polled while the awaits above ran went into the old states and are dropped with
    // them; had the states been dropped before the awaits, those records — fetched from the old
    // positions, past the committed offset — would have started fresh states, their offsets
    // could be committed before the rewound records were produced again, and a crash then lost
    // the records in between.
    for (const ps of partitions.values()) {
      ps.live = false;
      setInFlight(-ps.size);
    }
    partitions.clear();
    rewindReason = undefined;
    const still = new Set(c.assignment().map((p) => partitionKey(p.topic, p.partition)));
    for (const position of committed) {
      if (!still.has(partitionKey(position.topic, position.partition))) continue;
      // No committed offset yet: the consumer's reset policy applies again (seek to the start).
      if (position.offset >= 0n) c.seek(position);
      else if ((options.autoOffsetReset ?? 'earliest') === 'earliest') c.seek({ ...position, offset: 0n });
    }
    maybeResume();
    log.warn({ reason, partitions: assigned.length }, 'in-flight work dropped; partitions rewound to their committed offsets');
  }

  function onKafkaError(error: unknown): void {
    const e = InflowError.from(error, 'KAFKA_ERROR');
    if (e.code === 'KAFKA_FENCED' || !e.retriable) {
      fail(e);
      return;
    }
    log.warn({ code: e.code, err: e.message }, 'producing or committing failed; rewinding');
    rewindReason = e.code;
    // The poll loop runs the rewind between two polls, so no poll overlaps the seek.
    wakePoll?.abort();
    if (!loop || state !== 'running') void exclusive(() => rewind(e.code)).catch((r: unknown) => fail(r));
  }

  /** Rows queued in or sent by the predict batchers. */
  function predictPending(): number {
    let n = 0;
    for (const b of batchers.values()) n += b.pending;
    return n;
  }

  /** The head record that has waited longest, and for how long (ms). */
  function oldestInFlight(): { entry: InFlightRecord; age: number } | undefined {
    const now = Date.now();
    let oldest: { entry: InFlightRecord; age: number } | undefined;
    for (const ps of partitions.values()) {
      const entry = ps.head();
      if (entry && (!oldest || now - entry.at > oldest.age)) oldest = { entry, age: now - entry.at };
    }
    return oldest;
  }

  /** Logs a record stuck in the runner (once per record): where it waits tells a slow model from a stalled producer. */
  let reportedStall: InFlightRecord | undefined;
  function checkStall(): void {
    const oldest = oldestInFlight();
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
        inFlight,
        predictPending: predictPending(),
      },
      oldest.entry.out === undefined
        ? 'a record has waited for its prediction for over a minute'
        : 'a processed record has waited to be produced for over a minute',
    );
  }

  function applyBackpressure(): void {
    if (!consumer || pausedByUs || inFlight < maxInFlight) return;
    const assigned = consumer.assignment();
    consumer.pause(assigned);
    pausedByUs = true;
    metrics.pausedPartitions.set(pipeline, assigned.length);
  }

  function maybeResume(): void {
    if (!consumer || !pausedByUs || inFlight > maxInFlight / 2) return;
    consumer.resume(consumer.assignment());
    pausedByUs = false;
    metrics.pausedPartitions.set(pipeline, 0);
  }

  async function onRevoked(revoked: TopicPartition[]): Promise<void> {
    log.info({ partitions: revoked.map((p) => partitionKey(p.topic, p.partition)) }, 'partitions revoked');
    if (eos) {
      // The open transaction may hold outputs of revoked partitions whose offsets can no longer be committed.
      await exclusive(() => rewind('rebalance'));
      return;
    }
    for (const tp of revoked) {
      const key = partitionKey(tp.topic, tp.partition);
      const ps = partitions.get(key);
      if (!ps) continue;
      ps.live = false;
      setInFlight(-ps.size);
      partitions.delete(key);
    }
  }

  async function runLoop(): Promise<void> {
    const c = consumer as KafkaConsumer;
    while (!stopPolling.signal.aborted) {
      if (rewindReason !== undefined) {
        const reason = rewindReason;
        await exclusive(() => rewind(reason)).catch((r: unknown) => fail(r));
        continue;
      }
      applyBackpressure();
      const room = maxInFlight - inFlight;
      let records: ConsumedRecord[];
      wakePoll = new AbortController();
      try {
        records = await c.poll({
          maxRecords: Math.max(1, Math.min(maxPoll, room)),
          timeoutMs: 200,
          signal: AbortSignal.any([stopPolling.signal, wakePoll.signal]),
        });
      } catch (e) {
        const err = InflowError.from(e, 'KAFKA_ERROR');
        if (stopPolling.signal.aborted) return;
        if (err.retriable && err.code !== 'KAFKA_ERROR') {
          log.warn({ code: err.code, err: err.message }, 'poll failed; retrying');
          continue;
        }
        fail(err);
        return;
      }
      for (const r of records) admit(r);
    }
  }

  async function updateLag(): Promise<void> {
    if (!admin) return;
    const lag = await admin.groupLag(options.applicationId, [...topology.inputTopics]);
    for (const l of lag) metrics.consumerLag.set({ ...pipeline, topic: l.topic, partition: String(l.partition) }, Number(l.lag));
  }

  let closing: Promise<void> | undefined;
  let releaseId = (): boolean => false;
  async function shutdown(): Promise<void> {
    releaseId();
    if (commitTimer) clearInterval(commitTimer);
    if (lagTimer) clearInterval(lagTimer);
    for (const b of batchers.values()) b.close();
    await chain;
    await background;
    await consumer?.close().catch(() => undefined);
    await producer?.close().catch(() => undefined);
    await admin?.close().catch(() => undefined);
  }

  return {
    metrics,
    done,
    async start() {
      if (state !== 'created') throw new InflowError('FAILED_PRECONDITION', `runner is ${state}; create a new one`);
      state = 'running';
      const topics = [...topology.inputTopics];
      admin = client.admin();
      const existing = new Set(await admin.listTopics());
      const missing = [...topics, ...topology.outputTopics, ...(policy === 'dlq' ? [dlqTopic] : [])].filter((t) => !existing.has(t));
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
      producerOptions = eos
        ? {
            transactionalId,
            ...(options.transactionTimeoutMs === undefined ? {} : { transactionTimeoutMs: options.transactionTimeoutMs }),
          }
        : { idempotent: true };
      producer = client.producer(producerOptions);
      if (eos) {
        // Fence our predecessor before reading any offset (Kafka Streams' initTransactions() first):
        // registering the transactional id makes the coordinator finish a killed instance's
        // transaction — commit if it was prepared, abort otherwise — so the committed offsets read
        // next are stable (the client fetches them without require_stable, KIP-447).
        // The transaction stays open, empty, and carries the first outputs (an empty one cannot be ended).
        txn = await producer.beginTransaction();
      }
      consumer = client.consumer({
        groupId: options.applicationId,
        autoOffsetReset: options.autoOffsetReset ?? 'earliest',
        isolationLevel: eos ? 'read_committed' : 'read_uncommitted',
        maxBufferedRecords: Math.max(maxPoll * 2, 1024),
        ...(options.sessionTimeoutMs ? { sessionTimeoutMs: options.sessionTimeoutMs } : {}),
      });
      await consumer.subscribe(topics, { onRevoked });
      lastCommit = Date.now();
      commitTimer = setInterval(() => {
        kick();
        checkStall();
      }, commitIntervalMs);
      commitTimer.unref();
      if ((options.lagIntervalMs ?? 5000) > 0) {
        lagTimer = setInterval(() => void updateLag().catch(() => undefined), options.lagIntervalMs ?? 5000);
        lagTimer.unref();
      }
      log.info({ guarantee, topics, instanceId }, 'pipeline started');
      loop = runLoop();
    },
    commitNow() {
      forceCommit = true;
      return exclusive(pump);
    },
    close() {
      closing ??= (async () => {
        if (state !== 'running') {
          if (state === 'created') state = 'closed';
          return;
        }
        state = 'closing';
        stopPolling.abort();
        await loop;
        const deadline = Date.now() + (options.drainTimeoutMs ?? 10_000);
        // After a failed produce or commit nothing drains: the records stay uncommitted and are redone later.
        while (inFlight > 0 && Date.now() < deadline && !fatal && rewindReason === undefined) {
          await new Promise((r) => setTimeout(r, 5));
          await exclusive(pump).catch((e: unknown) => onKafkaError(e));
        }
        if (!fatal) {
          forceCommit = true;
          await exclusive(pump).catch((e: unknown) => log.warn({ err: (e as Error).message }, 'final commit failed'));
          if (txn) await txn.abort().catch(() => undefined);
        }
        if (inFlight > 0) log.warn({ inFlight }, 'closed with records in flight; they were not committed and will be reprocessed');
        await shutdown();
        if (!fatal) {
          state = 'closed';
          resolveDone();
        }
      })();
      return closing;
    },
    stats() {
      return {
        state,
        inFlight,
        assigned: consumer?.assignment() ?? [],
        paused: consumer?.paused().length ?? 0,
        predictPending: predictPending(),
        oldestInFlightMs: oldestInFlight()?.age ?? 0,
      };
    },
  };
}
