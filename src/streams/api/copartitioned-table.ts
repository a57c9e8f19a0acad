/**
 * Co-partitioned tables (Kafka Streams' `StreamsBuilder.table()` → `KTable`, joined with
 * `KStream.join(KTable, …)` / `leftJoin`): a compacted topic partitioned like the stream that
 * joins it — same key, same partition count — read by the stream's own tasks, task `<st>_p`
 * holding the rows of partition p in a store of the task (backed by its changelog, restored on
 * assignment like any store). Unlike a global table, an instance holds only its partitions'
 * rows, so the table may be large; the price is co-partitioning, which the runner checks at start
 * (the partition counts of a task's topics must be equal). Global tables remain the choice for
 * small reference data looked up by a computed key.
 *
 * A stream record is joined by its key with the row the task held when the record was processed:
 * the runner does not read a task's partitions in timestamp order (Kafka Streams does, within
 * `max.task.idle.ms`), so a row and a record produced close together may meet in either order.
 */
import { InflowError } from '../../errors.ts';
import type { StoreKey } from '../state/key-value-store.ts';
import type { Forward, ProcessFn } from './processor-context.ts';
import type { KTable } from './ktable.ts';
import type { StreamRecord } from './stream-record.ts';

/** Options of {@link StreamsBuilder.table}. */
export interface TableOptions {
  /** The table's (store's) name; default the topic. */
  readonly name?: string;
  /**
   * Checks a decoded row (its schema); a throw sends the table record to the dead-letter topic
   * with the message, and the row is not stored (the previous row stays).
   */
  readonly validate?: (value: unknown) => void;
}

/** The joiner of a stream-table join: the record's value and the row (`undefined` in a left join without one). */
export type TableJoiner<K, V, TV, R> = (value: V, row: TV, record: StreamRecord<K, V>) => R;

/** The store key of a record key: a string, number or bytes; `undefined` for no key. */
function storeKeyOf(key: unknown, what: string): StoreKey | undefined {
  if (key === null || key === undefined) return undefined;
  if (Buffer.isBuffer(key) || typeof key === 'string' || typeof key === 'number') return key;
  throw new InflowError(
    'INVALID_ARGUMENT',
    `${what}: a key of type ${typeof key} cannot key a table row; expected a string, number or bytes`,
  );
}

/**
 * The process function that materializes table `name`: a row per key, a tombstone (null value)
 * deletes it; a record without a key or whose row fails `validate` is an error (a dead letter
 * with the reason). Each update is forwarded (the table's changes, for {@link KTable.toStream}).
 */
export function materializeTable(name: string, validate?: (value: unknown) => void): ProcessFn<unknown, unknown, unknown, unknown> {
  return (record, ctx) => {
    const k = storeKeyOf(record.key, `table "${name}"`);
    if (k === undefined) throw new InflowError('INVALID_ARGUMENT', `table "${name}": a record without a key; a table row needs one`);
    const store = ctx.store(name);
    if (record.value === null || record.value === undefined) store.delete(k);
    else {
      validate?.(record.value);
      store.put(k, record.value);
    }
    return [{ key: record.key, value: record.value }];
  };
}

/** The process function of a stream-table join on the record key; `inner` drops a record without a row. */
export function joinTable<K, V, TV, R>(table: string, joiner: TableJoiner<K, V, TV | undefined, R>, inner: boolean): ProcessFn<K, V, K, R> {
  return (record, ctx) => {
    const k = storeKeyOf(record.key, `join with table "${table}"`);
    const row = k === undefined ? undefined : (ctx.store<StoreKey, TV>(table).get(k) ?? undefined);
    if (row === undefined && inner) return undefined;
    const out: Forward<K, R> = { key: record.key, value: joiner(record.value, row, record) };
    return [out];
  };
}

/** Whether `table` is a co-partitioned table (a {@link KTable}) rather than a global one. */
export function isKTable(table: unknown): table is KTable<unknown, unknown> {
  return typeof table === 'object' && table !== null && 'storeName' in table && 'toStream' in table;
}
