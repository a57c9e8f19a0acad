/**
 * Runs one consumed record through the topology and returns the records to produce, in the
 * order the topology emits them. Synchronous nodes run at once; a `predict` node parks the
 * record in its batcher, so the result is a promise only when a predict is on the path.
 * Any failure fails the whole input record with a {@link StageError} (the runner applies the
 * error policy: dead-letter, skip or fail); partial outputs of a failed record are dropped.
 *
 * The node kinds with more to them live beside this file: predict-node.ts (batching, offset
 * order after a predict, the prediction log), process-node.ts (stores, global-table lookups)
 * and sink-record.ts (serialization, size limit).
 */
import { context } from '@opentelemetry/api';
import { InflowError } from '../../errors.ts';
import { startProcessSpan } from '../../observability/kafka-tracing.ts';
import { endWithError, inSpan, tracingActive } from '../../observability/tracing.ts';
import type { ConsumedRecord } from '../../kafka/types.ts';
import type { StreamRecord } from '../api/stream-record.ts';
import type { Topology, TopologyNode } from '../api/topology.ts';
import type { KeyValueStore } from '../state/key-value-store.ts';
import { createMemoryStoreProvider, type StoreProvider } from '../state/store-provider.ts';
import { joinOutputs, type NodeRunner, type Out, type Path, type ProcessingOrder, runUserFunction, type TaskView } from './node-runner.ts';
import type { PredictBatcher } from './predict-batcher.ts';
import { runPredict } from './predict-node.ts';
import { runLookup, runProcess } from './process-node.ts';
import { DEFAULT_MAX_RECORD_BYTES, runSink } from './sink-record.ts';
import { Stage, StageError } from './stage-error.ts';
import { Turn } from './turn.ts';

/** Kept for code written before the split: the stage error's home is stage-error.ts. */
export { Stage, StageError } from './stage-error.ts';

export interface RecordProcessorOptions {
  readonly maxRecordBytes?: number;
  /** The tasks' store instances; default in-memory stores, created on first use. */
  readonly stores?: StoreProvider;
  /** This instance's store of each global table (global-tables.ts), by table name. */
  readonly globalTables?: (name: string) => KeyValueStore<unknown, unknown> | undefined;
}

/** Processes consumed records with `topology`; `batchers` holds one batcher per predict node. */
export function createRecordProcessor(
  topology: Topology,
  batchers: ReadonlyMap<string, PredictBatcher>,
  options: RecordProcessorOptions = {},
) {
  const maxRecordBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  const provider = options.stores ?? createMemoryStoreProvider();
  const sourceOf = new Map<string, TopologyNode & { kind: 'source' }>();
  const subtopologyOf = new Map<string, number>();
  for (const st of topology.subtopologies) for (const t of st.inputTopics) subtopologyOf.set(t, st.id);
  for (const name of topology.sources) {
    const node = topology.nodes.get(name);
    if (node?.kind === 'source') for (const t of node.topics) sourceOf.set(t, node);
  }

  const run: NodeRunner = { children };

  function children(node: TopologyNode, record: StreamRecord, path: Path): Out {
    if (node.children.length === 1) return visit(node.children[0] as string, record, path);
    return joinOutputs(node.children.map((c) => visit(c, record, path)));
  }

  function visit(name: string, record: StreamRecord, path: Path): Out {
    const node = topology.nodes.get(name) as TopologyNode;
    switch (node.kind) {
      case 'source':
        return children(node, record, path);
      case 'filter':
        return runUserFunction(node, () => node.fn(record)) ? children(node, record, path) : [];
      case 'map': {
        const kv = runUserFunction(node, () => node.fn(record));
        return children(node, { ...record, key: kv.key, value: kv.value, headers: kv.headers ?? record.headers }, path);
      }
      case 'mapValues': {
        const value = runUserFunction(node, () => node.fn(record));
        return children(node, { ...record, value }, path);
      }
      case 'flatMap': {
        const items = runUserFunction(node, () => [...node.fn(record)]);
        return joinOutputs(
          items.map((kv) => children(node, { ...record, key: kv.key, value: kv.value, headers: kv.headers ?? record.headers }, path)),
        );
      }
      case 'peek':
        runUserFunction(node, () => node.fn(record));
        return children(node, record, path);
      case 'split': {
        const branch = node.branches.find((b) => !b.fn || runUserFunction(node, () => (b.fn as (r: StreamRecord) => boolean)(record)));
        return branch ? visit(`${node.name}-${branch.name}`, record, path) : [];
      }
      case 'predict':
        return runPredict(node, record, path, batchers.get(node.name) as PredictBatcher, run);
      case 'process':
        return runProcess(node, record, path, topology, provider, run);
      case 'lookup':
        return runLookup(node, record, path, options.globalTables?.(node.table), run);
      case 'sink':
        return runSink(node, record, maxRecordBytes);
    }
  }

  /** {@link processRecord} inside the record's CONSUMER span (tracing on). */
  function traced(record: ConsumedRecord, order: ProcessingOrder, task: TaskView | undefined): Out {
    const { span, context: ctx } = startProcessSpan(record);
    let out: Out;
    try {
      out = context.with(ctx, () => processRecord(record, order, task));
    } catch (e) {
      endWithError(span, e);
      throw e;
    }
    if (!(out instanceof Promise)) {
      span.end();
      return out;
    }
    return out.then(
      (o) => {
        span.end();
        return o;
      },
      (e: unknown) => {
        endWithError(span, e);
        throw e;
      },
    );
  }

  function processRecord(record: ConsumedRecord, order: ProcessingOrder, task: TaskView | undefined): Out {
    const source = sourceOf.get(record.topic);
    if (!source) throw new StageError(Stage.DESERIALIZE, '(none)', new InflowError('INTERNAL', `no source reads topic "${record.topic}"`));
    let key: unknown;
    let value: unknown;
    try {
      const decode = (): void => {
        key = source.serdes.key ? source.serdes.key.deserialize(record.key) : record.key;
        value = source.serdes.value ? source.serdes.value.deserialize(record.value) : record.value;
      };
      if (tracingActive()) inSpan('deserialize', decode);
      else decode();
    } catch (e) {
      throw new StageError(Stage.DESERIALIZE, source.name, e);
    }
    const path: Path = {
      order,
      task: task ?? { taskId: `${subtopologyOf.get(record.topic) ?? -1}_${record.partition}`, streamTime: record.timestamp },
    };
    const next = (k: unknown, v: unknown): Out =>
      children(
        source,
        {
          key: k,
          value: v,
          headers: record.headers,
          timestamp: record.timestamp,
          origin: { topic: record.topic, partition: record.partition, offset: record.offset },
        },
        path,
      );
    // A Schema Registry serde answers with a promise the first time it meets a schema id. The
    // nodes after a predict still run in offset order: `order` waits for the previous record.
    if (key instanceof Promise || value instanceof Promise) {
      return Promise.all([key, value]).then(
        ([k, v]) => next(k, v),
        (e: unknown) => {
          throw new StageError(Stage.DESERIALIZE, source.name, e);
        },
      );
    }
    return next(key, value);
  }

  return {
    /**
     * The topology's outputs for `record`; throws (or rejects with) a {@link StageError}.
     * `order` is the record's partition's (its queue): nodes after a predict run in the order
     * the partition's records took their turns, i.e. in offset order. `task` is the record's
     * task (id and stream time); without it, the task is derived from the record and its
     * stream time is the record's timestamp.
     */
    process(record: ConsumedRecord, order: ProcessingOrder = { tail: Turn.FREE, signal: undefined }, task?: TaskView): Out {
      return tracingActive() ? traced(record, order, task) : processRecord(record, order, task);
    },
  };
}

export type RecordProcessor = ReturnType<typeof createRecordProcessor>;
