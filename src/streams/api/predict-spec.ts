/**
 * Options of the `predict` operator and their normalized form. The operator takes any
 * {@link Inferencer} (embedded InferenceService, remote client, …): which one is configuration.
 */
import { InflowError } from '../../errors.ts';
import type { AsyncSerde } from '../../kafka/serdes.ts';
import type { Inferencer, ResolvedRoute } from '../../serving/types.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import { compileInputMapping, compileOutputMapping, type InputField, type OutputField } from './field-mapping.ts';
import type { StreamRecord } from './stream-record.ts';

/** Which version answered a record (also written to the output headers). */
export interface PredictionInfo {
  readonly model: string;
  readonly version: number;
}

/** The model (and version or label) a record goes to. */
export interface PredictTarget {
  readonly model: string;
  readonly version?: number;
  readonly label?: string;
  /**
   * A route already resolved with the inferencer's `route()` (the Kafka-native endpoint routes
   * each request to type it by the answering version's signature): the call goes to
   * `route.version` and is mirrored to `route.shadow` when set, as the service would have routed
   * it. Without it, a target with a version is that version alone (never mirrored).
   */
  readonly route?: ResolvedRoute;
}

/** Retries of retriable inference errors (UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED). */
export interface PredictRetry {
  /** Attempts in all, the first included; default 8. */
  readonly maxAttempts?: number;
  /** Default 50 ms; doubles per attempt with full jitter. */
  readonly initialBackoffMs?: number;
  /** Default 5000 ms. */
  readonly maxBackoffMs?: number;
}

/** Options of {@link KStream.predict}. */
export interface PredictOptions<V = unknown, R = unknown> {
  readonly inferencer: Inferencer;
  /** The model; a function picks the target per record (model and version from headers, say). */
  readonly model: string | ((record: StreamRecord<unknown, V>) => PredictTarget);
  readonly version?: number;
  readonly label?: string;
  /**
   * Model inputs of one record: a field mapping (one row), or a function returning tensors whose
   * first dimension is the record's row count (usually 1).
   */
  readonly inputs: ((record: StreamRecord<unknown, V>) => Record<string, Tensor>) | Readonly<Record<string, InputField>>;
  /**
   * The output value from the record and its outputs (batch dim 1): a function, or a field
   * mapping merged into the input value (an object) — `{ label: { tensor: 'label' } }`.
   */
  readonly outputs:
    | ((record: StreamRecord<unknown, V>, outputs: Readonly<Record<string, Tensor>>, info: PredictionInfo) => R)
    | Readonly<Record<string, OutputField>>;
  /** With a field mapping: keep the input value's fields (default true). */
  readonly keepInput?: boolean;
  /** Only these model outputs are requested (default: those the mapping names, or all). */
  readonly requestOutputs?: readonly string[];
  /** Records per inference call, across partitions; default 64. */
  readonly maxBatch?: number;
  /** How long a partial batch waits for more records, ms; default 0 (batch what queued while the model was busy). */
  readonly maxDelayMs?: number;
  /** Inference calls in flight at once; default 2 (one computing, one being filled). */
  readonly maxConcurrentBatches?: number;
  /** With no inference call in flight, a record does not wait out `maxDelayMs` (batch when busy, not when idle); default true. */
  readonly idleDispatch?: boolean;
  /** Deadline of one inference call, ms; default 30 000. */
  readonly timeoutMs?: number;
  readonly retry?: PredictRetry;
  /**
   * The key a weighted split routes by (sticky: a key always reaches the same version); default
   * the record key as text. Only inferencers that route locally use it (the embedded service).
   */
  readonly routeKey?: (record: StreamRecord<unknown, V>) => string | undefined;
  /**
   * Also write one JSON record per prediction to `topic` for monitoring (schema in
   * src/streams/README.md); in exactly-once mode it is part of the same transaction.
   */
  /** `valueSerde`: how the log entries are written (e.g. a registry format); default JSON. */
  readonly predictionLog?: { readonly topic: string; readonly includeInputs?: boolean; readonly valueSerde?: AsyncSerde<unknown> };
  /** Name for describe() and metrics; default the inferencer's kind. */
  readonly inferencerName?: string;
}

/** Normalized predict options. */
export interface PredictSpec {
  readonly inferencer: Inferencer;
  readonly inferencerName: string;
  /** The model name for describe(); `(per record)` when `targetOf` decides. */
  readonly model: string;
  readonly version?: number;
  readonly label?: string;
  readonly targetOf: (record: StreamRecord) => PredictTarget;
  readonly toInputs: (record: StreamRecord) => Record<string, Tensor>;
  readonly toValue: (record: StreamRecord, outputs: Readonly<Record<string, Tensor>>, info: PredictionInfo) => unknown;
  readonly routeKey: (record: StreamRecord) => string | undefined;
  readonly predictionLog?: { readonly topic: string; readonly includeInputs: boolean; readonly valueSerde?: AsyncSerde<unknown> };
  readonly requestOutputs?: readonly string[];
  readonly maxBatch: number;
  readonly maxDelayMs: number;
  readonly maxConcurrentBatches: number;
  readonly idleDispatch: boolean;
  readonly timeoutMs: number;
  readonly retry: Required<PredictRetry>;
}

/** The record key as text: strings as they are, bytes as UTF-8, numbers in decimal; null has none. */
function defaultRouteKey(record: StreamRecord): string | undefined {
  const k = record.key;
  if (k === null || k === undefined) return undefined;
  if (typeof k === 'string') return k;
  if (Buffer.isBuffer(k)) return k.toString('utf8');
  if (typeof k === 'number' || typeof k === 'bigint') return String(k);
  return JSON.stringify(k);
}

function positiveInt(value: number | undefined, fallback: number, what: string): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1) throw new InflowError('INVALID_CONFIG', `predict ${what} must be an integer ≥ 1, got ${v}`);
  return v;
}

/** Validates and normalizes {@link PredictOptions}. */
export function normalizePredict(options: PredictOptions): PredictSpec {
  if (!options.model) throw new InflowError('INVALID_CONFIG', 'predict needs a model name');
  if (options.version !== undefined && options.label !== undefined) {
    throw new InflowError(
      'INVALID_CONFIG',
      `predict on "${typeof options.model === 'string' ? options.model : '(per record)'}": set a version or a label, not both`,
    );
  }
  const model = options.model;
  let targetOf: PredictSpec['targetOf'];
  if (typeof model === 'function') {
    if (options.version !== undefined || options.label !== undefined) {
      throw new InflowError(
        'INVALID_CONFIG',
        'predict: with a per-record model function, return version or label from it instead of setting them',
      );
    }
    targetOf = model;
  } else {
    const fixed: PredictTarget = {
      model,
      ...(options.version !== undefined ? { version: options.version } : {}),
      ...(options.label !== undefined ? { label: options.label } : {}),
    };
    targetOf = () => fixed;
  }
  const maxDelayMs = options.maxDelayMs ?? 0;
  if (!(maxDelayMs >= 0)) throw new InflowError('INVALID_CONFIG', `predict maxDelayMs must be ≥ 0, got ${maxDelayMs}`);
  const inputs = options.inputs;
  const toInputs =
    typeof inputs === 'function'
      ? inputs
      : (
          (map) => (r: StreamRecord) =>
            map(r.value)
        )(compileInputMapping(inputs));
  const outputs = options.outputs;
  let toValue: PredictSpec['toValue'];
  let named: readonly string[] | undefined;
  if (typeof outputs === 'function') {
    toValue = outputs;
  } else {
    const map = compileOutputMapping(outputs, options.keepInput ?? true);
    toValue = (r, o) => map(r.value, o);
    named = [...new Set(Object.values(outputs).map((o) => o.tensor))];
  }
  const requestOutputs = options.requestOutputs ?? named;
  return {
    inferencer: options.inferencer,
    inferencerName: options.inferencerName ?? 'inferencer',
    model: typeof model === 'string' ? model : '(per record)',
    targetOf,
    ...(options.version !== undefined ? { version: options.version } : {}),
    ...(options.label !== undefined ? { label: options.label } : {}),
    toInputs,
    toValue,
    routeKey: options.routeKey ?? defaultRouteKey,
    ...(options.predictionLog
      ? {
          predictionLog: {
            topic: options.predictionLog.topic,
            includeInputs: options.predictionLog.includeInputs ?? false,
            ...(options.predictionLog.valueSerde ? { valueSerde: options.predictionLog.valueSerde } : {}),
          },
        }
      : {}),
    ...(requestOutputs ? { requestOutputs } : {}),
    maxBatch: positiveInt(options.maxBatch, 64, 'maxBatch'),
    maxDelayMs,
    maxConcurrentBatches: positiveInt(options.maxConcurrentBatches, 2, 'maxConcurrentBatches'),
    idleDispatch: options.idleDispatch ?? true,
    timeoutMs: positiveInt(options.timeoutMs, 30_000, 'timeoutMs'),
    retry: {
      maxAttempts: positiveInt(options.retry?.maxAttempts, 8, 'retry.maxAttempts'),
      initialBackoffMs: options.retry?.initialBackoffMs ?? 50,
      maxBackoffMs: options.retry?.maxBackoffMs ?? 5000,
    },
  };
}
