/** The model repository layer. */
export { exampleModelRepository } from './example-models.ts';
export { batchingSchema, MODEL_NAME, type ModelConfig, modelConfigSchema, selectVersions, type VersionPolicy } from './model-config.ts';
export {
  createModelRepository,
  type LoadedVersion,
  type ModelRepository,
  type ModelRepositoryOptions,
  type ModelStatus,
  type PlatformLoader,
  VersionState,
  type VersionStatus,
} from './model-repository.ts';
export { watchRepository, type WatcherOptions } from './repository-watcher.ts';
export { warmupInputs } from './warmup.ts';
