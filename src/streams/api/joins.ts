/**
 * The windowed stream-stream join (Kafka Streams' `KStream.join(KStream, joiner, JoinWindows)`):
 * two co-partitioned streams, a record of one joined with every record of the other with the
 * same key whose timestamps are at most `windowMs` apart — e.g. predictions joined with the
 * labels that arrive later. Each side keeps its records in a store of the task (one per side,
 * plus a time index per side so expired records are deleted in timestamp order); a record that
 * arrives finds the other side's records in its window and emits one result per match, with
 * the later of the two timestamps. Records older than their side's stream time − window − grace
 * are late and dropped (Kafka Streams' rule); a record without a key joins nothing.
 *
 * Stream time is kept per side (the largest timestamp seen on that side's partition, in a small
 * store of the task): the runner does not interleave a task's partitions by timestamp as Kafka
 * Streams does, so one side may be read far ahead of the other — a task-wide stream time would
 * then call the other side's records late. A record is kept until both sides' stream times are
 * past its timestamp + 2 × window + grace (Kafka Streams' retention of a join window).
 */
import { InflowError } from '../../errors.ts';
import type { StoreKey } from '../state/key-value-store.ts';
import type { Forward, ProcessFn, ProcessorContext, StoreRef } from './processor-context.ts';
import type { StreamRecord } from './stream-record.ts';

/** Options of {@link KStream.windowedJoin}. */
export interface WindowedJoinOptions {
  /** Largest timestamp difference of a joined pair, ms (both directions). */
  readonly windowMs: number;
  /** How long after the window a late record is still joined, ms; default 0. */
  readonly graceMs?: number;
  /** Node and store name prefix; default `JOIN-<n>`. */
  readonly name?: string;
}

/** A stored record of one side: its value and where it came from (tie-break of equal timestamps). */
type Entry = [key: StoreKey, ts: number, partition: number, offset: string];

/** The store names of a join named `name`. */
export function joinStores(name: string): { this: string; other: string; thisTime: string; otherTime: string; streamTime: string } {
  return {
    this: `${name}-left`,
    other: `${name}-right`,
    thisTime: `${name}-left-time`,
    otherTime: `${name}-right-time`,
    streamTime: `${name}-stream-time`,
  };
}

function storeKeyOf(key: unknown): StoreKey | undefined {
  if (key === null || key === undefined) return undefined;
  if (Buffer.isBuffer(key) || typeof key === 'string' || typeof key === 'number') return key;
  throw new InflowError(
    'INVALID_ARGUMENT',
    `windowed join: a key of type ${typeof key} cannot be joined; expected a string, number or bytes`,
  );
}

/**
 * The process function of one side. `left` is true for the stream `windowedJoin` was called on:
 * the joiner always gets (left value, right value).
 */
export function joinSide<K, R>(
  names: ReturnType<typeof joinStores>,
  left: boolean,
  options: WindowedJoinOptions,
  joiner: (left: unknown, right: unknown, key: K) => R,
): { fn: ProcessFn<K, unknown, K, R>; stores: StoreRef[] } {
  const window = options.windowMs;
  const grace = options.graceMs ?? 0;
  if (!(Number.isFinite(window) && window >= 0) || !(Number.isFinite(grace) && grace >= 0)) {
    throw new InflowError('INVALID_CONFIG', `windowed join: windowMs and graceMs are ms ≥ 0; got ${window} and ${grace}`);
  }
  const mine = left ? names.this : names.other;
  const theirs = left ? names.other : names.this;
  const mineTime = left ? names.thisTime : names.otherTime;
  const theirsTime = left ? names.otherTime : names.thisTime;
  /** Deletes the records of one side older than stream time − window − grace, oldest first. */
  const expire = (ctx: ProcessorContext, data: string, time: string, cutoff: number): void => {
    const index = ctx.store<StoreKey[], number>(time);
    const store = ctx.store<StoreKey[]>(data);
    // [cutoff] sorts after every [ts, …] with ts < cutoff and before every [cutoff, …] (prefix-free arrays).
    const old = [...index.range(undefined, [cutoff])];
    for (const { key } of old) {
      const [ts, k, partition, offset] = key as [number, StoreKey, number, string];
      store.delete([k, ts, partition, offset]);
      index.delete(key);
    }
  };
  const fn: ProcessFn<K, unknown, K, R> = (record: StreamRecord<K>, ctx: ProcessorContext) => {
    const k = storeKeyOf(record.key);
    const ts = record.timestamp;
    const times = ctx.store<string, number>(names.streamTime);
    const side = left ? 'left' : 'right';
    const mineNow = Math.max(times.get(side) ?? ts, ts);
    // Late: its window closed (plus grace) on its side before it arrived; its partners may be gone already.
    if (k === undefined || ts < mineNow - window - grace) return undefined;
    if (mineNow !== times.get(side)) times.put(side, mineNow);
    const entry: Entry = [k, ts, ctx.partition, String(ctx.offset)];
    ctx.store<Entry>(mine).put(entry, record.value ?? null);
    ctx.store<StoreKey[], number>(mineTime).put([ts, k, ctx.partition, String(ctx.offset)], 1);
    const out: Forward<K, R>[] = [];
    const other = ctx.store<StoreKey[]>(theirs);
    // Integer ms: [k, ts + window + 1] sorts after every [k, ts + window, …].
    for (const { key, value } of other.range([k, ts - window], [k, ts + window + 1])) {
      const otherTs = key[1] as number;
      const joined = left ? joiner(record.value, value, record.key) : joiner(value, record.value, record.key);
      out.push({ key: record.key, value: joined, timestamp: Math.max(ts, otherTs) });
    }
    const theirsNow = times.get(left ? 'right' : 'left');
    if (theirsNow !== undefined) {
      const cutoff = Math.min(mineNow, theirsNow) - 2 * window - grace;
      expire(ctx, mine, mineTime, cutoff);
      expire(ctx, theirs, theirsTime, cutoff);
    }
    return out;
  };
  return {
    fn,
    stores: [
      { name: mine, serdes: {} },
      { name: mineTime, serdes: {} },
      theirs,
      theirsTime,
      left ? { name: names.streamTime, serdes: {} } : names.streamTime,
    ],
  };
}
