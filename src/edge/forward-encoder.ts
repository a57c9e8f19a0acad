/**
 * The edge forwarder's record formats: the outbox holds what the agent produced (the prediction
 * and error JSON, the readings' payloads); when a record leaves for Kafka, a topic with a format
 * in `forward.formats` gets the JSON written in that format (Avro, Protobuf or JSON Schema under
 * the Schema Registry). Encoding at send time, not at store time, keeps the agent working
 * offline: the registry is needed only when Kafka is reachable too.
 */
import type { SchemaRegistryClient } from '../kafka/schema-registry/registry-client.ts';
import { jsonSerde } from '../kafka/serdes.ts';
import { topicSerde } from '../kafka/topic-serde.ts';
import type { EdgeConfig } from './edge-config.ts';
import type { StoredRecord } from './edge-store.ts';

const json = jsonSerde();

/**
 * The `encode` of the outbox forwarder for `forward`'s formats: a record of a topic with a
 * format is parsed as JSON and written in it; other records go as stored.
 * @throws (or rejects with) InflowError SERIALIZATION when the record is not JSON or does not fit the schema (the forwarder discards it).
 */
export function forwardEncoder(
  forward: EdgeConfig['forward'],
  client: SchemaRegistryClient,
): (record: StoredRecord) => Buffer | null | Promise<Buffer | null> {
  const registry = { client, baseDir: '.' };
  const serdes = new Map<string, ReturnType<typeof topicSerde>>();
  for (const kind of ['readings', 'predictions', 'errors'] as const) {
    const topic = forward[kind];
    const format = forward.formats?.[kind];
    if (topic !== undefined && format !== undefined) serdes.set(topic, topicSerde(format, { topic, isKey: false }, registry));
  }
  return (record) => {
    const serde = serdes.get(record.topic);
    if (!serde || record.value === null) return record.value;
    return serde.serialize(json.deserialize(record.value));
  };
}
