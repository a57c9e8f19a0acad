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
 *
 * Records in a Schema Registry format are encoded as they leave, so the registry being away holds
 * the outbox too: that is reported as the registry's failure (its URL, its own log lines and
 * `inflow_edge_schema_registry_connected`), never as Kafka's, whose state is left as it was.
 */
import { InflowError } from '../errors.ts';
import { backoffDelay, createConnectionMonitor, isTransient, retryTransient, sleep } from '../kafka/connection.ts';
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
  /** The Schema Registry `encode` reads its schemas from, named in the log when encoding fails. */
  readonly registryUrl?: string;
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
  /** Whether the last encode under the Schema Registry succeeded; undefined without `encode`, false before the first one. */
  readonly registryConnected: boolean | undefined;
  /** Why the last produce (or encode) failed; undefined once one succeeds. */
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
  const log = (options.logger ?? silentLogger).child({ component: 'edge-forwarder' });
  const encode = options.encode;
  const registryName = `Schema Registry${options.registryUrl ? ` at ${options.registryUrl}` : ''}`;
  /** Errors that came from encoding (the registry), not from Kafka. */
  const registryErrors = new WeakSet<InflowError>();
  let registryConnected = encode ? false : undefined;
  // The registry's own state and lines: a failure there says nothing about Kafka.
  const registryMonitor = createConnectionMonitor();
  registryMonitor.onChange(({ state, error, afterMs }) => {
    if (state === 'disconnected') {
      log.warn(
        { code: error?.code, err: error?.message, registry: options.registryUrl, waiting: store.stats().records },
        `${registryName} unreachable: records wait in the outbox until their schemas can be written (Kafka is not the cause); retrying with backoff — start the registry or correct schemaRegistry.url`,
      );
    } else log.info({ downMs: afterMs }, `${registryName} reachable again after ${(afterMs / 1000).toFixed(1)} s: draining the outbox`);
  });
  const encodeAll = async (batch: readonly StoredRecord[], enc: NonNullable<typeof encode>): Promise<ProducerRecord[]> => {
    let records: ProducerRecord[];
    try {
      records = await Promise.all(batch.map(async (r) => toProducerRecord(r, await enc(r))));
    } catch (error) {
      const e = InflowError.from(error, 'UNAVAILABLE');
      // A record its schema cannot hold is the record's fault (discarded below), not the registry's.
      if (e.code !== 'SERIALIZATION') registryErrors.add(e);
      throw e;
    }
    registryMonitor.succeeded();
    registryConnected = true;
    metrics?.registryConnected.set(1);
    return records;
  };
  const send = async (batch: readonly StoredRecord[]): Promise<void> => {
    await producer.send(encode ? await encodeAll(batch, encode) : batch.map((r) => toProducerRecord(r)));
  };
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
    if (
      !wasDown &&
      (!everDrained || (lastError !== undefined && !registryErrors.has(lastError) && ANSWERED_BY_CLUSTER.has(lastError.code)))
    ) {
      log.info('Kafka reachable: draining the outbox');
    }
    everDrained = true;
    connected = true;
    lastError = undefined;
    metrics?.kafkaConnected.set(1);
  };

  /** Encoding under the registry failed: its monitor logs an outage, a refusal is logged once per reason; Kafka's state stays. */
  const registryFailed = (error: InflowError): void => {
    if (isTransient(error)) registryMonitor.failed(error);
    else if (lastError?.code !== error.code || lastError.message !== error.message) {
      log.warn(
        { code: error.code, err: error.message, registry: options.registryUrl, waiting: store.stats().records },
        `${registryName} refused to encode the records: they wait in the outbox until the schema or the registry is fixed`,
      );
    }
    registryConnected = !isTransient(error);
    lastError = error;
    metrics?.registryConnected.set(registryConnected ? 1 : 0);
  };

  /** A produce failed: counted; an unreachable cluster is the monitor's to log, a refusal is logged once per reason. */
  const failed = (error: InflowError): void => {
    metrics?.forwardFailures.inc({ code: error.code });
    if (registryErrors.has(error)) {
      registryFailed(error);
      return;
    }
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
        // The monitors are told by failed() and succeeded(): which one depends on whether Kafka or the registry failed.
        await retryTransient(() => forward(batch), { ...backoff, signal: stop.signal, onRetry: failed, sleep: wait });
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
    get registryConnected() {
      return registryConnected;
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
