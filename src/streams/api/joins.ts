/**
 * Windowed stream-stream joins (Kafka Streams' `KStream.join` / `leftJoin` / `outerJoin` with
 * `JoinWindows`): two co-partitioned streams, a record of one joined with every record of the
 * other with the same key whose timestamps are at most `windowMs` apart — e.g. predictions joined
 * with the labels that arrive later. Each joined pair makes one output with the later of the two
 * timestamps. Records older than their side's stream time − window − grace are late and dropped
 * (Kafka Streams' rule); a record without a key joins nothing.
 *
 * Left and outer joins follow KIP-633 (Kafka 3.0, "Drop 24-hour default of grace period in
 * Streams" — the same change that stopped the eager, spurious `(left, null)` results of
 * KAFKA-10847): a record of an outer side that found no partner is NOT emitted on arrival; it is
 * held in an outer-join store and emitted with a missing partner only once its window has closed,
 * i.e. once no record of the other side can join it any more — and never if a partner arrives
 * first. A record whose window had already closed when it arrived is emitted at once.
 *
 * Stream time is kept per side (the largest timestamp seen on that side): the runner does not
 * interleave a task's partitions by timestamp as Kafka Streams does, so one side may be read far
 * ahead of the other — a task-wide stream time would then call the other side's records late, and
 * would close windows the slower side can still fill. A record at `ts` of side A can meet a later
 * record of side B at `ts' ≤ ts + window`, and B accepts `ts' ≥ now_B − window − grace`, so A's
 * window is closed once `now_B − window − grace > ts + window`. A consequence: while one side
 * receives nothing, the other side's unmatched records wait (event time does not advance).
 *
 * Stores, as few as Kafka Streams (one window store per side plus one outer-join store): a store
 * per side holds its records (`['r', key, ts, partition, offset]` → value), a time index
 * (`['t', ts, key, partition, offset]`, so expiry deletes in timestamp order without a scan) and
 * the side's stream time (`['s']`); left and outer joins add `<name>-outer`
 * (`[side, ts, key, partition, offset]` → 1, read in timestamp order to emit closed windows; the
 * value is read from the side's store, which keeps a record at least until its window closes).
 * A record is kept until both sides' stream times are past its timestamp + 2 × window + grace.
 */
import { InflowError } from '../../errors.ts';
import type { KeyValueStore, StoreKey } from '../state/key-value-store.ts';
import type { Forward, ProcessFn, ProcessorContext, StoreRef } from './processor-context.ts';
import type { StreamRecord } from './stream-record.ts';

/** Which records without a partner are emitted: none (inner), this stream's (left), both sides' (outer). */
export type StreamJoinType = 'inner' | 'left' | 'outer';

/** Options of {@link KStream.windowedJoin} and its left and outer forms. */
export interface WindowedJoinOptions {
  /** Largest timestamp difference of a joined pair, ms (both directions). */
  readonly windowMs: number;
  /** How long after the window a late record is still joined, ms; default 0. */
  readonly graceMs?: number;
  /** Node and store name prefix; default `JOIN-<n>`. */
  readonly name?: string;
}

/** The store names of a join named `name`. */
export function joinStores(name: string): { left: string; right: string; outer: string } {
  return { left: `${name}-left`, right: `${name}-right`, outer: `${name}-outer` };
}

function storeKeyOf(key: unknown): StoreKey | undefined {
  if (key === null || key === undefined) return undefined;
  if (Buffer.isBuffer(key) || typeof key === 'string' || typeof key === 'number') return key;
  throw new InflowError(
    'INVALID_ARGUMENT',
    `windowed join: a key of type ${typeof key} cannot be joined; expected a string, number or bytes`,
  );
}

type Id = [ts: number, key: StoreKey, partition: number, offset: string];

/** Deletes the records of a side store older than `cutoff` (ms), oldest first. */
function expire(store: KeyValueStore<StoreKey[], unknown>, cutoff: number): void {
  // ['t', cutoff] sorts after every ['t', ts, …] with ts < cutoff and before every ['t', cutoff, …] (prefix-free arrays).
  const old = [...store.range(['t'], ['t', cutoff])];
  for (const { key } of old) {
    const [, ts, k, partition, offset] = key as ['t', ...Id];
    store.delete(['r', k, ts, partition, offset]);
    store.delete(key);
  }
}

/**
 * The process function of one side. `left` is true for the stream the join was called on: the
 * joiner always gets (left value, right value), `undefined` for a missing partner.
 */
export function joinSide<K, R>(
  names: ReturnType<typeof joinStores>,
  left: boolean,
  options: WindowedJoinOptions,
  joiner: (left: unknown, right: unknown, key: K) => R,
  type: StreamJoinType = 'inner',
): { fn: ProcessFn<K, unknown, K, R>; stores: StoreRef[] } {
  const window = options.windowMs;
  const grace = options.graceMs ?? 0;
  if (!(Number.isFinite(window) && window >= 0) || !(Number.isFinite(grace) && grace >= 0)) {
    throw new InflowError('INVALID_CONFIG', `windowed join: windowMs and graceMs are ms ≥ 0; got ${window} and ${grace}`);
  }
  const mineName = left ? names.left : names.right;
  const theirsName = left ? names.right : names.left;
  /** Whether this side's / the other side's unmatched records are emitted. */
  const mineOuter = type === 'outer' || (type === 'left' && left);
  const theirsOuter = type === 'outer' || (type === 'left' && !left);
  const mineTag = left ? 0 : 1;
  const theirsTag = 1 - mineTag;
  /** A record at ts can meet no other record any more once the other side's stream time is past ts + closeAfter. */
  const closeAfter = 2 * window + grace;
  /** The output of a record without a partner; `mine`: the record is of this side. */
  const unmatched = (key: K, value: unknown, timestamp: number, mine: boolean): Forward<K, R> => ({
    key,
    value: mine === left ? joiner(value, undefined, key) : joiner(undefined, value, key),
    timestamp,
  });

  const fn: ProcessFn<K, unknown, K, R> = (record: StreamRecord<K>, ctx: ProcessorContext) => {
    const k = storeKeyOf(record.key);
    const ts = record.timestamp;
    const mine = ctx.store<StoreKey[]>(mineName);
    const theirs = ctx.store<StoreKey[]>(theirsName);
    // A record without a key can never be joined: an outer side emits it at once (KIP-962).
    if (k === undefined) return mineOuter ? [unmatched(record.key, record.value ?? null, ts, true)] : undefined;
    const before = mine.get(['s']) as number | undefined;
    const mineNow = Math.max(before ?? ts, ts);
    // Late: its window closed (plus grace) on its side before it arrived; its partners may be gone already.
    if (ts < mineNow - window - grace) return undefined;
    if (mineNow !== before) mine.put(['s'], mineNow);
    const out: Forward<K, R>[] = [];
    const outer = mineOuter || theirsOuter ? ctx.store<StoreKey[], number>(names.outer) : undefined;
    // This side's time moved: the other side's unmatched records whose window closed go out, oldest first.
    if (outer && theirsOuter && mineNow !== before) {
      const closed = [...outer.range([theirsTag], [theirsTag, mineNow - closeAfter])];
      for (const { key } of closed) {
        const [, t, kk, partition, offset] = key as [number, ...Id];
        const value = theirs.get(['r', kk, t, partition, offset]);
        // The side store keeps a record until both stream times are past its close: it is there.
        if (value === undefined) throw new InflowError('INTERNAL', `windowed join "${mineName}": an unmatched record's value is gone`);
        out.push(unmatched(kk as K, value, t, false));
        outer.delete(key);
      }
    }
    const entry = [k, ts, ctx.partition, String(ctx.offset)];
    mine.put(['r', ...entry], record.value ?? null);
    mine.put(['t', ts, k, ctx.partition, String(ctx.offset)], 1);
    // Integer ms: ['r', k, ts + window + 1] sorts after every ['r', k, ts + window, …].
    let matched = false;
    for (const { key, value } of theirs.range(['r', k, ts - window], ['r', k, ts + window + 1])) {
      matched = true;
      const [, , otherTs, partition, offset] = key as ['r', StoreKey, number, number, string];
      const joined = left ? joiner(record.value, value, record.key) : joiner(value, record.value, record.key);
      out.push({ key: record.key, value: joined, timestamp: Math.max(ts, otherTs) });
      if (outer && theirsOuter) {
        const held = [theirsTag, otherTs, k, partition, offset];
        if (outer.get(held) !== undefined) outer.delete(held);
      }
    }
    const theirsNow = theirs.get(['s']) as number | undefined;
    // No partner yet: hold it until its window closes, or emit it now if it closed already.
    if (!matched && outer && mineOuter) {
      if (theirsNow !== undefined && ts < theirsNow - closeAfter) out.push(unmatched(record.key, record.value ?? null, ts, true));
      else outer.put([mineTag, ts, k, ctx.partition, String(ctx.offset)], 1);
    }
    if (theirsNow !== undefined) {
      const cutoff = Math.min(mineNow, theirsNow) - closeAfter;
      expire(mine, cutoff);
      expire(theirs, cutoff);
    }
    return out;
  };
  // Each side declares its own store; the left one declares the outer store.
  const stores: StoreRef[] = [{ name: mineName, serdes: {} }, theirsName];
  if (type !== 'inner') stores.push(left ? { name: names.outer, serdes: {} } : names.outer);
  return { fn, stores };
}
