/**
 * What a follower of the models topic accepts: trusted signing keys, whether executable
 * platforms may come from the topic, and the staging bound. One schema for every config file
 * that follows a topic (pipeline YAML `modelsSync:`, edge YAML `model.modelsSync:`) and one loader
 * for them and the `inflow serve --models-*` flags.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { loadTrustedKeys, type TrustedKey } from './manifest-signing.ts';

/** `modelsSync:` in a config file. */
export const modelsSyncConfigSchema = z.strictObject({
  /** Ed25519 public key files (PEM); when any is given, only versions signed by one of them are installed. */
  trustedKeys: z.array(z.string().min(1)).default([]),
  /** Accept versions whose platform runs code from the version folder (module). Default false. */
  allowExecutablePlatforms: z.boolean().default(false),
  /** Bytes staged for unfinished publishes at most (default 8 GiB). */
  maxStagingBytes: z.number().int().min(1).optional(),
});
export type ModelsSyncConfig = z.input<typeof modelsSyncConfigSchema>;

/** The policy part of ModelSyncOptions. */
export interface SyncPolicy {
  trustedKeys?: readonly TrustedKey[];
  allowExecutablePlatforms?: boolean;
  maxStagingBytes?: number;
}

/** Reads the key files of a `modelsSync:` section (relative paths from `baseDir`). @throws InflowError INVALID_CONFIG for an unreadable or non-Ed25519 key. */
export async function loadSyncPolicy(config: ModelsSyncConfig | undefined, baseDir = '.'): Promise<SyncPolicy> {
  if (!config) return {};
  const c = modelsSyncConfigSchema.parse(config);
  return {
    trustedKeys: await loadTrustedKeys(c.trustedKeys.map((p) => resolve(baseDir, p))),
    allowExecutablePlatforms: c.allowExecutablePlatforms,
    ...(c.maxStagingBytes === undefined ? {} : { maxStagingBytes: c.maxStagingBytes }),
  };
}
