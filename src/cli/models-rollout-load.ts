/**
 * The rollout's "does the target load?" check: syncs the models topic into a scratch repository
 * (integrity and trust checked as every follower does), then loads the target version with its
 * runtime once. A version that a follower would refuse or that fails to load never gets traffic.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText, validateConfig } from '../config/load-config.ts';
import { createModelSync } from '../delivery/index.ts';
import { InflowError } from '../errors.ts';
import type { KafkaClient } from '../kafka/types.ts';
import { modelConfigSchema } from '../repository/model-config.ts';
import { loadServable } from '../runtime/index.ts';

/** Throws FAILED_PRECONDITION naming why `model` version `version` cannot serve. */
export async function verifyVersionLoads(client: KafkaClient, topic: string, model: string, version: number): Promise<void> {
  const repo = await mkdtemp(join(tmpdir(), 'inflow-rollout-check-'));
  const refusals: string[] = [];
  const sync = createModelSync({
    client,
    topic,
    repository: repo,
    createTopic: false,
    startTimeoutMs: 60_000,
    onEvent: (e) => {
      if ((e.type === 'rejected' || e.type === 'abandoned') && e.model === model && (e.version === undefined || e.version === version)) {
        refusals.push(e.reason);
      }
    },
  });
  try {
    await sync.start();
    await sync.close();
    const what = `model "${model}" version ${version}`;
    if (refusals.length > 0)
      throw new InflowError('FAILED_PRECONDITION', `${what} would be refused by followers: ${refusals.join('; ')}; routing unchanged`);
    const configPath = join(repo, model, 'config.yaml');
    const config = validateConfig(modelConfigSchema, parseConfigText(await readFile(configPath, 'utf8'), configPath), configPath);
    let servable;
    try {
      servable = await loadServable(config.platform, { dir: join(repo, model, String(version)), model, version, options: config.runtime });
    } catch (error) {
      throw new InflowError('FAILED_PRECONDITION', `${what} does not load: ${InflowError.from(error).message}; routing unchanged`, {
        cause: error,
      });
    }
    await servable.close();
  } finally {
    await sync.close().catch(() => undefined);
    await rm(repo, { recursive: true, force: true });
  }
}
