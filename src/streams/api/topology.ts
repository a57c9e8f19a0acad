/**
 * The immutable topology a {@link StreamsBuilder} builds: a forest of named nodes, each source
 * the root of a tree (a node with several children sends each record to all of them, in order).
 * Runners and the test driver execute it; `describe()` prints it like Kafka Streams'
 * `TopologyDescription`.
 */
import type { AsyncSerde } from '../../kafka/serdes.ts';
import type { PredictSpec } from './predict-spec.ts';
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
      readonly kind: 'sink';
      readonly name: string;
      readonly topic: string;
      readonly serdes: SinkSerdes;
      readonly children: readonly string[];
    };

export type NodeKind = TopologyNode['kind'];

/** A built, frozen topology. */
export interface Topology {
  /** Every node by name, in the order they were added. */
  readonly nodes: ReadonlyMap<string, TopologyNode>;
  /** Source node names. */
  readonly sources: readonly string[];
  /** Input topics, each read by exactly one source. */
  readonly inputTopics: readonly string[];
  /** Output topics written by sinks. */
  readonly outputTopics: readonly string[];
  /** A readable description: one line per node with its successors. */
  describe(): string;
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
    case 'split':
      return ` (branches: [${node.branches.map((b) => (b.fn ? b.name : `${b.name} (default)`)).join(', ')}])`;
    default:
      return '';
  }
}

/** Freezes `nodes` into a {@link Topology}; the builder has already checked names and topics. */
export function freezeTopology(nodes: readonly TopologyNode[]): Topology {
  const byName = new Map<string, TopologyNode>();
  for (const n of nodes) byName.set(n.name, Object.freeze({ ...n, children: Object.freeze([...n.children]) }));
  const sources = nodes.filter((n) => n.kind === 'source').map((n) => n.name);
  const inputTopics = nodes.flatMap((n) => (n.kind === 'source' ? n.topics : []));
  const outputTopics = [
    ...new Set(
      nodes.flatMap((n) =>
        n.kind === 'sink' ? [n.topic] : n.kind === 'predict' && n.spec.predictionLog ? [n.spec.predictionLog.topic] : [],
      ),
    ),
  ];
  const topology: Topology = {
    nodes: byName,
    sources: Object.freeze(sources),
    inputTopics: Object.freeze(inputTopics),
    outputTopics: Object.freeze(outputTopics),
    describe() {
      const lines = ['Topology'];
      for (const name of sources) {
        lines.push(`  Sub-topology: ${name}`);
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
        walk(name);
      }
      return lines.join('\n');
    },
  };
  return Object.freeze(topology);
}
