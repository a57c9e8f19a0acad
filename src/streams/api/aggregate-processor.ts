/**
 * The process functions behind `count`, `reduce` and `aggregate`: a grouped record's key reads
 * the current aggregate from the node's store, the record is added, the new aggregate is
 * written back and forwarded (a table's update). Keys go through the ordered key encoding, so a
 * key that is not a string, number, boolean, null, Buffer or an array of them fails the record
 * with `SERIALIZATION` (a dead letter), as does a missing key.
 */
import { InflowError } from '../../errors.ts';
import type { StoreSerde, StoreSerdes } from '../state/key-value-store.ts';
import type { Forward, ProcessFn } from './processor-context.ts';

/** How values fold into an aggregate. */
export interface Aggregation<K, V, A> {
  /** The aggregate of no records. */
  init(): A;
  add(aggregate: A, value: V, key: K): A;
  /** Combines two aggregates (session windows merge sessions); missing: sessions are refused. */
  merge?(a: A, b: A, key: K): A;
}

/** `count()`: records per key. */
export function countAggregation<K>(): Aggregation<K, unknown, number> {
  return { init: () => 0, add: (n) => n + 1, merge: (a, b) => a + b };
}

/** `reduce(fn)`: the first value, then fn(aggregate, value) for each next one. */
export function reduceAggregation<K, V>(reducer: (aggregate: V, value: V) => V): Aggregation<K, V, V> {
  // `undefined` stands for "no value yet"; it is never stored (the first value replaces it at once).
  return {
    init: () => undefined as V,
    add: (agg, value) => (agg === undefined ? value : reducer(agg, value)),
    merge: (a, b) => (a === undefined ? b : b === undefined ? a : reducer(a, b)),
  };
}

/** Byte keys as they are (window stores build their keys with `state/window-key.ts`). */
export const bufferKeySerde: StoreSerde<Buffer> = Object.freeze({
  serialize: (key: Buffer) => key,
  deserialize: (bytes: Buffer) => bytes,
});

/**
 * Byte keys of window stores, as the window operators build them (`state/window-key.ts`): each a
 * new Buffer or a module constant, never changed after, so the store keeps them without a copy.
 */
const windowKeySerde: StoreSerde<Buffer> = Object.freeze({ ...bufferKeySerde, fresh: true });

/** Serdes of window and session stores: byte keys, JSON values. */
export const windowStoreSerdes: StoreSerdes<unknown, unknown> = Object.freeze({ key: windowKeySerde });

/** Fails a record that has no key to group by. */
export function requireKey(key: unknown, node: string): void {
  if (key === null || key === undefined) {
    throw new InflowError(
      'SERIALIZATION',
      `aggregation "${node}" got a record without a key; group by a field (groupBy) or give the records keys`,
    );
  }
}

/** The process function of a non-windowed aggregation into store `store`. */
export function keyValueAggregate<K, V, A>(aggregation: Aggregation<K, V, A>, store: string, node: string): ProcessFn<K, V, K, A> {
  return (record, ctx) => {
    // A null value is a delete in Kafka's terms, not a value to add (Kafka Streams skips it too).
    if (record.value === null || record.value === undefined) return [];
    requireKey(record.key, node);
    const table = ctx.store<K, A>(store);
    const next = aggregation.add(table.get(record.key) ?? aggregation.init(), record.value, record.key);
    table.put(record.key, next);
    return [{ key: record.key, value: next }] satisfies Forward<K, A>[];
  };
}
