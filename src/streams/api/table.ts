/**
 * Tables for enrichment. A global table (Kafka Streams' `GlobalKTable`) is a compacted topic
 * materialized in full on every instance: each runner reads all its partitions into one store
 * before it processes a record, and keeps following it. A stream looks rows up by a key it
 * computes from each record (`join`: inner, `leftJoin`: a missing row gives `undefined`), so the
 * stream needs no repartitioning and no co-partitioning with the table — what reference data
 * (customers, devices, products) usually wants. The store is rebuilt from the table's own topic
 * on start (it is its own changelog).
 */
import { InflowError } from '../../errors.ts';
import type { StreamRecord } from './stream-record.ts';
import type { Serdes } from './topology.ts';

/** A global table a stream can join with (from {@link StreamsBuilder.globalTable}). */
export interface GlobalKTable<K, V> {
  /** The table's (store's) name. */
  readonly name: string;
  readonly topic: string;
  /** Phantom fields for the key and value types. */
  readonly _types?: { readonly key: K; readonly value: V };
}

/** How a global table is declared in a topology. */
export interface GlobalTableDeclaration {
  readonly name: string;
  readonly topic: string;
  readonly serdes: Serdes;
  /**
   * Checks a decoded row (its schema); a throw sends the table record to the dead-letter topic
   * with the message, and the row is not stored (the previous row stays).
   */
  readonly validate?: (value: unknown) => void;
}

/** Options of {@link StreamsBuilder.globalTable}. */
export interface GlobalTableOptions {
  /** The table's name (its store; default the topic). */
  readonly name?: string;
  /** Checks each row; see {@link GlobalTableDeclaration.validate}. */
  readonly validate?: (value: unknown) => void;
}

/** A stream-table join: the row key of a record, and how its value and the row combine. */
export interface TableJoin<K, V, TK, TV, R> {
  /** The table key of a record; `null`/`undefined`: no row. */
  readonly key: (record: StreamRecord<K, V>) => TK | null | undefined;
  /** The output value; `row` is undefined in a left join without a row. */
  readonly joiner: (value: V, row: TV, record: StreamRecord<K, V>) => R;
}

/** The row a lookup found (undefined: none), for the record processor. */
export type LookupFn = (record: StreamRecord) => unknown;

/** Checks a table name: it names a store (and a metrics label). */
export function checkTableName(name: string): void {
  if (!/^[a-zA-Z0-9._-]+$/.test(name)) {
    throw new InflowError('INVALID_CONFIG', `table name "${name}" must be letters, digits, ".", "_" or "-"`);
  }
}
