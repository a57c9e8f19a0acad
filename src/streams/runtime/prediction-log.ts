/**
 * The prediction log: one record per prediction (model, version, outputs, optionally inputs,
 * latency, source offset) to a log topic, produced with the record's outputs. Schema:
 * src/streams/README.md.
 */
import { sendSpanHeaders } from '../../observability/kafka-tracing.ts';
import { tracingActive } from '../../observability/tracing.ts';
import type { AsyncSerde } from '../../kafka/serdes.ts';
import type { ProducerRecord } from '../../kafka/types.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import { rowToJson } from '../api/field-mapping.ts';
import { headerText, type StreamRecord } from '../api/stream-record.ts';
import type { RowResult } from './predict-batcher.ts';
import { Stage, StageError } from './stage-error.ts';

/** Header names inflow writes on predicted records. */
export const MODEL_HEADER = 'inflow-model';
export const MODEL_VERSION_HEADER = 'inflow-model-version';

/** Header a caller may set to correlate a record with its prediction log entry. */
export const REQUEST_ID_HEADER = 'inflow-request-id';

/** Where a predict node logs its predictions. */
export interface PredictionLogTarget {
  readonly topic: string;
  readonly includeInputs: boolean;
  readonly valueSerde?: AsyncSerde<unknown>;
}

/** JSON of each tensor's rows: arrays nested by shape (a one-row tensor without its batch dimension). */
function tensorsJson(tensors: Readonly<Record<string, Tensor>>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(tensors).map(([name, t]) => [name, rowToJson(t.shape[0] === 1 ? t : { ...t, shape: [1, ...t.shape] }, 'array')]),
  );
}

/** One prediction-log record (schema: src/streams/README.md); a promise while a registry serde registers its schema. */
export function predictionLogRecord(
  log: PredictionLogTarget,
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
