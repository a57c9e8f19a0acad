/** The edge agent: MQTT in/out, embedded inference offline, a durable outbox to Kafka, models synced from Kafka. */
export { type EdgeAgent, type EdgeAgentDeps, type EdgeEvent, type EdgeStatus, startEdgeAgent, topicMatches } from './edge-agent.ts';
export {
  type AlertRuleConfig,
  type EdgeConfig,
  type EdgeConfigInput,
  edgeConfigSchema,
  loadEdgeConfig,
  parseEdgeConfig,
  resolveEdgePaths,
  validateEdgeConfig,
} from './edge-config.ts';
export { createEdgeMetrics, type EdgeMetrics, type MetricsServer, startMetricsServer } from './edge-metrics.ts';
export { createEdgeOutputs, EdgeHeader, type EdgeOutputs, topicFor } from './edge-outputs.ts';
export {
  type AppendOutcome,
  type Completion,
  type EdgeStore,
  type EdgeStoreOptions,
  type EdgeStoreStats,
  type JournalEntry,
  OverflowPolicy,
  openEdgeStore,
  type OutboxRecord,
  type StoredRecord,
} from './edge-store.ts';
export {
  createMessageDecoder,
  createPredictionBuilder,
  type DeviceMessage,
  type Prediction,
  RejectReason,
  reasonOf,
} from './device-message.ts';
export { type ForwarderOptions, type OutboxForwarder, startOutboxForwarder } from './outbox-forwarder.ts';
export { type MqttLink, type MqttLinkOptions, type OpeningMqttLink, openMqttLink } from './mqtt-link.ts';
