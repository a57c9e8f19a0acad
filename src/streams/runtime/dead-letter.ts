/**
 * Dead-letter records: the failed input's original key, value and headers, plus headers that
 * say what went wrong and where (in the spirit of Kafka Streams' KIP-1034 `__streams.errors.*`).
 */
import type { ConsumedRecord, ProducerRecord } from '../../kafka/types.ts';
import type { StageError } from './stage-error.ts';

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
  /**
   * Present when the dead letter had to be cut to `maxRecordBytes`: the original value's size,
   * bytes (decimal). The value is then its first bytes only; fetch the original from the source
   * topic/partition/offset headers.
   */
  TRUNCATED: 'inflow.error.truncated',
  /** Present when the original headers did not fit either: how many were left out. */
  HEADERS_DROPPED: 'inflow.error.headers.dropped',
  /** Present when even the key did not fit: the original key's size, bytes (the key is cut to its first bytes). */
  KEY_TRUNCATED: 'inflow.error.key.truncated',
} as const;

/** Error policy of a pipeline: dead-letter the record (default), skip it, or stop the pipeline. */
export const ErrorPolicy = { DLQ: 'dlq', SKIP: 'skip', FAIL: 'fail' } as const;
export type ErrorPolicy = (typeof ErrorPolicy)[keyof typeof ErrorPolicy];

/** Longest error message kept in a header, characters, the ellipsis of a cut one included. */
const MAX_MESSAGE = 4096;

type Header = [string, Buffer];

/** A record's size as the streams runner bounds it: key + value + header names and values, bytes. */
export function recordBytes(key: Buffer | null, value: Buffer | null, headers: readonly (readonly [string, Buffer])[]): number {
  let n = (key?.length ?? 0) + (value?.length ?? 0);
  for (const [k, v] of headers) n += Buffer.byteLength(k) + v.length;
  return n;
}

/**
 * The dead-letter record for `input` that failed with `failure`; `now` is ms since the epoch.
 *
 * It never exceeds `maxRecordBytes` (key + value + headers): a dead letter the broker refuses
 * would stop the pipeline on the same record at every restart (a ~1 MB input that failed made a
 * dead letter of its size plus the error headers, over the broker's max.message.bytes). What does
 * not fit is cut, in this order, each step saying so in a header: the value (to its first bytes,
 * {@link DeadLetterHeader.TRUNCATED}), then the original headers
 * ({@link DeadLetterHeader.HEADERS_DROPPED}), then the key ({@link DeadLetterHeader.KEY_TRUNCATED}),
 * then the error message. The source topic/partition/offset headers always stay, so the original
 * can be fetched. (A limit below the error headers' own size — a few hundred bytes — cannot be met.)
 */
export function deadLetterRecord(
  topic: string,
  input: ConsumedRecord,
  failure: StageError,
  now: number,
  maxRecordBytes: number = Number.POSITIVE_INFINITY,
): ProducerRecord {
  const h = (k: string, v: string): Header => [k, Buffer.from(v)];
  let message = failure.error.message.length > MAX_MESSAGE ? `${failure.error.message.slice(0, MAX_MESSAGE - 1)}…` : failure.error.message;
  const errorHeaders = (): Header[] => [
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
  ];
  let key = input.key;
  let original: Header[] = input.headers.map(([k, v]) => [k, v]);
  const cuts: Header[] = [];
  const size = (value: Buffer | null): number => recordBytes(key, value, [...original, ...errorHeaders(), ...cuts]);
  /** The input's value, cut to what fits beside everything else (with a TRUNCATED header when cut). */
  const fitValue = (): Buffer | null => {
    const whole = input.value;
    if (whole === null || size(whole) <= maxRecordBytes) return whole;
    cuts.push(h(DeadLetterHeader.TRUNCATED, String(whole.length)));
    return whole.subarray(0, Math.max(0, maxRecordBytes - size(null)));
  };

  let value = fitValue();
  if (size(value) > maxRecordBytes && original.length > 0) {
    cuts.length = 0;
    cuts.push(h(DeadLetterHeader.HEADERS_DROPPED, String(original.length)));
    original = [];
    value = fitValue();
  }
  if (size(value) > maxRecordBytes && key !== null) {
    cuts.push(h(DeadLetterHeader.KEY_TRUNCATED, String(key.length)));
    key = key.subarray(0, Math.max(0, key.length - (size(value) - maxRecordBytes)));
  }
  const over = size(value) - maxRecordBytes;
  if (over > 0) {
    // Only a tiny maxRecordBytes gets here: the message goes last (cut by bytes, then to whole characters).
    const bytes = Buffer.from(message);
    message = bytes
      .subarray(0, Math.max(0, bytes.length - over))
      .toString('utf8')
      .replace(/\uFFFD$/, '');
  }
  return { topic, key, value, headers: [...original, ...errorHeaders(), ...cuts], timestamp: input.timestamp };
}
