/**
 * Runs one consumed record through the topology and returns the records to produce, in the
 * order the topology emits them. Synchronous nodes run at once; a `predict` node parks the
 * record in its batcher, so the result is a promise only when a predict is on the path.
 * Any failure fails the whole input record with a {@link StageError} (the runner applies the
 * error policy: dead-letter, skip or fail); partial outputs of a failed record are dropped.
 */
import { context } from '@opentelemetry/api';
import { InflowError } from '../../errors.ts';
import { sendSpanHeaders, startProcessSpan } from '../../observability/kafka-tracing.ts';
import { endWithError, inSpan, tracingActive } from '../../observability/tracing.ts';
import type { AsyncSerde } from '../../kafka/serdes.ts';
import type { ConsumedRecord, ProducerRecord } from '../../kafka/types.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import { rowToJson } from '../api/field-mapping.ts';
import type { PredictBatcher, RowResult } from './predict-batcher.ts';
import { headerText, type StreamRecord, withHeader } from '../api/stream-record.ts';
import type { Topology, TopologyNode } from '../api/topology.ts';
import type { ProcessorContext } from '../api/processor-context.ts';
import { createKeyValueStore, type KeyValueStore } from '../state/key-value-store.ts';
import { createMemoryStoreProvider, type StoreProvider } from '../state/store-provider.ts';
import { Turn } from './turn.ts';

/** Where in the pipeline a record failed (the DLQ header `inflow-error-stage`). */
export const Stage = {
  DESERIALIZE: 'deserialize',
  PROCESS: 'process',
  PREDICT: 'predict',
  SERIALIZE: 'serialize',
} as const;
export type Stage = (typeof Stage)[keyof typeof Stage];

/** A failure of one input record. */
export class StageError extends Error {
  override readonly name = 'StageError';
  readonly stage: Stage;
  readonly node: string;
  readonly error: InflowError;
  /** The model that failed, for predict errors. */
  readonly model: string | undefined;

  constructor(stage: Stage, node: string, error: unknown, model?: string) {
    const inflow = InflowError.from(error);
    super(`${stage} failed at node "${node}": ${inflow.message}`, { cause: inflow });
    this.stage = stage;
    this.node = node;
    this.error = inflow;
    this.model = model;
  }
}

type Out = ProducerRecord[] | Promise<ProducerRecord[]>;

/** A partition's order of continuations after predicts: `tail` is the last turn taken. */
export interface ProcessingOrder {
  tail: Turn;
  /** Aborted when the partition's records were dropped: their predictions that did not start never run. */
  readonly signal: AbortSignal | undefined;
}

/** Header names inflow writes on predicted records. */
export const MODEL_HEADER = 'inflow-model';
export const MODEL_VERSION_HEADER = 'inflow-model-version';

/** Default largest output record, bytes of key + value + headers: under the broker's 1 MiB default message.max.bytes with room for the batch framing. */
export const DEFAULT_MAX_RECORD_BYTES = 1_000_000;

/** The task a record is processed in: its id and stream time (ms). */
export interface TaskView {
  readonly taskId: string;
  readonly streamTime: number;
}

/** What the processor carries along one record's path. */
interface Path {
  readonly order: ProcessingOrder;
  readonly task: TaskView;
}

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

  /** Concatenates the outputs of several paths; a promise only when one of them is. */
  function join(parts: Out[]): Out {
    if (!parts.some((p) => p instanceof Promise)) return (parts as ProducerRecord[][]).flat();
    return Promise.all(parts.map(async (p) => p)).then((ps) => ps.flat());
  }

  function children(node: TopologyNode, record: StreamRecord, path: Path): Out {
    if (node.children.length === 1) return visit(node.children[0] as string, record, path);
    return join(node.children.map((c) => visit(c, record, path)));
  }

  function user<T>(node: TopologyNode, fn: () => T): T {
    try {
      // Tracing on: one span per user function, named after its node (decode-request, …).
      return tracingActive() ? inSpan(node.name, fn) : fn();
    } catch (e) {
      throw new StageError(
        Stage.PROCESS,
        node.name,
        e instanceof InflowError ? e : new InflowError('INVALID_ARGUMENT', (e as Error)?.message ?? String(e), { cause: e }),
      );
    }
  }

  function visit(name: string, record: StreamRecord, path: Path): Out {
    const node = topology.nodes.get(name) as TopologyNode;
    switch (node.kind) {
      case 'source':
        return children(node, record, path);
      case 'filter':
        return user(node, () => node.fn(record)) ? children(node, record, path) : [];
      case 'map': {
        const kv = user(node, () => node.fn(record));
        return children(node, { ...record, key: kv.key, value: kv.value, headers: kv.headers ?? record.headers }, path);
      }
      case 'mapValues': {
        const value = user(node, () => node.fn(record));
        return children(node, { ...record, value }, path);
      }
      case 'flatMap': {
        const items = user(node, () => [...node.fn(record)]);
        return join(
          items.map((kv) => children(node, { ...record, key: kv.key, value: kv.value, headers: kv.headers ?? record.headers }, path)),
        );
      }
      case 'peek':
        user(node, () => node.fn(record));
        return children(node, record, path);
      case 'split': {
        const branch = node.branches.find((b) => !b.fn || user(node, () => (b.fn as (r: StreamRecord) => boolean)(record)));
        return branch ? visit(`${node.name}-${branch.name}`, record, path) : [];
      }
      case 'predict':
        return predict(node, record, path);
      case 'process':
        return process(node, record, path);
      case 'lookup':
        return lookup(node, record, path);
      case 'sink': {
        let key: Buffer | null | Promise<Buffer | null>;
        let value: Buffer | null | Promise<Buffer | null>;
        try {
          key = node.serdes.key ? node.serdes.key.serialize(record.key) : (record.key as Buffer | null);
          value = node.serdes.value ? node.serdes.value.serialize(record.value) : (record.value as Buffer | null);
        } catch (e) {
          throw new StageError(Stage.SERIALIZE, node.name, e);
        }
        // A Schema Registry serde answers with a promise until its output schema is registered.
        if (key instanceof Promise || value instanceof Promise) {
          return Promise.all([key, value]).then(
            ([k, v]) => sink(node, record, k, v),
            (e: unknown) => {
              throw new StageError(Stage.SERIALIZE, node.name, e);
            },
          );
        }
        return sink(node, record, key, value);
      }
    }
  }

  function sink(node: TopologyNode & { kind: 'sink' }, record: StreamRecord, key: Buffer | null, value: Buffer | null): ProducerRecord[] {
    for (const [what, bytes] of [
      ['key', key],
      ['value', value],
    ] as const) {
      if (bytes !== null && !Buffer.isBuffer(bytes)) {
        throw new StageError(
          Stage.SERIALIZE,
          node.name,
          new InflowError(
            'INVALID_ARGUMENT',
            `sink "${node.name}" got a ${typeof bytes} ${what} without a serde; give to() a ${what} serde (e.g. stringSerde, jsonSerde())`,
          ),
        );
      }
    }
    // An output the broker would refuse fails this record alone (error policy), not the pipeline's next produce.
    let bytes = (key?.length ?? 0) + (value?.length ?? 0);
    for (const [k, v] of record.headers) bytes += Buffer.byteLength(k) + v.length;
    if (bytes > maxRecordBytes) {
      throw new StageError(
        Stage.SERIALIZE,
        node.name,
        new InflowError(
          'KAFKA_RECORD_TOO_LARGE',
          `output for topic "${node.topic}" is ${bytes} bytes (key + value + headers), over the limit of ${maxRecordBytes}; raise the pipeline's maxRecordBytes together with the topic's max.message.bytes, or make the output smaller`,
        ),
      );
    }
    // Tracing on: the output carries its send span's context (W3C traceparent header).
    const headers = tracingActive() ? sendSpanHeaders(node.topic, record.headers) : [...record.headers];
    return [{ topic: node.topic, key, value, headers, timestamp: record.timestamp }];
  }

  /**
   * Everything after a predict runs in offset order per partition, not in the order batches
   * complete: a record takes a turn when it reaches the predict (records reach it in offset
   * order), its continuation waits until the turn before was passed, and passes its own once
   * it ran (synchronously, up to the next predict, whose turn comes after every turn taken so
   * far). A record that fails passes its turn on too, once the turn before was passed.
   */
  async function predict(node: TopologyNode & { kind: 'predict' }, record: StreamRecord, path: Path): Promise<ProducerRecord[]> {
    const order = path.order;
    const turn = order.tail;
    const mine = new Turn();
    order.tail = mine;
    // Returned after the finally: passed on once the continuation ran, before the predicts
    // after it finish (those wait for their own turns, which may come after the next
    // continuation's; returning their promise from inside would wait for them: a deadlock).
    let out: Out;
    try {
      const spec = node.spec;
      let inputs;
      let target;
      try {
        target = spec.targetOf(record);
        inputs = spec.toInputs(record);
      } catch (e) {
        throw new StageError(Stage.PREDICT, node.name, e, target?.model ?? spec.model);
      }
      let result;
      const started = performance.now();
      try {
        result = await (batchers.get(node.name) as PredictBatcher).submit(inputs, target, spec.routeKey(record), order.signal);
      } catch (e) {
        throw new StageError(Stage.PREDICT, node.name, e, target?.model ?? spec.model);
      }
      const latencyMs = performance.now() - started;
      const waiting = turn.wait();
      if (waiting) await waiting;
      let value: unknown;
      try {
        value = spec.toValue(record, result.outputs, result.info);
      } catch (e) {
        throw new StageError(Stage.PREDICT, node.name, e, target?.model ?? spec.model);
      }
      const headers = withHeader(
        withHeader(record.headers, MODEL_HEADER, result.info.model),
        MODEL_VERSION_HEADER,
        String(result.info.version),
      );
      out = children(node, { ...record, value, headers }, path);
      const log = spec.predictionLog;
      if (log) {
        const entry = predictionLogRecord(log, record, inputs, result, latencyMs);
        // A registry serde answers with a promise until the log's schema is registered.
        if (out instanceof Promise || entry instanceof Promise) {
          out = Promise.all([out, entry]).then(
            ([o, e]) => [...o, e],
            (e: unknown) => {
              throw e instanceof StageError ? e : new StageError(Stage.SERIALIZE, `${log.topic} (prediction log)`, e);
            },
          );
        } else {
          out = [...out, entry];
        }
      }
    } finally {
      mine.passAfter(turn);
    }
    return out;
  }

  /** A stream-table join with a global table: the row of the record's key, or none. */
  function lookup(node: TopologyNode & { kind: 'lookup' }, record: StreamRecord, path: Path): Out {
    const table = options.globalTables?.(node.table);
    if (!table) throw new InflowError('INTERNAL', `global table "${node.table}" has no store on this instance`);
    const key = user(node, () => node.key(record));
    // A key that does not serialize (an object, NaN) throws SERIALIZATION: a dead letter naming it.
    const row = key === null || key === undefined ? undefined : user(node, () => table.get(key));
    if (row === undefined && node.inner) return [];
    const value = user(node, () => node.joiner(record.value, row, record));
    return children(node, { ...record, value }, path);
  }

  /** Runs a process node's function with its stores; forwards what it returns. */
  function process(node: TopologyNode & { kind: 'process' }, record: StreamRecord, path: Path): Out {
    const { topic, partition, offset } = record.origin;
    const opened = new Map<string, KeyValueStore<unknown, unknown>>();
    const context: ProcessorContext = {
      store<K, V>(name: string): KeyValueStore<K, V> {
        let s = opened.get(name);
        if (!s) {
          const declared = topology.stores.get(name);
          if (!declared || !node.stores.includes(name)) {
            throw new InflowError(
              'FAILED_PRECONDITION',
              `node "${node.name}" uses store "${name}" it did not declare; declared: [${node.stores.join(', ')}] (add it to the node's stores)`,
            );
          }
          s = createKeyValueStore(name, provider.store(path.task.taskId, name, record.origin), declared.serdes);
          opened.set(name, s);
        }
        return s as KeyValueStore<K, V>;
      },
      timestamp: record.timestamp,
      streamTime: path.task.streamTime,
      topic,
      partition,
      offset,
      headers: record.headers,
      taskId: path.task.taskId,
    };
    const forwarded = user(node, () => {
      const out = node.fn(record, context);
      return out ? [...out] : [];
    });
    if (forwarded.length === 0) return [];
    return join(
      forwarded.map((f) =>
        children(
          node,
          { ...record, key: f.key, value: f.value, headers: f.headers ?? record.headers, timestamp: f.timestamp ?? record.timestamp },
          path,
        ),
      ),
    );
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

/** Header a caller may set to correlate a record with its prediction log entry. */
export const REQUEST_ID_HEADER = 'inflow-request-id';

/** JSON of each tensor's rows: arrays nested by shape (a one-row tensor without its batch dimension). */
function tensorsJson(tensors: Readonly<Record<string, Tensor>>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(tensors).map(([name, t]) => [name, rowToJson(t.shape[0] === 1 ? t : { ...t, shape: [1, ...t.shape] }, 'array')]),
  );
}

/** One prediction-log record (schema: src/streams/README.md). */
function predictionLogRecord(
  log: { readonly topic: string; readonly includeInputs: boolean; readonly valueSerde?: AsyncSerde<unknown> },
  record: StreamRecord,
  inputs: Readonly<Record<string, Tensor>>,
  result: RowResult,
  latencyMs: number,
): ProducerRecord | Promise<ProducerRecord> {
  const { topic, partition, offset } = record.origin;
  const k = record.key;
  const key = k === null || k === undefined ? null : Buffer.isBuffer(k) ? k : Buffer.from(typeof k === 'string' ? k : JSON.stringify(k));
  const value = {
    requestId: headerText(record.headers, REQUEST_ID_HEADER) ?? `${topic}/${partition}@${offset}`,
    key: key?.toString('utf8') ?? null,
    model: result.info.model,
    version: result.info.version,
    outputs: tensorsJson(result.outputs),
    ...(log.includeInputs ? { inputs: tensorsJson(inputs) } : {}),
    latencyMs: Math.round(latencyMs * 1000) / 1000,
    timestamp: record.timestamp,
    loggedAt: Date.now(),
    source: { topic, partition, offset: String(offset) },
  };
  // Tracing on: the log record carries its send span's context, like every output.
  const headers: ProducerRecord['headers'] = tracingActive()
    ? sendSpanHeaders(log.topic, [[MODEL_HEADER, Buffer.from(result.info.model)]])
    : [[MODEL_HEADER, Buffer.from(result.info.model)]];
  const entry = (bytes: Buffer | null): ProducerRecord => ({
    topic: log.topic,
    key,
    value: bytes,
    headers,
    timestamp: record.timestamp,
  });
  if (!log.valueSerde) return entry(Buffer.from(JSON.stringify(value)));
  let bytes: Buffer | null | Promise<Buffer | null>;
  try {
    bytes = log.valueSerde.serialize(value);
  } catch (e) {
    throw new StageError(Stage.SERIALIZE, `${log.topic} (prediction log)`, e);
  }
  return bytes instanceof Promise ? bytes.then(entry) : entry(bytes);
}
