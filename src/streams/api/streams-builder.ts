/**
 * Builds a {@link Topology} the Kafka Streams way: `builder.stream(topic)` gives a
 * {@link KStream}; each operator adds a named node and returns the next stream; `build()`
 * freezes the result. A stream used twice fans out (each record goes to both successors).
 */
import { InflowError } from '../../errors.ts';
import { normalizePredict, type PredictOptions } from './predict-spec.ts';
import type { ProcessFn, StoreRef } from './processor-context.ts';
import { isKTable, joinTable, materializeTable, type TableJoiner, type TableOptions } from './copartitioned-table.ts';
import type { KTable } from './ktable.ts';
import { joinSide, joinStores, type StreamJoinType, type WindowedJoinOptions } from './joins.ts';
import { checkTableName, type GlobalKTable, type GlobalTableDeclaration, type GlobalTableOptions, type TableJoin } from './table.ts';
import { createGroupedStream, type KGroupedStream, type KeySelector, repartitionSerdes } from './grouped-stream.ts';
import type { KeyValue, StreamRecord } from './stream-record.ts';
import { freezeTopology, type Serdes, type SinkSerdes, type StoreDeclaration, type Topology, type TopologyNode } from './topology.ts';

type NodeInit = TopologyNode extends unknown
  ? TopologyNode extends infer N
    ? N extends TopologyNode
      ? Omit<N, 'name' | 'children'>
      : never
    : never
  : never;
type MutableNode = NodeInit & { name: string; children: string[] };

/** Options common to every operator. */
export interface Named {
  /** Node name (unique in the topology); default `<KIND>-<n>` like Kafka Streams' `KSTREAM-FILTER-0000000001`. */
  readonly name?: string;
}

/** A stream of records with keys K and values V. */
export interface KStream<K, V> {
  filter(predicate: (record: StreamRecord<K, V>) => boolean, options?: Named): KStream<K, V>;
  /** Replaces key and value. */
  map<K2, V2>(fn: (record: StreamRecord<K, V>) => KeyValue<K2, V2>, options?: Named): KStream<K2, V2>;
  mapValues<V2>(fn: (record: StreamRecord<K, V>) => V2, options?: Named): KStream<K, V2>;
  /** Zero or more records per record. */
  flatMap<K2, V2>(fn: (record: StreamRecord<K, V>) => Iterable<KeyValue<K2, V2>>, options?: Named): KStream<K2, V2>;
  /** Sees each record (logging, metrics); passes it on unchanged. */
  peek(fn: (record: StreamRecord<K, V>) => void, options?: Named): KStream<K, V>;
  /**
   * Routes each record to the first branch whose predicate holds (Kafka Streams' `split()`);
   * with `defaultBranch`, records no predicate takes go there, else they are dropped.
   */
  split<B extends string>(
    branches: Readonly<Record<B, (record: StreamRecord<K, V>) => boolean>>,
    options?: Named & { readonly defaultBranch?: string },
  ): Record<B, KStream<K, V>> & Record<string, KStream<K, V>>;
  /** Model inference, micro-batched across records and partitions, output order kept per partition. */
  predict<R>(options: PredictOptions<V, R>, named?: Named): KStream<K, R>;
  /**
   * Custom stateful logic (Kafka Streams' `process()`): `fn` gets each record and a context with
   * the stores named in `stores` (declared here or by {@link StreamsBuilder.addStateStore}) and
   * returns the records to forward. The node joins the sub-topology of its stores.
   */
  process<K2 = K, V2 = V>(fn: ProcessFn<K, V, K2, V2>, options: Named & { readonly stores?: readonly StoreRef[] }): KStream<K2, V2>;
  /**
   * Inner join with a global table (Kafka Streams' `KStream.join(GlobalKTable, …)`): each record
   * looks up the row of `join.key(record)` and goes on with `join.joiner(value, row)`; a record
   * without a row is dropped. Table updates do not trigger output: a record sees the rows the
   * table held when it was processed.
   */
  join<TK, TV, R>(table: GlobalKTable<TK, TV>, join: TableJoin<K, V, NoInfer<TK>, NoInfer<TV>, R>, options?: Named): KStream<K, R>;
  /**
   * Inner join with a co-partitioned table by the record key (Kafka Streams'
   * `KStream.join(KTable, joiner)`, see copartitioned-table.ts): a record without a row is dropped.
   * The stream must be keyed like the table's topic (no key-changing operator before the join).
   */
  join<TV, R>(table: KTable<K, TV>, joiner: TableJoiner<K, V, NoInfer<TV>, R>, options?: Named): KStream<K, R>;
  /** Left join with a co-partitioned table: a record without a row is joined with `undefined`. */
  leftJoin<TV, R>(table: KTable<K, TV>, joiner: TableJoiner<K, V, NoInfer<TV> | undefined, R>, options?: Named): KStream<K, R>;
  /** Left join with a global table: a record without a row is joined with `undefined`. */
  leftJoin<TK, TV, R>(
    table: GlobalKTable<TK, TV>,
    join: TableJoin<K, V, NoInfer<TK>, NoInfer<TV> | undefined, R>,
    options?: Named,
  ): KStream<K, R>;
  /**
   * Groups by the current key for an aggregation. After an operator that may have changed keys
   * (map, flatMap, process), the records go through a repartition topic first (see groupBy).
   */
  groupByKey(options?: Named): KGroupedStream<K, V>;
  /**
   * Groups by the key `selector` returns: records are re-keyed and written to the repartition
   * topic `<applicationId>-<name>-repartition` (created by the runner), so each key's records
   * meet in one partition; the topology splits there into two sub-topologies.
   */
  groupBy<K2>(selector: KeySelector<K, V, K2>, options?: Named): KGroupedStream<K2, V>;
  /**
   * Windowed stream-stream inner join (Kafka Streams' `join(KStream, joiner, JoinWindows)`, see
   * joins.ts): each record meets every record of `other` with the same key at most
   * `options.windowMs` apart, in either order of arrival; `joiner(thisValue, otherValue, key)`
   * makes one output per pair. Both streams must be co-partitioned (same key, same partition
   * count): their nodes and stores form one sub-topology.
   */
  windowedJoin<V2, R>(other: KStream<K, V2>, joiner: (value: V, other: V2, key: K) => R, options: WindowedJoinOptions): KStream<K, R>;
  /**
   * Windowed left join (Kafka Streams' `leftJoin(KStream, joiner, JoinWindows)`): like
   * {@link windowedJoin}, and a record of this stream that meets no record of `other` is joined
   * with `undefined` — once its window (plus grace) has closed, not on arrival (KIP-633), so a
   * partner that arrives later in the window gives only the joined output.
   */
  windowedLeftJoin<V2, R>(
    other: KStream<K, V2>,
    joiner: (value: V, other: V2 | undefined, key: K) => R,
    options: WindowedJoinOptions,
  ): KStream<K, R>;
  /**
   * Windowed outer join (Kafka Streams' `outerJoin(KStream, joiner, JoinWindows)`): like
   * {@link windowedLeftJoin} for the records of both streams; the missing side is `undefined`.
   */
  windowedOuterJoin<V2, R>(
    other: KStream<K, V2>,
    joiner: (value: V | undefined, other: V2 | undefined, key: K) => R,
    options: WindowedJoinOptions,
  ): KStream<K, R>;
  /** Writes records to `topic`. */
  to(topic: string, serdes?: SinkSerdes<K, V>, options?: Named): void;
}

/** Builds one topology. */
export interface StreamsBuilder {
  stream<K = Buffer | null, V = Buffer | null>(topic: string | readonly string[], serdes?: Serdes<K, V>, options?: Named): KStream<K, V>;
  /**
   * Declares a key-value state store used by the named nodes (Kafka Streams'
   * `Topology.addStateStore`): they join one sub-topology, and each of its tasks gets an
   * instance, backed by the changelog topic `<applicationId>-<name>-changelog` unless
   * `changelog` is false.
   */
  addStateStore(store: Exclude<StoreRef, string>, ...nodes: string[]): void;
  /**
   * A global table over a compacted `topic` (see table.ts): every instance materializes all its
   * partitions before processing and keeps following it; a tombstone (null value) deletes a row.
   * The topic is no input topic: it is read by no task and needs no co-partitioning.
   */
  globalTable<K = string, V = unknown>(
    topic: string,
    serdes?: Serdes<K, V>,
    options?: GlobalTableOptions,
  ): GlobalKTable<NonNullable<K>, NonNullable<V>>;
  /**
   * A co-partitioned table over a compacted `topic` (Kafka Streams' `StreamsBuilder.table()`, see
   * copartitioned-table.ts): the stream tasks that join it read its partitions into a store of the
   * task (`options.name`, default the topic, with a changelog); the topic must have the partition
   * count of the streams joining it (checked at start). A tombstone deletes a row.
   */
  table<K = string, V = unknown>(topic: string, serdes?: Serdes<K, V>, options?: TableOptions): KTable<NonNullable<K>, NonNullable<V>>;
  /** Checks and freezes the topology; the builder cannot be used afterwards. */
  build(): Topology;
}

const PREFIX: Record<TopologyNode['kind'], string> = {
  source: 'SOURCE',
  filter: 'FILTER',
  map: 'MAP',
  mapValues: 'MAPVALUES',
  flatMap: 'FLATMAP',
  peek: 'PEEK',
  split: 'SPLIT',
  predict: 'PREDICT',
  process: 'PROCESS',
  lookup: 'JOIN',
  sink: 'SINK',
};

/** Operators after which keys may differ from the input topic's partitioning. */
const KEY_CHANGING = new Set<TopologyNode['kind']>(['map', 'flatMap', 'process']);

/** Creates an empty {@link StreamsBuilder}. */
export function createStreamsBuilder(): StreamsBuilder {
  const nodes: MutableNode[] = [];
  const byName = new Map<string, MutableNode>();
  const topics = new Set<string>();
  const stores = new Map<string, StoreDeclaration>();
  const globals = new Map<string, GlobalTableDeclaration>();
  /** The co-partitioned tables (their store names). */
  const tables = new Set<string>();
  /** Stores declared only by being named in a node's `stores` (addStateStore may still configure them). */
  const implicit = new Set<string>();
  let built = false;

  function checkStoreName(name: string): void {
    // The name becomes part of a topic name (Kafka's legal topic characters).
    if (!/^[a-zA-Z0-9._-]+$/.test(name)) {
      throw new InflowError(
        'INVALID_CONFIG',
        `store name "${name}" must be letters, digits, ".", "_" or "-" (it names the changelog topic)`,
      );
    }
  }

  /**
   * The checks `table()` and `globalTable()` share: a topic, a name (the topic's unless given) no
   * other table or store has, and a topic nothing else reads. Claims the topic; returns the name.
   */
  function claimTable(method: string, topic: string, given: string | undefined, checkName: (name: string) => void): string {
    if (built) throw new InflowError('FAILED_PRECONDITION', 'this StreamsBuilder already built its topology; use a new builder');
    if (!topic) throw new InflowError('INVALID_CONFIG', `${method}() needs a topic name`);
    const name = given ?? topic;
    checkName(name);
    if (globals.has(name) || stores.has(name)) throw new InflowError('INVALID_CONFIG', `table name "${name}" is used twice`);
    if (topics.has(topic))
      throw new InflowError('INVALID_CONFIG', `topic "${topic}" is already read by a stream() or table; read each topic once`);
    topics.add(topic);
    return name;
  }

  /** Declares or configures a store used by `users`; `explicit` for a declaration with options. */
  function declareStore(store: Exclude<StoreRef, string>, users: readonly string[], explicit: boolean): void {
    checkStoreName(store.name);
    const existing = stores.get(store.name);
    if (existing && explicit && !implicit.has(store.name))
      throw new InflowError('INVALID_CONFIG', `store "${store.name}" is declared twice`);
    const nodes = [...(existing?.nodes ?? []), ...users];
    if (existing && !explicit) {
      stores.set(store.name, { ...existing, nodes });
      return;
    }
    stores.set(store.name, {
      name: store.name,
      kind: store.kind ?? 'key-value',
      nodes,
      changelog: store.changelog ?? true,
      ...(store.serdes ? { serdes: store.serdes } : {}),
    });
    if (explicit) implicit.delete(store.name);
    else implicit.add(store.name);
  }

  function add(node: NodeInit & { name?: string | undefined }, parent?: MutableNode): MutableNode {
    if (built) throw new InflowError('FAILED_PRECONDITION', 'this StreamsBuilder already built its topology; use a new builder');
    const name = node.name ?? `${PREFIX[node.kind]}-${String(nodes.length).padStart(4, '0')}`;
    if (byName.has(name)) throw new InflowError('INVALID_CONFIG', `node name "${name}" is used twice; node names must be unique`);
    const full = { ...node, name, children: [] as string[] };
    nodes.push(full);
    byName.set(name, full);
    parent?.children.push(name);
    return full;
  }

  function lookupNode(
    table: GlobalKTable<unknown, unknown>,
    j: TableJoin<unknown, unknown, unknown, unknown, unknown>,
    inner: boolean,
  ): NodeInit {
    if (!globals.has(table.name)) {
      throw new InflowError('INVALID_CONFIG', `join: "${table.name}" is not a global table of this builder; create it with globalTable()`);
    }
    return { kind: 'lookup', table: table.name, key: j.key, joiner: j.joiner, inner };
  }

  const nameFor = (kind: string, name: string | undefined): string => name ?? `${kind}-${String(nodes.length).padStart(4, '0')}`;

  /** The node each KStream stands for (a windowed join reads the other stream's). */
  const nodeOf = new WeakMap<KStream<unknown, unknown>, MutableNode>();

  /** `keyChanged`: an operator on the way from the source may have changed keys (grouping must repartition). */
  function streamOf<K, V>(node: MutableNode, keyChanged = false): KStream<K, V> {
    const stream = makeStream<K, V>(node, keyChanged);
    nodeOf.set(stream, node);
    return stream;
  }

  function makeStream<K, V>(node: MutableNode, keyChanged: boolean): KStream<K, V> {
    const next = <K2, V2>(n: NodeInit, options?: Named): KStream<K2, V2> =>
      streamOf<K2, V2>(add({ ...n, name: options?.name }, node), keyChanged || KEY_CHANGING.has(n.kind));
    /** Groups the stream of `from`; with `repartitionAs`, through that repartition topic. */
    const group = <K2>(from: MutableNode, changed: boolean, repartitionAs: string | undefined): KGroupedStream<K2, V> => {
      const stream = streamOf<K2, V>(from, changed);
      return createGroupedStream<K2, V>(
        {
          stream,
          nameFor,
          repartition(name) {
            const topic = `${name}-repartition`;
            add({ kind: 'sink', name: `${name}-repartition-sink`, topic, internal: topic, serdes: repartitionSerdes }, from);
            const src = add({
              kind: 'source',
              name: `${name}-repartition-source`,
              topics: [topic],
              internal: topic,
              serdes: repartitionSerdes,
            });
            return streamOf<K2, V>(src);
          },
        },
        repartitionAs,
      );
    };
    /** A join with a co-partitioned table: a process node reading the table's store (so in its sub-topology). */
    const tableJoin = (
      table: KTable<unknown, unknown>,
      joiner: TableJoiner<unknown, unknown, unknown, unknown>,
      inner: boolean,
      o: Named | undefined,
    ): KStream<K, never> => {
      if (!tables.has(table.storeName)) {
        throw new InflowError('INVALID_CONFIG', `join: "${table.storeName}" is not a table of this builder; create it with table()`);
      }
      if (keyChanged) {
        throw new InflowError(
          'INVALID_CONFIG',
          `join with table "${table.storeName}": an operator before it (map, flatMap, process) may have changed the keys, so records would not meet their rows' partition; join before re-keying, or use a global table`,
        );
      }
      const added = add(
        { kind: 'process', name: o?.name, fn: joinTable(table.storeName, joiner, inner) as never, stores: [table.storeName] },
        node,
      );
      declareStore({ name: table.storeName }, [added.name], false);
      return streamOf(added, keyChanged);
    };
    /** A windowed stream-stream join of this stream (left) with `other` (right); see joins.ts. */
    const streamJoin = <R>(
      other: KStream<unknown, unknown>,
      joiner: (l: unknown, r: unknown, k: unknown) => R,
      o: WindowedJoinOptions,
      type: StreamJoinType,
    ): KStream<K, R> => {
      const otherNode = nodeOf.get(other);
      if (!otherNode) throw new InflowError('INVALID_CONFIG', 'windowedJoin: the other stream is not from this builder');
      const name = o.name ?? `JOIN-${String(nodes.length).padStart(4, '0')}`;
      checkStoreName(name);
      const stores = joinStores(name);
      const sides = [true, false].map((left) => joinSide(stores, left, o, joiner, type));
      const [l, r] = [node, otherNode].map((parent, i) => {
        const side = sides[i] as (typeof sides)[number];
        const added = add(
          {
            kind: 'process',
            name: `${name}-${i === 0 ? 'this' : 'other'}`,
            fn: side.fn as never,
            stores: side.stores.map((s) => (typeof s === 'string' ? s : s.name)),
          },
          parent,
        );
        for (const ref of side.stores) declareStore(typeof ref === 'string' ? { name: ref } : ref, [added.name], typeof ref !== 'string');
        return added;
      }) as [MutableNode, MutableNode];
      // One stream out of both sides: a pass-through node with two parents.
      const merged = add({ kind: 'peek', name, fn: () => undefined }, l);
      r.children.push(merged.name);
      return streamOf(merged, keyChanged);
    };
    return {
      filter: (fn, o) => next({ kind: 'filter', fn: fn as never }, o),
      map: (fn, o) => next({ kind: 'map', fn: fn as never }, o),
      mapValues: (fn, o) => next({ kind: 'mapValues', fn: fn as never }, o),
      flatMap: (fn, o) => next({ kind: 'flatMap', fn: fn as never }, o),
      peek: (fn, o) => next({ kind: 'peek', fn: fn as never }, o),
      split(branches, o) {
        const list: { name: string; fn?: (r: StreamRecord) => boolean }[] = Object.entries(branches).map(([name, fn]) => ({
          name,
          fn: fn as (r: StreamRecord) => boolean,
        }));
        if (o?.defaultBranch !== undefined) list.push({ name: o.defaultBranch });
        if (list.length === 0) throw new InflowError('INVALID_CONFIG', 'split needs at least one branch');
        const split = add({ kind: 'split', name: o?.name, branches: list }, node);
        const out: Record<string, KStream<K, V>> = {};
        for (const b of list) {
          if (b.name in out) throw new InflowError('INVALID_CONFIG', `split branch "${b.name}" is named twice`);
          // Each branch is a pass-through node named `<split>-<branch>`, so it can be described and followed.
          out[b.name] = streamOf<K, V>(add({ kind: 'peek', name: `${split.name}-${b.name}`, fn: () => undefined }, split));
        }
        return out;
      },
      predict: (options, o) => next({ kind: 'predict', spec: normalizePredict(options as PredictOptions) }, o),
      process(fn, o) {
        const refs = o.stores ?? [];
        const names = refs.map((r) => (typeof r === 'string' ? r : r.name));
        if (new Set(names).size !== names.length)
          throw new InflowError('INVALID_CONFIG', `process() names a store twice: ${names.join(', ')}`);
        for (const name of names) checkStoreName(name);
        const added = add({ kind: 'process', name: o.name, fn: fn as never, stores: names }, node);
        for (const r of refs) declareStore(typeof r === 'string' ? { name: r } : r, [added.name], typeof r !== 'string');
        return streamOf(added);
      },
      join: ((table: unknown, j: unknown, o?: Named) =>
        isKTable(table)
          ? tableJoin(table, j as never, true, o)
          : next(
              lookupNode(table as GlobalKTable<unknown, unknown>, j as TableJoin<unknown, unknown, unknown, unknown, unknown>, true),
              o,
            )) as KStream<K, V>['join'],
      leftJoin: ((table: unknown, j: unknown, o?: Named) =>
        isKTable(table)
          ? tableJoin(table, j as never, false, o)
          : next(
              lookupNode(table as GlobalKTable<unknown, unknown>, j as TableJoin<unknown, unknown, unknown, unknown, unknown>, false),
              o,
            )) as KStream<K, V>['leftJoin'],
      groupByKey(o) {
        return group<K>(node, keyChanged, keyChanged ? nameFor('GROUPBYKEY', o?.name) : undefined);
      },
      groupBy(selector, o) {
        const name = nameFor('GROUPBY', o?.name);
        const select = (r: StreamRecord<K, V>) => ({ key: selector(r), value: r.value });
        const map = add({ kind: 'map', name: `${name}-key-select`, fn: select as never }, node);
        return group(map, true, name);
      },
      windowedJoin: (other, joiner, o) => streamJoin(other, joiner as never, o, 'inner'),
      windowedLeftJoin: (other, joiner, o) => streamJoin(other, joiner as never, o, 'left'),
      windowedOuterJoin: (other, joiner, o) => streamJoin(other, joiner as never, o, 'outer'),
      to(topic, serdes = {}, o) {
        if (!topic) throw new InflowError('INVALID_CONFIG', 'to() needs a topic name');
        add({ kind: 'sink', name: o?.name, topic, serdes: serdes }, node);
      },
    };
  }

  return {
    stream<K, V>(topic: string | readonly string[], serdes: Serdes<K, V> = {}, options?: Named) {
      const list = typeof topic === 'string' ? [topic] : [...topic];
      if (list.length === 0 || list.some((t) => !t)) throw new InflowError('INVALID_CONFIG', 'stream() needs at least one topic name');
      for (const t of list) {
        if (topics.has(t))
          throw new InflowError('INVALID_CONFIG', `topic "${t}" is already read by another stream(); read each topic once`);
        topics.add(t);
      }
      return streamOf<K, V>(add({ kind: 'source', name: options?.name, topics: list, serdes: serdes }));
    },
    globalTable<K, V>(topic: string, serdes: Serdes<K, V> = {}, options: GlobalTableOptions = {}) {
      const name = claimTable('globalTable', topic, options.name, checkTableName);
      globals.set(name, { name, topic, serdes, ...(options.validate ? { validate: options.validate } : {}) });
      return { name, topic };
    },
    table<K, V>(topic: string, serdes: Serdes<K, V> = {}, options: TableOptions = {}) {
      const name = claimTable('table', topic, options.name, checkStoreName);
      const src = add({ kind: 'source', name: `${name}-source`, topics: [topic], serdes: serdes });
      const materialize = add(
        { kind: 'process', name: `${name}-table`, fn: materializeTable(name, options.validate) as never, stores: [name] },
        src,
      );
      declareStore({ name, serdes: {} }, [materialize.name], true);
      tables.add(name);
      return { storeName: name, toStream: (o?: Named) => streamOf(add({ kind: 'peek', name: o?.name, fn: () => undefined }, materialize)) };
    },
    addStateStore(store, ...users) {
      if (built) throw new InflowError('FAILED_PRECONDITION', 'this StreamsBuilder already built its topology; use a new builder');
      declareStore(store, users, true);
    },
    build() {
      if (built) throw new InflowError('FAILED_PRECONDITION', 'build() was already called on this StreamsBuilder');
      for (const s of stores.values()) {
        const unknown = s.nodes.filter((n) => !byName.has(n));
        if (unknown.length > 0) throw new InflowError('INVALID_CONFIG', `store "${s.name}" names unknown nodes: ${unknown.join(', ')}`);
      }
      if (nodes.length === 0) throw new InflowError('INVALID_CONFIG', 'the topology is empty: add a stream() first');
      for (const n of nodes) {
        // A peek or a process node may end a branch (it acts on the side: logs, metrics, stores).
        if (n.kind !== 'sink' && n.children.length === 0 && n.kind !== 'peek' && n.kind !== 'process') {
          throw new InflowError('INVALID_CONFIG', `node "${n.name}" (${n.kind}) leads nowhere: end it with to(topic)`);
        }
      }
      built = true;
      return freezeTopology(nodes, [...stores.values()], [...globals.values()]);
    },
  };
}
