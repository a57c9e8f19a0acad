/**
 * Logs a record stuck in the runner, once per record: where it waits (for its prediction, or
 * processed and waiting to be produced) tells a slow model from a stalled producer.
 */
import type { Logger } from '../../observability/logger.ts';
import type { InFlightRecord } from './partition-queue.ts';

/** A record in the runner longer than this is logged once, ms. */
export const STALL_WARN_MS = 60_000;

/** What the watch reads from the runner. */
export interface StallSource {
  oldestInFlight(): { readonly entry: InFlightRecord; readonly age: number } | undefined;
  readonly inFlight: number;
}

/** Returns a check to call periodically; it logs the oldest in-flight record once it is older than {@link STALL_WARN_MS}. */
export function createStallWatch(source: () => StallSource | undefined, predictPending: () => number, log: Logger): () => void {
  let reported: InFlightRecord | undefined;
  return () => {
    const s = source();
    const oldest = s?.oldestInFlight();
    if (!oldest || oldest.age < STALL_WARN_MS || oldest.entry === reported) return;
    reported = oldest.entry;
    const r = oldest.entry.record;
    log.warn(
      {
        topic: r.topic,
        partition: r.partition,
        offset: String(r.offset),
        ageMs: oldest.age,
        processed: oldest.entry.out !== undefined,
        inFlight: s?.inFlight ?? 0,
        predictPending: predictPending(),
      },
      oldest.entry.out === undefined
        ? 'a record has waited for its prediction for over a minute'
        : 'a processed record has waited to be produced for over a minute',
    );
  };
}
