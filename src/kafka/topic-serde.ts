/**
 * One topic's key or value serde from its format as configuration names it: a serde name
 * (`bytes`, `string`, `json`, `tensor`) or a Schema Registry format (`{ format: avro, … }`,
 * src/config/schema-registry-config.ts). Pipeline sources and sinks, tables, the Kafka-native
 * endpoint, the prediction log and the edge forwarder all resolve their formats here, so a
 * topic is configured the same way wherever it is read or written.
 */
import type { RegistryFormatConfig, SERDE_NAMES } from '../config/schema-registry-config.ts';
import { InflowError } from '../errors.ts';
import type { SchemaRegistryClient } from './schema-registry/registry-client.ts';
import { registrySerdeFromConfig } from './schema-registry/registry-from-config.ts';
import { type AsyncSerde, bytesSerde, jsonSerde, type Serde, stringSerde, tensorSerde } from './serdes.ts';

/** Serde names a topic's key or value may have (the formats without a registry). */
export type SerdeName = (typeof SERDE_NAMES)[number];

/** A topic's key or value format as configured: a serde name or a registry format. */
export type TopicFormat = SerdeName | RegistryFormatConfig;

/** The Schema Registry that registry formats use, and the folder their schema files are relative to. */
export interface TopicRegistry {
  readonly client: SchemaRegistryClient;
  readonly baseDir: string;
}

/** The serde a name stands for. */
export function serdeOf(name: SerdeName): Serde<unknown> {
  switch (name) {
    case 'bytes':
      return bytesSerde;
    case 'string':
      return stringSerde;
    case 'json':
      return jsonSerde();
    case 'tensor':
      return tensorSerde;
  }
}

/**
 * The serde of `topic`'s keys (`isKey`) or values in `format`.
 * @throws InflowError INVALID_CONFIG for a registry format without a registry, or an unreadable schema file.
 */
export function topicSerde(
  format: TopicFormat,
  where: { readonly topic: string; readonly isKey: boolean },
  registry: TopicRegistry | undefined,
): AsyncSerde<unknown> {
  if (typeof format === 'string') return serdeOf(format);
  if (!registry) throw new InflowError('INVALID_CONFIG', `the ${format.format} format needs a schemaRegistry: section (its url)`);
  return registrySerdeFromConfig(registry.client, format, { topic: where.topic, isKey: where.isKey, baseDir: registry.baseDir });
}
