/**
 * Replays events into a topic at a steady rate: input `seq` is due at `seq / rate` seconds after
 * the start, and whatever is due is sent in one batch (so a slow tick catches up instead of
 * drifting). The demo's events are the labelled digits: key `d-<seq>`, value `{"id": "d-<seq>",
 * "pixels": [64]}` (row `seq mod rows` of the dataset; the label stays out of the event, as in
 * production).
 */
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { KafkaProducer, ProducerRecord } from '../kafka/types.ts';

/** Options of {@link replayDataset}. */
export interface ReplayOptions {
  readonly producer: KafkaProducer;
  readonly topic: string;
  /** The key and value (JSON text) of input `seq` (see {@link digitEvents}). */
  readonly event: (seq: number) => { key: string; value: string };
  readonly records: number;
  /** Records per second; 0 = as fast as the producer takes them. */
  readonly rate: number;
  /** Filled with performance.now() at which each input was handed to the producer, ms. */
  readonly sentAt: Float64Array;
  readonly signal: AbortSignal;
  /** Called after each batch with the number sent so far. */
  readonly onProgress?: (sent: number) => void;
  /** Time source, ms. Default performance.now. */
  readonly now?: () => number;
  /** Waits `ms` (rejects when the signal aborts). Default timers/promises setTimeout. */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<unknown>;
}

/** Largest batch handed to the producer at once. */
const MAX_BATCH = 500;

/**
 * The digits events: input `seq` is row `seq mod rows`, as `{"id": "<prefix>-<seq>", "pixels":
 * [...]}` with the id as key (`prefix` keeps the keys of two runs on one topic apart).
 */
export function digitEvents(rows: readonly (readonly number[])[], prefix = 'd'): (seq: number) => { key: string; value: string } {
  const rowJson = rows.map((r) => JSON.stringify(r));
  return (seq) => ({ key: `${prefix}-${seq}`, value: `{"id":"${prefix}-${seq}","pixels":${rowJson[seq % rowJson.length] as string}}` });
}

/** Sends the events; resolves with the number sent (fewer when the signal aborted). */
export async function replayDataset(options: ReplayOptions): Promise<number> {
  const now = options.now ?? (() => performance.now());
  const sleep = options.sleep ?? ((ms: number, signal: AbortSignal) => sleepFor(ms, undefined, { signal }));
  const start = now();
  let sent = 0;
  while (sent < options.records && !options.signal.aborted) {
    const elapsed = now() - start;
    const due = options.rate > 0 ? Math.min(options.records, Math.floor((elapsed * options.rate) / 1000) + 1) : options.records;
    if (due <= sent) {
      // The next input is due at sent / rate seconds; wait for it (at least 1 ms).
      const wait = Math.max(1, (sent * 1000) / options.rate - elapsed);
      try {
        await sleep(wait, options.signal);
      } catch {
        break;
      }
      continue;
    }
    const upTo = Math.min(due, sent + MAX_BATCH);
    const batch: ProducerRecord[] = [];
    const t = now();
    for (let seq = sent; seq < upTo; seq++) {
      const { key, value } = options.event(seq);
      batch.push({ topic: options.topic, key: Buffer.from(key), value: Buffer.from(value) });
      options.sentAt[seq] = t;
    }
    await options.producer.send(batch);
    sent = upTo;
    options.onProgress?.(sent);
  }
  return sent;
}
