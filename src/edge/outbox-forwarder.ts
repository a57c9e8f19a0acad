/**
 * Drains the outbox to Kafka in order: the oldest records in one produce request (idempotent
 * producer, acks=all), removed only once Kafka acknowledged them, then the next. While Kafka is
 * unreachable, attempts back off through the Kafka layer's shared retry (../kafka/connection.ts:
 * capped exponential backoff with jitter, one log line when Kafka goes away and one when it is
 * back) and the outbox grows; nothing is dropped here. At-least-once: a produce that reached Kafka but whose acknowledgement was lost
 * (or a crash before the removal) sends the records again, with the same `inflow-message-id`
 * header, so consumers de-duplicate by it.
 *
 * A record Kafka refuses for good (KAFKA_RECORD_TOO_LARGE) would block every record behind it:
 * the batch is retried record by record and only the refused one is discarded (counted, logged).
 */
import { InflowError } from '../errors.ts';
import { backoffDelay, createConnectionMonitor, retryTransient, sleep } from '../kafka/connection.ts';
import type { KafkaProducer, ProducerRecord } from '../kafka/types.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';
import type { EdgeMetrics } from './edge-metrics.ts';
import type { EdgeStore, StoredRecord } from './edge-store.ts';

export interface ForwarderOptions {
  readonly store: EdgeStore;
  readonly producer: KafkaProducer;
  /** Records per produce request. */
  readonly batchRecords: number;
  /** Backoff between failed attempts: doubles from min to max (with jitter), ms. */
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  /** How long close() waits for a produce in flight, ms (its records stay in the outbox either way). Default 5000. */
  readonly closeTimeoutMs?: number;
  readonly metrics?: EdgeMetrics;
  readonly logger?: Logger;
  /** After each acknowledged batch (the count) — tests and status lines. */
  readonly onForwarded?: (count: number) => void;
  readonly random?: () => number;
  /**
   * The value to send for a stored record (its topic's record format, e.g. Avro under the Schema
   * Registry); default the stored bytes. Encoding waits for the send, so the outbox keeps filling
   * while the registry is away (retried like an outage); a record its schema cannot hold
   * (SERIALIZATION) is discarded like one Kafka refuses for good.
   */
  readonly encode?: (record: StoredRecord) => Buffer | null | Promise<Buffer | null>;
  /** Waits out one backoff (tests inject it); default: a timer that close() ends. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** A running forwarder. */
export interface OutboxForwarder {
  /** New records were appended: try now (an idle forwarder waits for this). */
  wake(): void;
  /**
   * Whether the cluster answered the last produce (false before the first one, and while it is
   * unreachable). A cluster that answers with an error (a missing topic, no authorization) is
   * connected: {@link lastError} says why nothing is forwarded.
   */
  readonly connected: boolean;
  /** Why the last produce failed; undefined once one succeeds. */
  readonly lastError: { code: string; message: string } | undefined;
  /** Stops; a produce in flight is waited for at most closeTimeoutMs. */
  close(): Promise<void>;
}

const toProducerRecord = (r: StoredRecord, value: Buffer | null = r.value): ProducerRecord => ({
  topic: r.topic,
  key: r.key,
  value,
  headers: r.headers.map(([k, v]) => [k, Buffer.from(v)] as const),
});

/** Errors that refuse one record for good (retrying cannot help): it is discarded so the rest can go. */
const REFUSED_RECORD: ReadonlySet<string> = new Set(['KAFKA_RECORD_TOO_LARGE', 'SERIALIZATION']);

/** Error codes that come from a broker's answer (so the cluster is reachable, but refuses). */
const ANSWERED_BY_CLUSTER: ReadonlySet<string> = new Set(['KAFKA_TOPIC_NOT_FOUND', 'UNAUTHENTICATED', 'PERMISSION_DENIED']);

/** Starts draining `store` into `producer`. */
export function startOutboxForwarder(options: ForwarderOptions): OutboxForwarder {
  const { store, producer, metrics } = options;
  const encode = options.encode;
  const send = async (batch: readonly StoredRecord[]): Promise<void> => {
    const records = encode
      ? await Promise.all(batch.map(async (r) => toProducerRecord(r, await encode(r))))
      : batch.map((r) => toProducerRecord(r));
    await producer.send(records);
  };
  const log = (options.logger ?? silentLogger).child({ component: 'edge-forwarder' });
  const random = options.random ?? Math.random;
  const stop = new AbortController();
  let connected = false;
  let lastError: InflowError | undefined;
  let kick: (() => void) | undefined;
  let pendingKick = false;

  /** Resolves on wake() or close(). */
  const idle = (): Promise<void> =>
    new Promise((resolve) => {
      if (pendingKick || stop.signal.aborted) {
        pendingKick = false;
        resolve();
        return;
      }
      const done = (): void => {
        stop.signal.removeEventListener('abort', done);
        kick = undefined;
        resolve();
      };
      kick = done;
      stop.signal.addEventListener('abort', done, { once: true });
    });

  // Reachable or not is the Kafka layer's connection state: one log line when Kafka goes away,
  // one when it is back, whatever the number of retries between.
  const monitor = createConnectionMonitor({ logger: log, name: 'Kafka (edge outbox)' });
  let everDrained = false;

  /** A produce was acknowledged: clears the failure; one line when the records flow again (the monitor's after an outage). */
  const succeeded = (): void => {
    const wasDown = monitor.state === 'disconnected';
    monitor.succeeded();
    if (!wasDown && (!everDrained || (lastError !== undefined && ANSWERED_BY_CLUSTER.has(lastError.code)))) {
      log.info('Kafka reachable: draining the outbox');
    }
    everDrained = true;
    connected = true;
    lastError = undefined;
    metrics?.kafkaConnected.set(1);
  };

  /** A produce failed: counted; an unreachable cluster is the monitor's to log, a refusal is logged once per reason. */
  const failed = (error: InflowError): void => {
    metrics?.forwardFailures.inc({ code: error.code });
    // Only errors the cluster itself answered with mean it is reachable; a network error, a timeout
    // or an unclassified failure counts as unreachable.
    const reachable = ANSWERED_BY_CLUSTER.has(error.code);
    if (!reachable) monitor.failed(error);
    else if (lastError?.code !== error.code || lastError.message !== error.message) {
      log.warn(
        { code: error.code, err: error.message, waiting: store.stats().records },
        error.code === 'KAFKA_TOPIC_NOT_FOUND'
          ? 'Kafka has no such topic: records wait in the outbox until it is created (the agent does not create topics)'
          : 'Kafka refused the records: they wait in the outbox',
      );
    }
    connected = reachable;
    lastError = error;
    metrics?.kafkaConnected.set(reachable ? 1 : 0);
  };

  const acknowledged = (batch: readonly StoredRecord[]): void => {
    const last = batch.at(-1);
    if (last === undefined) return;
    store.acknowledge(last.seq);
    if (metrics) {
      const perTopic = new Map<string, number>();
      for (const r of batch) perTopic.set(r.topic, (perTopic.get(r.topic) ?? 0) + 1);
      for (const [topic, n] of perTopic) metrics.forwarded.inc({ topic }, n);
    }
    options.onForwarded?.(batch.length);
  };

  /** Sends the batch one record at a time, discarding the ones Kafka refuses for good. */
  const isolate = async (batch: readonly StoredRecord[]): Promise<void> => {
    for (const r of batch) {
      try {
        await send([r]);
      } catch (error) {
        const e = InflowError.from(error);
        if (!REFUSED_RECORD.has(e.code)) throw e;
        metrics?.forwardDiscarded.inc({ code: e.code });
        log.error(
          { topic: r.topic, seq: r.seq, code: e.code, err: e.message },
          "a record was refused for good (by Kafka, or by its topic's schema); it is discarded so the rest can go",
        );
      }
      acknowledged([r]);
    }
  };

  /** Sends one batch and removes it from the outbox once acknowledged. */
  const forward = async (batch: readonly StoredRecord[]): Promise<void> => {
    try {
      await send(batch);
    } catch (error) {
      if (!REFUSED_RECORD.has(InflowError.from(error).code)) throw error;
      await isolate(batch);
      succeeded();
      return;
    }
    // The state first: whoever hears of the forwarded records sees the cluster connected.
    succeeded();
    acknowledged(batch);
  };

  const backoff = { initialMs: options.retryMinMs, maxMs: options.retryMaxMs, random };
  const wait = options.sleep ?? sleep;
  const run = async (): Promise<void> => {
    // Failures retrying cannot fix by itself (a missing topic, no authorization) still wait for an
    // operator: records stay, the batch is tried again at growing intervals.
    let refused = 0;
    while (!stop.signal.aborted) {
      const batch = store.peek(options.batchRecords);
      metrics?.outboxRecords.set(store.stats().records);
      metrics?.outboxBytes.set(store.stats().bytes);
      if (batch.length === 0) {
        await idle();
        continue;
      }
      try {
        // The shared mechanism (../kafka/connection.ts): capped exponential backoff with jitter, so
        // the agents of a site do not hammer the cluster in step; a backoff is not cut short by new
        // records (at 1 k msg/s it would never back off).
        await retryTransient(() => forward(batch), { ...backoff, monitor, signal: stop.signal, onRetry: failed, sleep: wait });
        refused = 0;
      } catch (error) {
        if (stop.signal.aborted) break;
        failed(InflowError.from(error));
        await wait(backoffDelay(refused++, backoff), stop.signal);
      }
    }
  };
  const loop = run().catch((error: unknown) => {
    // Only the store can fail here (closed under us, or a broken disk): say so; the agent goes on without forwarding.
    if (!stop.signal.aborted) log.error({ err: (error as Error).message }, 'the outbox forwarder stopped');
  });

  return {
    wake() {
      if (kick) kick();
      else pendingKick = true;
    },
    get connected() {
      return connected;
    },
    get lastError() {
      return lastError && { code: lastError.code, message: lastError.message };
    },
    async close() {
      stop.abort();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([loop, new Promise<void>((resolve) => (timer = setTimeout(resolve, options.closeTimeoutMs ?? 5000)))]);
      clearTimeout(timer);
    },
  };
}
