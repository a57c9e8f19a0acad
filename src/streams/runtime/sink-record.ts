/**
 * The output record of a sink node: checks that the serialized key and value are bytes and that
 * the record fits the broker's message size, and attaches the send span's trace context.
 */
import { InflowError } from '../../errors.ts';
import { sendSpanHeaders } from '../../observability/kafka-tracing.ts';
import { tracingActive } from '../../observability/tracing.ts';
import type { ProducerRecord } from '../../kafka/types.ts';
import type { StreamRecord } from '../api/stream-record.ts';
import type { TopologyNode } from '../api/topology.ts';
import type { Out } from './node-runner.ts';
import { Stage, StageError } from './stage-error.ts';

/** Default largest output record, bytes of key + value + headers: under the broker's 1 MiB default message.max.bytes with room for the batch framing. */
export const DEFAULT_MAX_RECORD_BYTES = 1_000_000;

/** Serializes `record` with the sink's serdes and returns the record to produce; a SERIALIZE {@link StageError} on failure. */
export function runSink(node: TopologyNode & { kind: 'sink' }, record: StreamRecord, maxRecordBytes: number): Out {
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
      ([k, v]) => sinkRecord(node, record, k, v, maxRecordBytes),
      (e: unknown) => {
        throw new StageError(Stage.SERIALIZE, node.name, e);
      },
    );
  }
  return sinkRecord(node, record, key, value, maxRecordBytes);
}

/** The record `node` produces for `record` with serialized `key` and `value`; throws a SERIALIZE {@link StageError}. */
function sinkRecord(
  node: TopologyNode & { kind: 'sink' },
  record: StreamRecord,
  key: Buffer | null,
  value: Buffer | null,
  maxRecordBytes: number,
): ProducerRecord[] {
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
