/**
 * Dead-letter records: the failed input's original key, value and headers, plus headers that
 * say what went wrong and where (in the spirit of Kafka Streams' KIP-1034 `__streams.errors.*`).
 */
import type { ConsumedRecord, ProducerRecord } from '../../kafka/types.ts';
import type { StageError } from './record-processor.ts';

/** Header names of dead-letter records. */
export const DeadLetterHeader = {
  CODE: 'inflow.error.code',
  MESSAGE: 'inflow.error.message',
  STAGE: 'inflow.error.stage',
  NODE: 'inflow.error.node',
  RETRIABLE: 'inflow.error.retriable',
  TOPIC: 'inflow.source.topic',
  PARTITION: 'inflow.source.partition',
  OFFSET: 'inflow.source.offset',
  MODEL: 'inflow.error.model',
  TIME: 'inflow.error.time',
} as const;

/** Error policy of a pipeline: dead-letter the record (default), skip it, or stop the pipeline. */
export const ErrorPolicy = { DLQ: 'dlq', SKIP: 'skip', FAIL: 'fail' } as const;
export type ErrorPolicy = (typeof ErrorPolicy)[keyof typeof ErrorPolicy];

/** Longest error message kept in a header, characters, the ellipsis of a cut one included. */
const MAX_MESSAGE = 4096;

/** The dead-letter record for `input` that failed with `failure`; `now` is ms since the epoch. */
export function deadLetterRecord(topic: string, input: ConsumedRecord, failure: StageError, now: number): ProducerRecord {
  const message =
    failure.error.message.length > MAX_MESSAGE ? `${failure.error.message.slice(0, MAX_MESSAGE - 1)}…` : failure.error.message;
  const h = (k: string, v: string): [string, Buffer] => [k, Buffer.from(v)];
  return {
    topic,
    key: input.key,
    value: input.value,
    headers: [
      ...input.headers,
      h(DeadLetterHeader.CODE, failure.error.code),
      h(DeadLetterHeader.MESSAGE, message),
      h(DeadLetterHeader.STAGE, failure.stage),
      h(DeadLetterHeader.NODE, failure.node),
      h(DeadLetterHeader.RETRIABLE, String(failure.error.retriable)),
      h(DeadLetterHeader.TOPIC, input.topic),
      h(DeadLetterHeader.PARTITION, String(input.partition)),
      h(DeadLetterHeader.OFFSET, String(input.offset)),
      ...(failure.model ? [h(DeadLetterHeader.MODEL, failure.model)] : []),
      h(DeadLetterHeader.TIME, new Date(now).toISOString()),
    ],
    timestamp: input.timestamp,
  };
}
