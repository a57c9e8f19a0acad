/**
 * Grouping and aggregation (Kafka Streams' `KGroupedStream`, `TimeWindowedKStream`):
 * `groupByKey()` / `groupBy(fn)` then `count` / `reduce` / `aggregate`, optionally
 * `windowedBy(windows)` first. Each aggregation is a process node with its own store (default
 * `<node>-store`). Re-keying (`groupBy`, or `groupByKey` after an operator that may change
 * keys) writes the records to the repartition topic `<applicationId>-<name>-repartition` and
 * reads them back, so every key's records meet in one partition's task: the topology splits
 * there into two sub-topologies.
 */
import { InflowError } from '../../errors.ts';
import { type Aggregation, countAggregation, keyValueAggregate, reduceAggregation, windowStoreSerdes } from './aggregate-processor.ts';
import type { KTable } from './ktable.ts';
import { repartitionSerde } from './repartition-serde.ts';
import type { StreamRecord } from './stream-record.ts';
import type { KStream, Named } from './streams-builder.ts';
import { windowedAggregate } from './window-aggregate.ts';
import { normalizeWindow, type WindowOptions, type Windowed, type WindowSpec } from './windows.ts';

/** Options of an aggregation. */
export interface AggregateOptions extends Named {
  /** Store name; default `<node name>-store`. */
  readonly store?: string;
  /** Whether a compacted changelog topic backs the store (default true). */
  readonly changelog?: boolean;
}

/** A stream grouped by key, ready to aggregate. */
export interface KGroupedStream<K, V> {
  count(options?: AggregateOptions): KTable<K, number>;
  reduce(reducer: (aggregate: V, value: V) => V, options?: AggregateOptions): KTable<K, V>;
  aggregate<A>(init: () => A, adder: (aggregate: A, value: V, key: K) => A, options?: AggregateOptions): KTable<K, A>;
  /** Aggregates per window of event time. */
  windowedBy(windows: WindowSpec, options?: WindowOptions): WindowedKStream<K, V>;
}

/** A grouped stream aggregated per window; results are keyed by {@link Windowed} keys. */
export interface WindowedKStream<K, V> {
  count(options?: AggregateOptions): KTable<Windowed<K>, number>;
  reduce(reducer: (aggregate: V, value: V) => V, options?: AggregateOptions): KTable<Windowed<K>, V>;
  /** Session windows need `merge` (two sessions' aggregates into one). */
  aggregate<A>(
    init: () => A,
    adder: (aggregate: A, value: V, key: K) => A,
    options?: AggregateOptions & { readonly merge?: (a: A, b: A, key: K) => A },
  ): KTable<Windowed<K>, A>;
}

/** What grouping needs of the builder (streams-builder.ts passes it). */
export interface GroupingHost<K, V> {
  /** The name a new node of `kind` gets when none is given. */
  nameFor(kind: string, name: string | undefined): string;
  /** The stream to group (already re-keyed when grouping by a function). */
  readonly stream: KStream<K, V>;
  /** Writes the stream through repartition topic `<applicationId>-<name>-repartition` and reads it back. */
  repartition(name: string): KStream<K, V>;
}

function table<K, V>(storeName: string, stream: KStream<K, V>): KTable<K, V> {
  return {
    storeName,
    // The aggregation node forwards its updates: the table's stream is that node's stream.
    toStream: () => stream,
  };
}

/** Groups `host.stream`; `repartitionAs` names the repartition topic when records must move. */
export function createGroupedStream<K, V>(host: GroupingHost<K, V>, repartitionAs: string | undefined): KGroupedStream<K, V> {
  let grouped: KStream<K, V> | undefined;
  // The repartition nodes are added once, by the first aggregation.
  const source = (): KStream<K, V> => (grouped ??= repartitionAs === undefined ? host.stream : host.repartition(repartitionAs));

  function keyValue<A>(kind: string, aggregation: Aggregation<K, V, A>, o: AggregateOptions = {}): KTable<K, A> {
    const up = source();
    const name = host.nameFor(kind, o.name);
    const store = o.store ?? `${name}-store`;
    const s = up.process(keyValueAggregate(aggregation, store, name), {
      name,
      stores: [{ name: store, ...(o.changelog === undefined ? {} : { changelog: o.changelog }) }],
    });
    return table(store, s);
  }

  return {
    count: (o) => keyValue('COUNT', countAggregation<K>() as Aggregation<K, V, number>, o),
    reduce: (reducer, o) => keyValue('REDUCE', reduceAggregation<K, V>(reducer), o),
    aggregate: (init, adder, o) => keyValue('AGGREGATE', { init, add: adder }, o),
    windowedBy(windows, wo = {}) {
      const window = normalizeWindow(windows);
      const emit = wo.emit ?? 'update';
      const late = wo.late ?? 'dlq';
      if (emit !== 'update' && emit !== 'final')
        throw new InflowError('INVALID_CONFIG', `emit must be update or final; got ${String(emit)}`);
      if (late !== 'dlq' && late !== 'drop') throw new InflowError('INVALID_CONFIG', `late must be dlq or drop; got ${String(late)}`);
      function windowed<A>(kind: string, aggregation: Aggregation<K, V, A>, o: AggregateOptions = {}): KTable<Windowed<K>, A> {
        const up = source();
        const name = host.nameFor(kind, o.name);
        const store = o.store ?? `${name}-store`;
        const fn = windowedAggregate(aggregation, { window, time: wo.time ?? 'record', emit, late, store, node: name });
        const s = up.process(fn, {
          name,
          stores: [
            {
              name: store,
              kind: window.type === 'session' ? 'session' : 'window',
              serdes: windowStoreSerdes,
              ...(o.changelog === undefined ? {} : { changelog: o.changelog }),
            },
          ],
        });
        return table(store, s as KStream<Windowed<K>, A>);
      }
      return {
        count: (o) => windowed('COUNT', countAggregation<K>() as Aggregation<K, V, number>, o),
        reduce: (reducer, o) => windowed('REDUCE', reduceAggregation<K, V>(reducer), o),
        aggregate: (init, adder, o) => windowed('AGGREGATE', { init, add: adder, ...(o?.merge ? { merge: o.merge } : {}) }, o),
      };
    },
  };
}

/** Serdes of repartition topics (JSON, Buffers and null kept as they are). */
export const repartitionSerdes = { key: repartitionSerde, value: repartitionSerde };

/** The key a `groupBy` selector returns for a record. */
export type KeySelector<K, V, K2> = (record: StreamRecord<K, V>) => K2;
