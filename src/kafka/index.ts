/** The Kafka layer: narrow interfaces, the real client, the in-process log, serdes, a local broker. */
export type {
  ConsumedRecord,
  ConsumerOptions,
  KafkaAdmin,
  KafkaClient,
  KafkaConsumer,
  KafkaHeader,
  KafkaProducer,
  KafkaTransaction,
  NewTopic,
  PartitionLag,
  PollOptions,
  ProducerOptions,
  ProducerRecord,
  RebalanceListener,
  RecordMetadata,
  RestoreConsumer,
  RestoreConsumerOptions,
  TopicDescription,
  TopicPartition,
  TopicPartitionOffset,
} from './types.ts';
export { Compression, IsolationLevel, OffsetReset, partitionKey } from './types.ts';
export { partitionForKey } from './partitioner.ts';
export { createMemoryClient } from './memory/memory-client.ts';
export { MemoryLog, type MemoryLogOptions } from './memory/memory-log.ts';
export { createKafkaClient, type KafkaClientOptions } from './platformatic/platformatic-client.ts';
export {
  backoffDelay,
  type BackoffOptions,
  type ConnectionChange,
  type ConnectionMonitor,
  type ConnectionReporter,
  ConnectionState,
  createConnectionMonitor,
  isTransient,
  reportTo,
  retryTransient,
} from './connection.ts';
export {
  createSchemaRegistryClient,
  type RegistryHealth,
  type Schema,
  type SchemaReference,
  type SchemaRegistryClient,
  type SchemaRegistryConfig,
  SchemaType,
} from './schema-registry/registry-client.ts';
export {
  createRegistrySerde,
  type RegistrySerdeOptions,
  SchemaFormat,
  SubjectNameStrategy,
  subjectName,
  type WriteSchema,
} from './schema-registry/registry-serde.ts';
