/**
 * The immutable topology a {@link StreamsBuilder} builds: a forest of named nodes, each source
 * the root of a tree (a node with several children sends each record to all of them, in order).
 * Nodes connected by edges or by a shared state store form a sub-topology; the runtime runs one
 * task per input partition of each sub-topology, and a store has one instance per task, backed
 * by a changelog topic (an internal topic: `<applicationId>-<store>-changelog`). Runners and the
 * test driver execute it; `describe()` prints it like Kafka Streams' `TopologyDescription`.
 */
import type { AsyncSerde } from '../../kafka/serdes.ts';
import type { StoreSerdes } from '../state/key-value-store.ts';
import type { PredictSpec } from './predict-spec.ts';
import type { ProcessFn } from './processor-context.ts';
import type { GlobalTableDeclaration } from './table.ts';
import type { KeyValue, StreamRecord } from './stream-record.ts';

/** Serdes of a source or sink; missing ones default to bytes. A Schema Registry serde may answer with a promise. */
export interface Serdes<K = unknown, V = unknown> {
  readonly key?: AsyncSerde<K>;
  readonly value?: AsyncSerde<V>;
}

/** What a sink needs of a serde. A method, so any serde of a wider type fits. */
export interface Serializer<T> {
  serialize(value: T): Buffer | null | Promise<Buffer | null>;
}

/** Serdes of a sink; missing ones mean the key/value already are bytes. */
export interface SinkSerdes<K = unknown, V = unknown> {
  readonly key?: Serializer<K>;
  readonly value?: Serializer<V>;
}

type Fn<R> = (record: StreamRecord) => R;

/** One node; `children` are node names. Functions are the user's, called synchronously. */
export type TopologyNode =
  | {
      readonly kind: 'source';
      readonly name: string;
      readonly topics: readonly string[];
      readonly serdes: Serdes;
      /** Reads an internal (repartition) topic of this short name: its topic is `<applicationId>-<internal>`. */
      readonly internal?: string;
      readonly children: readonly string[];
    }
  | { readonly kind: 'filter'; readonly name: string; readonly fn: Fn<boolean>; readonly children: readonly string[] }
  | { readonly kind: 'map'; readonly name: string; readonly fn: Fn<KeyValue<unknown, unknown>>; readonly children: readonly string[] }
  | { readonly kind: 'mapValues'; readonly name: string; readonly fn: Fn<unknown>; readonly children: readonly string[] }
  | {
      readonly kind: 'flatMap';
      readonly name: string;
      readonly fn: Fn<Iterable<KeyValue<unknown, unknown>>>;
      readonly children: readonly string[];
    }
  | { readonly kind: 'peek'; readonly name: string; readonly fn: Fn<void>; readonly children: readonly string[] }
  | {
      readonly kind: 'split';
      readonly name: string;
      /** Branches in order; a record goes to the first whose predicate holds (the default has none). */
      readonly branches: readonly { readonly name: string; readonly fn?: Fn<boolean> }[];
      readonly children: readonly string[];
    }
  | { readonly kind: 'predict'; readonly name: string; readonly spec: PredictSpec; readonly children: readonly string[] }
  | {
      readonly kind: 'process';
      readonly name: string;
      readonly fn: ProcessFn<unknown, unknown, unknown, unknown>;
      /** Stores the function may use (declared in the topology's stores). */
      readonly stores: readonly string[];
      readonly children: readonly string[];
    }
  | {
      /** A stream-table join with a global table: the row of `key(record)`, combined by `joiner`. */
      readonly kind: 'lookup';
      readonly name: string;
      readonly table: string;
      readonly key: Fn<unknown>;
      readonly joiner: (value: unknown, row: unknown, record: StreamRecord) => unknown;
      /** Inner join: a record without a row is dropped; else (left join) joined with undefined. */
      readonly inner: boolean;
      readonly children: readonly string[];
    }
  | {
      readonly kind: 'sink';
      readonly name: string;
      readonly topic: string;
      readonly serdes: SinkSerdes;
      /** Writes an internal (repartition) topic of this short name: its topic is `<applicationId>-<internal>`. */
      readonly internal?: string;
      readonly children: readonly string[];
    };

export type NodeKind = TopologyNode['kind'];

/** A state store the topology declares: one instance per task of its sub-topology. */
export interface StoreDeclaration {
  readonly name: string;
  /** Window and session stores are key-value stores keyed as in `state/window-key.ts`. */
  readonly kind: 'key-value' | 'window' | 'session';
  /** Nodes that use the store (they end up in one sub-topology). */
  readonly nodes: readonly string[];
  /** Whether the store is backed by a compacted changelog topic (default true). */
  readonly changelog: boolean;
  /** Serdes of its typed view; missing ones default to ordered keys and JSON values. */
  readonly serdes?: StoreSerdes<unknown, unknown>;
}

/** A topic the runtime creates and owns for the topology. */
export interface InternalTopic {
  /** Full name, for the application id it was asked for. */
  readonly name: string;
  readonly kind: 'changelog' | 'repartition';
  /** The sub-topology whose tasks write it; it has as many partitions as that sub-topology's input. */
  readonly subtopology: number;
  /** Changelog topics are compacted. */
  readonly compacted: boolean;
}

/** Nodes connected by edges or shared stores; the runtime runs one task per input partition of each. */
export interface Subtopology {
  readonly id: number;
  /** Node names, in the order they were added. */
  readonly nodes: readonly string[];
  readonly sources: readonly string[];
  /** Topics its sources read, co-partitioned: task `<id>_<p>` reads partition p of each. */
  readonly inputTopics: readonly string[];
  readonly stores: readonly string[];
}

/** `<applicationId>-<store>-changelog`, like Kafka Streams. */
export function changelogTopic(applicationId: string, store: string): string {
  return `${applicationId}-${store}-changelog`;
}

/** `<applicationId>-<name>-repartition`, like Kafka Streams. */
export function repartitionTopic(applicationId: string, name: string): string {
  return `${applicationId}-${name}-repartition`;
}

/** A built, frozen topology. */
export interface Topology {
  /** The application id its internal topic names are bound to (see {@link Topology.forApplication}). */
  readonly applicationId: string | undefined;
  /** Every node by name, in the order they were added. */
  readonly nodes: ReadonlyMap<string, TopologyNode>;
  /** Source node names. */
  readonly sources: readonly string[];
  /** Input topics, each read by exactly one source (internal repartition topics included). */
  readonly inputTopics: readonly string[];
  /** Output topics written by sinks (internal repartition topics excluded). */
  readonly outputTopics: readonly string[];
  /** Sub-topologies in the order of their first source. */
  readonly subtopologies: readonly Subtopology[];
  /** Declared state stores by name. */
  readonly stores: ReadonlyMap<string, StoreDeclaration>;
  /** Global tables by name: every instance reads all partitions of their topics (not input topics of any task). */
  readonly globalTables: ReadonlyMap<string, GlobalTableDeclaration>;
  /** The internal topics (changelogs, repartition topics) for `applicationId`. */
  internalTopics(applicationId: string): readonly InternalTopic[];
  /** A readable description: sub-topologies with one line per node and its successors, stores, internal topics. */
  describe(): string;
  /**
   * This topology with its internal topics named for `applicationId` (`<applicationId>-<name>-repartition`):
   * what runners execute. The same topology when it has no internal topics or is bound to that id.
   */
  forApplication(applicationId: string): Topology;
}

function detail(node: TopologyNode): string {
  switch (node.kind) {
    case 'source':
      return ` (topics: [${node.topics.join(', ')}])`;
    case 'sink':
      return ` (topic: ${node.topic})`;
    case 'predict': {
      const s = node.spec;
      const target = `${s.model}${s.version !== undefined ? `@${s.version}` : s.label ? `:${s.label}` : ''}`;
      return ` (model: ${target}, maxBatch: ${s.maxBatch}, maxDelayMs: ${s.maxDelayMs}, inferencer: ${s.inferencerName})`;
    }
    case 'process':
      return ` (stores: [${node.stores.join(', ')}])`;
    case 'lookup':
      return ` (${node.inner ? 'inner' : 'left'} join, global table: ${node.table})`;
    case 'split':
      return ` (branches: [${node.branches.map((b) => (b.fn ? b.name : `${b.name} (default)`)).join(', ')}])`;
    default:
      return '';
  }
}

/** Groups nodes into sub-topologies: connected by an edge or a shared store (union-find). */
function groupSubtopologies(nodes: readonly TopologyNode[], stores: readonly StoreDeclaration[]): Subtopology[] {
  const parent = new Map<string, string>(nodes.map((n) => [n.name, n.name]));
  const find = (x: string): string => {
    let root = x;
    while (parent.get(root) !== root) root = parent.get(root) as string;
    parent.set(x, root);
    return root;
  };
  const union = (a: string, b: string): void => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent.set(rb, ra);
  };
  for (const n of nodes) for (const c of n.children) union(n.name, c);
  for (const s of stores) for (const n of s.nodes.slice(1)) union(s.nodes[0] as string, n);
  const groups = new Map<string, TopologyNode[]>();
  for (const n of nodes) {
    const root = find(n.name);
    groups.set(root, [...(groups.get(root) ?? []), n]);
  }
  // Ordered by their first source (a group without a source reads nothing and is left out).
  const ordered = [...groups.values()]
    .map((members) => ({ members, first: nodes.findIndex((n) => n.kind === 'source' && members.includes(n)) }))
    .filter((g) => g.first >= 0)
    .sort((a, b) => a.first - b.first);
  return ordered.map(({ members }, id) => {
    const names = new Set(members.map((m) => m.name));
    return Object.freeze({
      id,
      nodes: Object.freeze(members.map((m) => m.name)),
      sources: Object.freeze(members.filter((m) => m.kind === 'source').map((m) => m.name)),
      inputTopics: Object.freeze(members.flatMap((m) => (m.kind === 'source' ? m.topics : []))),
      stores: Object.freeze(stores.filter((s) => s.nodes.some((n) => names.has(n))).map((s) => s.name)),
    });
  });
}

/** Freezes `nodes` into a {@link Topology}; the builder has already checked names and topics. */
export function freezeTopology(
  nodes: readonly TopologyNode[],
  storeList: readonly StoreDeclaration[] = [],
  globalList: readonly GlobalTableDeclaration[] = [],
  applicationId?: string,
): Topology {
  // Internal topics are named for the application id; unbound, they show as `<applicationId>-<name>`.
  const prefix = applicationId ?? '<applicationId>';
  const original = nodes;
  nodes = nodes.map((n) =>
    n.kind === 'source' && n.internal !== undefined
      ? { ...n, topics: [`${prefix}-${n.internal}`] }
      : n.kind === 'sink' && n.internal !== undefined
        ? { ...n, topic: `${prefix}-${n.internal}` }
        : n,
  );
  const byName = new Map<string, TopologyNode>();
  for (const n of nodes) byName.set(n.name, Object.freeze({ ...n, children: Object.freeze([...n.children]) }));
  const sources = nodes.filter((n) => n.kind === 'source').map((n) => n.name);
  const inputTopics = nodes.flatMap((n) => (n.kind === 'source' ? n.topics : []));
  const outputTopics = [
    ...new Set(
      nodes.flatMap((n) =>
        n.kind === 'sink' && n.internal === undefined
          ? [n.topic]
          : n.kind === 'predict' && n.spec.predictionLog
            ? [n.spec.predictionLog.topic]
            : [],
      ),
    ),
  ];
  const subtopologies = groupSubtopologies(nodes, storeList);
  const stores = new Map(storeList.map((st) => [st.name, Object.freeze({ ...st, nodes: Object.freeze([...st.nodes]) })]));
  const subtopologyOf = (store: string): number => subtopologies.find((st) => st.stores.includes(store))?.id ?? -1;
  const subtopologyOfNode = (node: string): number => subtopologies.find((st) => st.nodes.includes(node))?.id ?? -1;
  const internalTopics = (appId: string): InternalTopic[] => [
    ...nodes.flatMap((n): InternalTopic[] =>
      n.kind === 'sink' && n.internal !== undefined
        ? [{ name: `${appId}-${n.internal}`, kind: 'repartition', subtopology: subtopologyOfNode(n.name), compacted: false }]
        : [],
    ),
    ...[...stores.values()]
      .filter((st) => st.changelog)
      .map(
        (st): InternalTopic => ({
          name: changelogTopic(appId, st.name),
          kind: 'changelog',
          subtopology: subtopologyOf(st.name),
          compacted: true,
        }),
      ),
  ];
  const topology: Topology = {
    applicationId,
    nodes: byName,
    sources: Object.freeze(sources),
    inputTopics: Object.freeze(inputTopics),
    outputTopics: Object.freeze(outputTopics),
    subtopologies: Object.freeze(subtopologies),
    stores,
    globalTables: new Map(globalList.map((g) => [g.name, Object.freeze({ ...g })])),
    internalTopics,
    forApplication(appId) {
      const hasInternal = original.some((n) => (n.kind === 'source' || n.kind === 'sink') && n.internal !== undefined);
      return appId === applicationId || !hasInternal ? topology : freezeTopology(original, storeList, globalList, appId);
    },
    describe() {
      const lines = ['Topology'];
      for (const st of subtopologies) {
        lines.push(`  Sub-topology: ${st.id} (tasks ${st.id}_<partition> over [${st.inputTopics.join(', ')}])`);
        const seen = new Set<string>();
        const walk = (n: string): void => {
          if (seen.has(n)) return;
          seen.add(n);
          const node = byName.get(n);
          if (!node) return;
          lines.push(`    ${node.kind.padEnd(9)} ${node.name}${detail(node)}`);
          lines.push(`      --> ${node.children.length ? node.children.join(', ') : 'none'}`);
          for (const c of node.children) walk(c);
        };
        for (const source of st.sources) walk(source);
        for (const name of st.stores) {
          const store = stores.get(name) as StoreDeclaration;
          lines.push(`    store     ${name} (${store.kind}, used by: [${store.nodes.join(', ')}])`);
        }
      }
      for (const g of globalList) lines.push(`  Global table: ${g.name} (topic: ${g.topic}, all partitions on every instance)`);
      const internal = internalTopics(prefix);
      if (internal.length > 0) {
        lines.push('  Internal topics:');
        for (const t of internal)
          lines.push(`    ${t.kind.padEnd(9)} ${t.name} (sub-topology ${t.subtopology}${t.compacted ? ', compacted' : ''})`);
      }
      return lines.join('\n');
    },
  };
  return Object.freeze(topology);
}
