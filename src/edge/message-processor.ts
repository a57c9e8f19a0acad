/**
 * What the agent does with one device message, and in which order. Messages are decoded and
 * inferred concurrently (the model's dynamic batcher groups them), but their outputs leave in
 * arrival order, in two stages:
 *
 * 1. publish: the prediction (and the alerts that fire, or the error message) over MQTT;
 * 2. complete: once those publishes are acknowledged, the message's Kafka records (reading,
 *    prediction or error) are appended to the outbox and its journal row deleted — one SQLite
 *    transaction for every message that is ready at the head.
 *
 * So MQTT and the outbox see each device's messages in order, and a crash at any point leaves
 * the message in the journal (replayed: at-least-once, with the same message id unless the id
 * was made from the journal row itself). At most `maxInFlight` messages are between receipt and
 * completion; `admit()` waits for room, which is what holds the MQTT acknowledgements back.
 */
import { InflowError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';
import type { InferResponse } from '../serving/types.ts';
import { type DeviceMessage, idsOf, type Prediction, reasonOf } from './device-message.ts';
import type { EdgeMetrics } from './edge-metrics.ts';
import type { Completion, EdgeStore, OutboxRecord } from './edge-store.ts';

/** An MQTT publish the processor asks for. */
export interface Publication {
  readonly kind: 'prediction' | 'alert' | 'error';
  /** The alert rule's name (a metrics label). */
  readonly alert?: string;
  readonly topic: string;
  readonly payload: string;
  readonly qos: 0 | 1 | 2;
  readonly retain: boolean;
}

/** The pure part of processing a message, given by the agent (decode, infer, map, rules). */
export interface MessageHandlers {
  decode(topic: string, payload: Buffer, seq: string): DeviceMessage;
  infer(message: DeviceMessage): Promise<InferResponse>;
  predict(message: DeviceMessage, response: InferResponse, ts: number): Prediction;
  /** The MQTT publishes for a prediction (prediction topic, alerts that fire). */
  publications(prediction: Prediction): Publication[];
  /** The MQTT publish for an unscorable message, if an error topic is configured. */
  errorPublication(error: ErrorReport): Publication | undefined;
  /** The Kafka records of a scored / unscored message. */
  records(topic: string, payload: Buffer, message: DeviceMessage, prediction: Prediction): OutboxRecord[];
  errorRecords(topic: string, payload: Buffer, error: ErrorReport): OutboxRecord[];
}

/** What is said about a message that could not be scored. */
export interface ErrorReport {
  readonly topic: string;
  readonly reason: string;
  readonly code: string;
  readonly message: string;
  readonly device?: string;
  readonly id?: string;
  /** The payload as text, cut at 1024 characters. */
  readonly payload: string;
  readonly receivedAt: number;
}

export interface ProcessorOptions {
  readonly handlers: MessageHandlers;
  readonly store: EdgeStore;
  readonly publish: (p: Publication) => Promise<void>;
  readonly maxInFlight: number;
  /** Attempts of an inference that failed with a retriable code (UNAVAILABLE while a version loads, …). */
  readonly inferAttempts?: number;
  readonly metrics?: EdgeMetrics;
  readonly logger?: Logger;
  /** After each outbox append (to wake the forwarder). */
  readonly onCompleted?: (messages: number, stored: number) => void;
  readonly now?: () => number;
}

/** One admitted message. */
interface Slot {
  readonly journalId: number | undefined;
  readonly receivedAt: number;
  readonly outcome: Promise<Outcome>;
  published?: Promise<void>;
  settled?: boolean;
  /** False when a publish failed because the agent is closing: the message stays journaled. */
  ok?: boolean;
  records?: OutboxRecord[];
}

type Outcome = { publications: Publication[]; records: OutboxRecord[] };

export interface MessageProcessor {
  /**
   * Takes a message (journaled as `journalId`, or not when the disk refused it); resolves once it
   * is admitted — later when `maxInFlight` messages are in flight.
   */
  admit(topic: string, payload: Buffer, journalId: number | undefined, receivedAt: number): Promise<void>;
  /** Resolves when a message would be admitted at once (rejects UNAVAILABLE while closing). */
  room(): Promise<void>;
  /** Messages admitted and not completed. */
  readonly inFlight: number;
  /** Waits (at most `timeoutMs`) until every admitted message completed; then stops. Unfinished ones stay journaled. */
  close(timeoutMs: number): Promise<void>;
}

const cut = (payload: Buffer): string => {
  const text = payload.toString('utf8');
  return text.length > 1024 ? `${text.slice(0, 1024)}…` : text;
};

export function createMessageProcessor(options: ProcessorOptions): MessageProcessor {
  const { handlers, store, metrics } = options;
  const log = (options.logger ?? silentLogger).child({ component: 'edge-processor' });
  const now = options.now ?? Date.now;
  const attempts = options.inferAttempts ?? 4;
  const toPublish: Slot[] = [];
  const toComplete: Slot[] = [];
  let inFlight = 0;
  let closing = false;
  let memorySeq = 0;
  const roomWaiters: (() => void)[] = [];
  const idleWaiters: (() => void)[] = [];
  let publishing = false;
  let completing = false;

  async function inferWithRetry(message: DeviceMessage): Promise<InferResponse> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await handlers.infer(message);
      } catch (error) {
        const e = InflowError.from(error);
        if (!e.retriable || attempt >= attempts || closing) throw e;
        // 50, 100, 200 ms: long enough for a version swap, short enough not to hold the queue.
        await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** (attempt - 1)));
      }
    }
  }

  async function process(topic: string, payload: Buffer, seq: string, receivedAt: number): Promise<Outcome> {
    let message: DeviceMessage | undefined;
    try {
      message = handlers.decode(topic, payload, seq);
      const response = await inferWithRetry(message);
      const prediction = handlers.predict(message, response, now());
      metrics?.predictions.inc({ model: response.model, version: String(response.version) });
      metrics?.modelVersion.set({ model: response.model }, response.version);
      return { publications: handlers.publications(prediction), records: handlers.records(topic, payload, message, prediction) };
    } catch (error) {
      const e = InflowError.from(error);
      const reason = reasonOf(e);
      metrics?.rejected.inc({ reason });
      const report: ErrorReport = {
        topic,
        reason,
        code: e.code,
        message: e.message,
        ...(message ? { device: message.device, id: message.id } : idsOf(e)),
        payload: cut(payload),
        receivedAt,
      };
      log.warn({ topic, reason, err: e.message }, 'device message not scored');
      const publication = handlers.errorPublication(report);
      return { publications: publication ? [publication] : [], records: handlers.errorRecords(topic, payload, report) };
    }
  }

  async function room(): Promise<void> {
    if (closing) throw new InflowError('UNAVAILABLE', 'the edge agent is stopping; the message stays with the broker');
    while (inFlight >= options.maxInFlight) {
      await new Promise<void>((resolve) => roomWaiters.push(resolve));
      if (closing) throw new InflowError('UNAVAILABLE', 'the edge agent is stopping; the message stays with the broker');
    }
  }

  function release(n: number): void {
    inFlight -= n;
    while (inFlight < options.maxInFlight && roomWaiters.length > 0) roomWaiters.shift()?.();
    if (inFlight === 0) for (const w of idleWaiters.splice(0)) w();
  }

  /** Stage 1: publishes of each message in arrival order (acknowledgements awaited in stage 2). */
  async function publishLoop(): Promise<void> {
    if (publishing) return;
    publishing = true;
    try {
      while (toPublish.length > 0) {
        const slot = toPublish[0] as Slot;
        const outcome = await slot.outcome;
        toPublish.shift();
        slot.records = outcome.records;
        const receivedAt = slot.receivedAt;
        slot.published = Promise.all(
          outcome.publications.map((p) =>
            options.publish(p).then(
              () => {
                if (p.kind === 'prediction') metrics?.latency.observe((now() - receivedAt) / 1000);
                if (p.kind === 'alert') metrics?.alerts.inc({ alert: p.alert ?? 'alert' });
                return true;
              },
              (error: unknown) => {
                metrics?.mqttPublishFailures.inc({ kind: p.kind });
                log.warn({ topic: p.topic, err: (error as Error).message }, 'MQTT publish failed');
                return !closing;
              },
            ),
          ),
        ).then((oks) => {
          slot.ok = oks.every(Boolean);
          slot.settled = true;
        });
        toComplete.push(slot);
        void slot.published.then(completeLoop);
      }
    } finally {
      publishing = false;
    }
  }

  /** Stage 2: every message at the head whose publishes settled goes to the outbox in one transaction. */
  function completeLoop(): void {
    if (completing) return;
    completing = true;
    try {
      for (;;) {
        const batch: Slot[] = [];
        while (toComplete.length > 0 && toComplete[0]?.settled) batch.push(toComplete.shift() as Slot);
        if (batch.length === 0) return;
        // A publish that failed because the agent is closing leaves the message journaled (replayed).
        const completions: Completion[] = batch.map((s) =>
          s.ok === false ? { records: [] } : { journalId: s.journalId, records: s.records ?? [] },
        );
        let stored = 0;
        try {
          const outcome = store.complete(completions);
          stored = outcome.stored;
          if (outcome.dropped > 0) metrics?.outboxDropped.inc({ reason: outcome.reason ?? 'full' }, outcome.dropped);
          if (outcome.refused > 0) metrics?.outboxRefused.inc({ reason: outcome.reason ?? 'full' }, outcome.refused);
          if (outcome.dropped + outcome.refused > 0) {
            log.warn({ ...outcome, policy: 'see outbox.overflow' }, 'the outbox is full: records dropped or refused');
          }
        } catch (error) {
          log.error({ err: (error as Error).message }, 'appending to the outbox failed; the messages stay journaled');
        }
        const s = store.stats();
        metrics?.outboxRecords.set(s.records);
        metrics?.outboxBytes.set(s.bytes);
        options.onCompleted?.(batch.length, stored);
        release(batch.length);
      }
    } finally {
      completing = false;
    }
  }

  return {
    room,
    async admit(topic, payload, journalId, receivedAt) {
      await room();
      inFlight++;
      const seq = journalId === undefined ? `m${Date.now().toString(36)}-${++memorySeq}` : String(journalId);
      const slot: Slot = { journalId, receivedAt, outcome: process(topic, payload, seq, receivedAt) };
      toPublish.push(slot);
      void publishLoop();
    },
    get inFlight() {
      return inFlight;
    },
    async close(timeoutMs) {
      closing = true;
      for (const w of roomWaiters.splice(0)) w();
      if (inFlight === 0) return;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((resolve) => idleWaiters.push(resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
      ]);
      clearTimeout(timer);
    },
  };
}
