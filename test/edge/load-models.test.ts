/**
 * The edge agent loads the model its config names, not every model of a shared repository
 * (model.loadAll: true loads them all), and its log lines carry one `component` key. Real
 * Mosquitto, real onnxruntime; no Kafka.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { startEdgeAgent, validateEdgeConfig } from '../../src/edge/index.ts';
import { loadServable } from '../../src/runtime/index.ts';
import { agentConfig, digitsRepository, MODELS, type Mosquitto, startMosquitto } from './edge-harness.ts';

describe('the edge agent with a shared model repository', () => {
  let mosquitto: Mosquitto;
  let repository: string;
  const dirs: string[] = [];

  before(async () => {
    process.env.ORT_DISABLE_TELEMETRY = '1';
    [mosquitto, repository] = await Promise.all([startMosquitto(), digitsRepository()]);
    await cp(join(MODELS, 'repository', 'breast-cancer-gbt'), join(repository, 'breast-cancer-gbt'), { recursive: true });
  });
  after(async () => {
    await mosquitto?.stop();
    for (const dir of [repository, ...dirs]) if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const [loadAll, expected] of [
    [false, ['digits-mlp']],
    [true, ['breast-cancer-gbt', 'digits-mlp']],
  ] as const) {
    it(`loads ${loadAll ? 'every model with model.loadAll: true' : 'only the model it names by default'}`, async () => {
      const outbox = await mkdtemp(join(tmpdir(), 'inflow-edge-outbox-'));
      dirs.push(outbox);
      const config = agentConfig({ mqttUrl: mosquitto.url, repository, outbox });
      const model = { ...(config.model as object), ...(loadAll ? { loadAll } : {}) };
      const loaded: string[] = [];
      const lines: string[] = [];
      const agent = await startEdgeAgent(validateEdgeConfig({ ...config, model }, 'load-models.test'), {
        load: (platform, context) => (loaded.push(context.model), loadServable(platform, context)),
        logger: pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) }),
      });
      try {
        assert.deepEqual(agent.inference.repository.models(), expected);
        assert.deepEqual([...new Set(loaded)].sort(), expected);
      } finally {
        await agent.close();
      }
      // Each line names its component once (the agent's parts used to repeat the key: "edge", then theirs).
      const components = lines.map((l) => [...l.matchAll(/"component":"([^"]*)"/g)].map((m) => m[1]));
      assert.ok(
        components.some((c) => c[0] === 'edge-mqtt'),
        lines.join(''),
      );
      assert.ok(
        components.some((c) => c[0] === 'edge'),
        lines.join(''),
      );
      for (const [i, c] of components.entries()) assert.ok(c.length <= 1, `duplicate component key: ${lines[i]}`);
    });
  }
});
