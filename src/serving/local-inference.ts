/**
 * The embedded default wired together: a model repository on disk (hot-reloaded), the router
 * and batchers of an InferenceService, and the runtime's platforms. This is what `inflow serve`,
 * the embedded stream operator and the edge agent start.
 */
import type { FeatureLookup } from './feature-fill.ts';
import type { InferenceMetrics } from '../observability/metrics.ts';
import type { Logger } from '../observability/logger.ts';
import { createModelRepository, type ModelRepository, type PlatformLoader } from '../repository/model-repository.ts';
import { watchRepository } from '../repository/repository-watcher.ts';
import { createInferenceService, type InferenceService } from './inference-service.ts';

export interface LocalInferenceOptions {
  /** The model repository folder. */
  modelRepository: string;
  /** Loads a platform's servable; src/runtime's `loadServable` unless a test injects one. */
  load: PlatformLoader;
  /** Load only these models of the repository (default: every model in it). */
  models?: readonly string[];
  /** Watch + poll for new versions (default true); false loads once. */
  watch?: boolean;
  pollMs?: number;
  settleMs?: number;
  logger?: Logger;
  metrics?: InferenceMetrics;
  random?: () => number;
  /** Reads stored features for models configured with `features:`. */
  featureLookup?: FeatureLookup;
}

/** The service with the repository behind it (status pages, admin, tests that trigger a refresh). */
export type LocalInference = InferenceService & { readonly repository: ModelRepository };

/** Loads the repository (every model's selected versions, warmed up) and returns the service. */
export async function createLocalInference(options: LocalInferenceOptions): Promise<LocalInference> {
  // The repository needs the service (to drain a version) and the service the repository.
  const late: { service?: InferenceService } = {};
  const repository = createModelRepository({
    root: options.modelRepository,
    load: options.load,
    ...(options.models ? { models: options.models } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.settleMs !== undefined ? { settleMs: options.settleMs } : {}),
    beforeUnload: async (loaded) => late.service?.unload(loaded),
  });
  await repository.refresh();
  const service = createInferenceService({
    repository,
    ...(options.metrics ? { metrics: options.metrics } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.random ? { random: options.random } : {}),
    ...(options.featureLookup ? { featureLookup: options.featureLookup } : {}),
  });
  late.service = service;
  const stopWatching =
    options.watch === false
      ? () => undefined
      : watchRepository(repository, options.modelRepository, {
          ...(options.pollMs !== undefined ? { pollMs: options.pollMs } : {}),
          ...(options.logger ? { logger: options.logger } : {}),
        });
  const close = service.close.bind(service);
  return Object.assign(service, {
    repository,
    async close() {
      stopWatching();
      await close();
      await repository.close();
    },
  });
}
