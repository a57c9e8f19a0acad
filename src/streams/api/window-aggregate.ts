/**
 * The process function of a windowed aggregation (see windows.ts for the semantics). Per task,
 * the node keeps its stream time — the largest event time it has seen — in its store (a meta
 * entry), so a restored store resumes with it. A record whose windows all closed is late; every
 * record first advances stream time, then updates its open windows, then closes the windows
 * whose close time passed (emitting them with `emit: 'final'`, dropping them either way: the
 * store holds open windows only).
 *
 * Store layout (state/window-key.ts): windows under `windowKey(key, start)` (sessions:
 * `windowKey(key, start, end)`), an expiry-index entry per window keyed by its close time (value
 * 1), and for sliding windows the raw values under `windowKey(key, t, offset)` (expiry value 0),
 * from which each record's own window is folded.
 *
 * A meta entry `nextClose` keeps a bound: no window closes before it. Closing windows scans the
 * expiry index only when stream time reaches it, not on every record (the per-record scan was
 * most of a windowed pipeline's CPU: BENCHMARKS.md, stateful rows). It lives in the store, so it
 * is rewound, restored and moved with the windows it describes.
 */
import { InflowError } from '../../errors.ts';
import type { KeyValueStore } from '../state/key-value-store.ts';
import { decodeOrderedKey, encodeOrderedKey } from '../state/ordered-key.ts';
import {
  expiryKey,
  expiryRange,
  isWindowOf,
  metaKey,
  parseExpiryKey,
  parseWindowKey,
  windowKey,
  windowRange,
} from '../state/window-key.ts';
import { type Aggregation, requireKey } from './aggregate-processor.ts';
import type { Forward, ProcessFn } from './processor-context.ts';
import type { StreamRecord } from './stream-record.ts';
import { type EventTime, eventTimeOf, fixedWindowStarts, type WindowSpec, type Windowed } from './windows.ts';

const STREAM_TIME = metaKey('streamTime');
/** No expiry-index entry closes before this time (absent: unknown, scan). */
const NEXT_CLOSE = metaKey('nextClose');
const WINDOW = 1;
const EVENT = 0;

type Store = KeyValueStore<Buffer, unknown>;
type Out<K, A> = Forward<Windowed<K>, A | null>[];

/** Options of {@link windowedAggregate}. */
export interface WindowedAggregateOptions {
  readonly window: WindowSpec & { readonly graceMs: number };
  readonly time: EventTime;
  readonly emit: 'update' | 'final';
  readonly late: 'dlq' | 'drop';
  readonly store: string;
  readonly node: string;
}

function lateError(node: string, t: number, streamTime: number, graceMs: number): InflowError {
  return new InflowError(
    'LATE_RECORD',
    `late record at node "${node}": event time ${new Date(t).toISOString()} falls only in windows that closed (stream time ${new Date(streamTime).toISOString()}, grace ${graceMs} ms); raise the grace to accept records this late`,
  );
}

/** Writes a window with its expiry-index entry when new. */
function putWindow(store: Store, key: Buffer, closeAt: number, value: unknown, isNew: boolean, kind = WINDOW): void {
  store.put(key, value);
  if (isNew) store.put(expiryKey(closeAt, key), kind);
}

function deleteWindow(store: Store, key: Buffer, closeAt: number): void {
  store.delete(key);
  store.delete(expiryKey(closeAt, key));
}

/** The process function of a windowed aggregation; forwards `Windowed<K>` keys (a merged-away session: value null). */
export function windowedAggregate<K, V, A>(
  aggregation: Aggregation<K, V, A>,
  o: WindowedAggregateOptions,
): ProcessFn<K, V, Windowed<K>, A | null> {
  const w = o.window;
  const grace = w.graceMs;
  if (w.type === 'session' && !aggregation.merge) {
    throw new InflowError('INVALID_CONFIG', `session windows at "${o.node}" merge sessions: give aggregate() a merge function`);
  }
  // Fixed windows end exclusively (closed once end + grace <= stream time); sliding and session windows include their end.
  const size = w.type === 'session' ? 0 : w.sizeMs;
  const advance = w.type === 'hopping' ? w.advanceMs : size;
  const fixed = w.type === 'tumbling' || w.type === 'hopping';
  /** Fixed windows: the number of close times (`k × advance + size + grace`) at or before `time`, up to a constant. */
  const epochOf = (time: number): number => (fixed ? Math.floor((time - size - grace) / advance) : time);

  function closeWindows(store: Store, streamTime: number, out: Out<K, A>): void {
    const bound = store.get(NEXT_CLOSE) as number | undefined;
    if (bound !== undefined && streamTime < bound) return;
    const closed = [...store.range(...expiryRange(streamTime))];
    for (const { key: indexKey, value: kind } of closed) {
      const { end: closeAt, window } = parseExpiryKey(indexKey);
      if (kind === WINDOW && o.emit === 'final') {
        const value = store.get(window) as A | undefined;
        const parts = parseWindowKey(window, w.type === 'session');
        const end = parts.end ?? parts.start + size;
        const key = decodeOrderedKey(parts.key) as K;
        if (value !== undefined) out.push({ key: { key, start: parts.start, end }, value, timestamp: Math.max(end, closeAt - grace - 1) });
      }
      store.delete(window);
      store.delete(indexKey);
    }
    // The first entry left in the index is the next window to close.
    let next = Number.MAX_SAFE_INTEGER;
    for (const { key } of store.range(...expiryRange(Number.MAX_SAFE_INTEGER))) {
      next = parseExpiryKey(key).end;
      break;
    }
    if (next !== bound) store.put(NEXT_CLOSE, next);
  }

  /** Writes a window; a new one closing before the bound lowers it. */
  function put(store: Store, key: Buffer, closeAt: number, value: unknown, isNew: boolean, kind = WINDOW): void {
    putWindow(store, key, closeAt, value, isNew, kind);
    if (!isNew) return;
    const bound = store.get(NEXT_CLOSE) as number | undefined;
    if (bound !== undefined && closeAt < bound) store.put(NEXT_CLOSE, closeAt);
  }

  return (record: StreamRecord<K, V>, ctx) => {
    if (record.value === null || record.value === undefined) return [];
    requireKey(record.key, o.node);
    const t = eventTimeOf(record, o.time);
    const kb = encodeOrderedKey(record.key);
    const store = ctx.store<Buffer>(o.store);
    const before = (store.get(STREAM_TIME) as number | undefined) ?? Number.MIN_SAFE_INTEGER;
    const streamTime = Math.max(before, t);
    // Fixed windows: `before` may be the first stream time of the current epoch (see the top).
    const newEpoch = epochOf(streamTime) !== epochOf(before);
    if (newEpoch) store.put(STREAM_TIME, streamTime);
    const out: Out<K, A> = [];
    const emit = (start: number, end: number, value: A | null): void => {
      if (o.emit === 'update') out.push({ key: { key: record.key, start, end }, value });
    };
    let accepted = true;
    switch (w.type) {
      case 'tumbling':
      case 'hopping': {
        accepted = false;
        for (const s of w.type === 'tumbling' ? [Math.floor(t / size) * size] : fixedWindowStarts(t, size, advance)) {
          if (s + size + grace <= streamTime) continue;
          accepted = true;
          const k = windowKey(kb, s);
          const current = store.get(k) as A | undefined;
          const next = aggregation.add(current ?? aggregation.init(), record.value, record.key);
          put(store, k, s + size + grace, next, current === undefined);
          emit(s, s + size, next);
        }
        break;
      }
      case 'sliding': {
        accepted = t + grace >= streamTime;
        if (!accepted) break;
        // The raw value, kept until the last window that can contain it closed.
        const event = windowKey(kb, t, Number(ctx.offset));
        put(store, event, t + size + grace + 1, record.value, true, EVENT);
        // Later windows [s, s + size] (s in (t - size, t]) that contain t take the value too.
        const [lo, hi] = windowRange(kb, t - size + 1, t);
        for (const { key: k, value: agg } of [...store.range(lo, hi)].filter((e) => isWindowOf(e.key, kb))) {
          const s = parseWindowKey(k).start;
          const next = aggregation.add(agg as A, record.value, record.key);
          store.put(k, next);
          emit(s, s + size, next);
        }
        // The record's own window [t - size, t]: folded from the values in it.
        const [elo, ehi] = windowRange(kb, t - size, t, true);
        let agg = aggregation.init();
        for (const { key: k, value: v } of store.range(elo, ehi))
          if (isWindowOf(k, kb, true)) agg = aggregation.add(agg, v as V, record.key);
        const own = windowKey(kb, t - size);
        put(store, own, t + grace + 1, agg, store.get(own) === undefined);
        emit(t - size, t, agg);
        break;
      }
      case 'session': {
        accepted = t + grace >= streamTime;
        if (!accepted) break;
        const merge = (a: A, b: A, key: K): A => (aggregation.merge as NonNullable<typeof aggregation.merge>).call(aggregation, a, b, key);
        const gap = w.gapMs;
        const [lo, hi] = windowRange(kb, Number.MIN_SAFE_INTEGER, t + gap, true);
        let start = t;
        let end = t;
        let agg = aggregation.init();
        const merged: [number, number][] = [];
        for (const { key: k, value: v } of [...store.range(lo, hi)]) {
          if (!isWindowOf(k, kb, true)) continue;
          const s = parseWindowKey(k, true);
          const sEnd = s.end as number;
          if (sEnd < t - gap) continue;
          start = Math.min(start, s.start);
          end = Math.max(end, sEnd);
          agg = merge(agg, v as A, record.key);
          deleteWindow(store, k, sEnd + grace + 1);
          merged.push([s.start, sEnd]);
        }
        agg = aggregation.add(agg, record.value, record.key);
        put(store, windowKey(kb, start, end), end + grace + 1, agg, true);
        // Sessions merged into another are gone: a null for each (Kafka Streams forwards tombstones too).
        for (const [s, e] of merged) if (s !== start || e !== end) emit(s, e, null);
        emit(start, end, agg);
        break;
      }
    }
    if (!accepted && o.late === 'dlq') throw lateError(o.node, t, streamTime, grace);
    // Fixed windows: no close time lies between two stream times of one epoch, so nothing new can close.
    if (newEpoch) closeWindows(store, streamTime, out);
    return out;
  };
}
