/** Model delivery over Kafka: publish versions and label moves to a compacted topic; sync them into local repositories. */
export {
  type Control,
  chunkKey,
  controlKey,
  DEFAULT_CHUNK_SIZE,
  DEFAULT_MODELS_TOPIC,
  Header,
  type Manifest,
  RejectReason,
  type ManifestFile,
  manifestKey,
  parseKey,
} from './delivery-format.ts';
export {
  createModelSync,
  defaultSyncGroupId,
  type ModelSync,
  type ModelSyncEvent,
  type ModelSyncOptions,
  type ModelSyncStats,
  SyncState,
} from './model-sync.ts';
export { ensureModelsTopic, type ManifestEntry, type ModelsTopicContent, modelPartition, readModelsTopic } from './models-topic.ts';
export {
  type ControlResult,
  type DeleteVersionOptions,
  deleteModelVersion,
  type PublishControlOptions,
  publishControl,
} from './publish-control.ts';
export { type RepositorySync, type RepositorySyncOptions, startRepositorySync } from './repository-sync.ts';
export { type PublishFile, type PublishModelOptions, type PublishResult, publishModel } from './publish-model.ts';
export {
  generateSigningKeyPair,
  keyId,
  loadSigningKey,
  loadTrustedKeys,
  parseSigningKey,
  parseTrustedKey,
  readSignature,
  type Refusal,
  type SigningKey,
  type TrustedKey,
  verifyManifest,
} from './manifest-signing.ts';
export { type ModelState, type RefusedVersion, STATE_DIR } from './model-state.ts';
export { DEFAULT_MAX_STAGING_BYTES } from './record-applier.ts';
export { loadSyncPolicy, type ModelsSyncConfig, modelsSyncConfigSchema, type SyncPolicy } from './sync-policy.ts';
export { registerModelSyncMetrics } from './sync-metrics.ts';
