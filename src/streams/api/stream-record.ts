/**
 * The record shape operators see: a deserialized key and value with Kafka's headers and
 * timestamp, and where it came from (for the dead-letter headers and end-to-end latency).
 */
import type { KafkaHeader } from '../../kafka/types.ts';

/** Where a record was consumed. */
export interface RecordOrigin {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
}

/** A record inside a pipeline. Operators return new records; they never mutate one. */
export interface StreamRecord<K = unknown, V = unknown> {
  readonly key: K;
  readonly value: V;
  readonly headers: readonly KafkaHeader[];
  /** Milliseconds since the epoch (the input record's timestamp unless an operator changes it). */
  readonly timestamp: number;
  readonly origin: RecordOrigin;
}

/** A key and a value, what `map` and `flatMap` return; `headers`, when given, replace the record's. */
export interface KeyValue<K, V> {
  readonly key: K;
  readonly value: V;
  readonly headers?: readonly KafkaHeader[];
}

/** Sets (replaces) header `name` on a header list; returns a new list. */
export function withHeader(headers: readonly KafkaHeader[], name: string, value: string | Buffer): KafkaHeader[] {
  const out = headers.filter(([k]) => k !== name);
  out.push([name, typeof value === 'string' ? Buffer.from(value) : value]);
  return out;
}

/** The last value of header `name` as UTF-8 text, or undefined. */
export function headerText(headers: readonly KafkaHeader[], name: string): string | undefined {
  for (let i = headers.length - 1; i >= 0; i--) {
    const h = headers[i];
    if (h && h[0] === name) return h[1].toString('utf8');
  }
  return undefined;
}
