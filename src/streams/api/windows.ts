/**
 * Windows on event time, like Kafka Streams' `TimeWindows`, `SlidingWindows` and
 * `SessionWindows`; all times in ms.
 * - tumbling: fixed `size`, windows `[start, start + size)` aligned to the epoch;
 * - hopping: fixed `size`, a new window every `advance` (a record is in size / advance windows);
 * - sliding: one window per record, `[t - size, t]` (both ends inclusive) for a record at t, so
 *   each record sees the aggregate of its key's records of the last `size` ms (pandas'
 *   `rolling(size, closed='both')`); a late-arriving record also updates the later windows it falls in;
 * - session: a key's records closer than `gap` form one session `[first, last]`; a record
 *   bridging two sessions merges them.
 * A window closes `grace` ms (of stream time) after its end: a record for a closed window is
 * late (dead-lettered or dropped by the `late` policy); with `emit: 'final'` a window is emitted
 * once, when it closes, instead of on every update.
 */
import { InflowError } from '../../errors.ts';
import type { StreamRecord } from './stream-record.ts';

/** A window definition. */
export type WindowSpec =
  | { readonly type: 'tumbling'; readonly sizeMs: number; readonly graceMs?: number }
  | { readonly type: 'hopping'; readonly sizeMs: number; readonly advanceMs: number; readonly graceMs?: number }
  | { readonly type: 'sliding'; readonly sizeMs: number; readonly graceMs?: number }
  | { readonly type: 'session'; readonly gapMs: number; readonly graceMs?: number };

/** Where a record's event time comes from: its Kafka timestamp, or a value field (ms number or ISO-8601 string). */
export type EventTime = 'record' | { readonly field: string };

/** What a windowed aggregation does besides the windows. */
export interface WindowOptions {
  /** Default `'record'`. */
  readonly time?: EventTime;
  /** `update` (default): every change of a window; `final`: each window once, when it closes. */
  readonly emit?: 'update' | 'final';
  /** A record whose windows all closed: `dlq` (default, with the reason) or `drop`. */
  readonly late?: 'dlq' | 'drop';
}

/** A window of a key: `start` and `end` in ms (`end` exclusive for tumbling/hopping, inclusive for sliding/session). */
export interface Windowed<K> {
  readonly key: K;
  readonly start: number;
  readonly end: number;
}

function positive(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new InflowError('INVALID_CONFIG', `${what} must be a positive whole number of ms; got ${value}`);
  }
}

/** Checks a window spec; returns it with the grace filled in (default 0, like Kafka Streams' `ofSizeWithNoGrace`). */
export function normalizeWindow(spec: WindowSpec): WindowSpec & { readonly graceMs: number } {
  const graceMs = spec.graceMs ?? 0;
  if (!Number.isSafeInteger(graceMs) || graceMs < 0) {
    throw new InflowError('INVALID_CONFIG', `window grace must be a whole number of ms, 0 or more; got ${graceMs}`);
  }
  switch (spec.type) {
    case 'tumbling':
    case 'sliding':
      positive(spec.sizeMs, `${spec.type} window size`);
      break;
    case 'hopping':
      positive(spec.sizeMs, 'hopping window size');
      positive(spec.advanceMs, 'hopping window advance');
      if (spec.advanceMs > spec.sizeMs) {
        throw new InflowError(
          'INVALID_CONFIG',
          `hopping window advance (${spec.advanceMs} ms) must not exceed its size (${spec.sizeMs} ms): records between windows would be lost`,
        );
      }
      break;
    case 'session':
      positive(spec.gapMs, 'session window gap');
      break;
    default:
      throw new InflowError(
        'INVALID_CONFIG',
        `unknown window type "${(spec as { type: string }).type}"; expected tumbling, hopping, sliding or session`,
      );
  }
  return { ...spec, graceMs };
}

/** Starts of the fixed (tumbling / hopping) windows containing `t`, oldest first. */
export function fixedWindowStarts(t: number, sizeMs: number, advanceMs: number): number[] {
  const starts: number[] = [];
  // The latest window containing t starts at floor(t / advance) * advance (epoch-aligned).
  const last = Math.floor(t / advanceMs) * advanceMs;
  for (let s = last; s > t - sizeMs; s -= advanceMs) starts.unshift(s);
  return starts;
}

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

function readPath(value: unknown, path: string): unknown {
  let v = value;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/**
 * The event time of `record`, ms since the epoch.
 * @throws InflowError INVALID_ARGUMENT when the field is missing or not a time (the record is dead-lettered).
 */
export function eventTimeOf(record: StreamRecord, time: EventTime): number {
  if (time === 'record') return record.timestamp;
  const v = readPath(record.value, time.field);
  if (v === undefined || v === null) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      `record has no timestamp field "${time.field}"; expected ms since the epoch or an ISO-8601 date-time string`,
    );
  }
  if (typeof v === 'number') {
    if (Number.isFinite(v)) return Math.floor(v);
  } else if (typeof v === 'string' && ISO_8601.test(v.trim())) {
    const ms = Date.parse(v.trim());
    if (!Number.isNaN(ms)) return ms;
  }
  const shown = typeof v === 'string' ? JSON.stringify(v.slice(0, 64)) : typeof v === 'number' ? String(v) : typeof v;
  throw new InflowError(
    'INVALID_ARGUMENT',
    `timestamp field "${time.field}" is ${shown}, not a time; expected ms since the epoch or an ISO-8601 date-time string such as 2026-01-31T12:00:00Z`,
  );
}
