/** inflow's public API (named exports only; each layer's own entry has the rest). */
export { errorCodes, GrpcStatus, InflowError, type ErrorCode } from './errors.ts';
export { kafkaConfigSchema, type KafkaConfig } from './config/kafka-config.ts';
export { loadConfigFile, validateConfig } from './config/load-config.ts';
export { createLogger, type Logger } from './observability/logger.ts';
export { createKafkaClient, createMemoryClient, type KafkaClient } from './kafka/index.ts';
export { type AsyncSerde, bytesSerde, jsonSerde, stringSerde, tensorSerde, type Serde } from './kafka/serdes.ts';
export { createSchemaRegistryClient, type SchemaRegistryConfig } from './kafka/schema-registry/registry-client.ts';
export { createRegistrySerde, SchemaFormat, SubjectNameStrategy } from './kafka/schema-registry/registry-serde.ts';
export { startLocalBroker, type LocalBroker } from './kafka/broker/local-broker.ts';
