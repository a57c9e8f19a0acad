/**
 * Model delivery wired to a running service: the sync materializes versions and label/split
 * changes from the models topic into the repository folder, and each change triggers the
 * repository's refresh at once (not at the watcher's next poll), so a publish reaches traffic
 * in the time of one load + warm-up. Used by `inflow serve` and by pipelines with embedded models.
 */
import type { Registry } from 'prom-client';
import type { KafkaClient } from '../kafka/types.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';
import type { ModelRepository } from '../repository/model-repository.ts';
import { createModelSync, type ModelSync, type ModelSyncEvent } from './model-sync.ts';
import type { SyncPolicy } from './sync-policy.ts';
import { registerModelSyncMetrics } from './sync-metrics.ts';

export interface RepositorySyncOptions {
  readonly client: KafkaClient;
  /** Default `inflow-models`. */
  readonly topic?: string;
  /** The repository folder the service loads from. */
  readonly modelRepository: string;
  /** How long start() waits to catch up before the service starts from what is on disk; default 30 000 ms. */
  readonly startTimeoutMs?: number;
  readonly groupId?: string;
  readonly logger?: Logger;
  /** Trusted keys, executable platforms, staging bound (./sync-policy.ts). */
  readonly policy?: SyncPolicy;
}

export interface RepositorySync {
  readonly sync: ModelSync;
  /** From now on, every installed/deleted version and control change refreshes `repository`. */
  attach(repository: ModelRepository): void;
  /** Shows the sync's refusals and installs (inflow_model_sync_*) in `registry`. */
  registerMetrics(registry: Registry): void;
  close(): Promise<void>;
}

/** Starts syncing the models topic into the folder (bounded wait), before the service loads it. */
export async function startRepositorySync(options: RepositorySyncOptions): Promise<RepositorySync> {
  const log = options.logger ?? silentLogger;
  let repository: ModelRepository | undefined;
  const onEvent = (event: ModelSyncEvent): void => {
    if (event.type !== 'installed' && event.type !== 'deleted' && event.type !== 'control') return;
    log.info(
      { event: event.type, model: event.model, ...('version' in event ? { version: event.version } : {}) },
      'model delivered over Kafka',
    );
    repository?.refresh().catch((error: unknown) => log.error({ err: error }, 'repository refresh after a delivery failed'));
  };
  const sync = createModelSync({
    client: options.client,
    repository: options.modelRepository,
    logger: log,
    onEvent,
    ...(options.topic !== undefined ? { topic: options.topic } : {}),
    ...(options.startTimeoutMs !== undefined ? { startTimeoutMs: options.startTimeoutMs } : {}),
    ...(options.groupId !== undefined ? { groupId: options.groupId } : {}),
    ...options.policy,
  });
  await sync.start();
  return {
    sync,
    attach(r) {
      repository = r;
    },
    registerMetrics: (registry) => registerModelSyncMetrics(registry, sync),
    close: () => sync.close(),
  };
}
