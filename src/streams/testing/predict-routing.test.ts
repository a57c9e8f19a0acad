import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { jsonSerde, stringSerde } from '../../kafka/serdes.ts';
import { loadServable } from '../../runtime/index.ts';
import { createLocalInference } from '../../serving/local-inference.ts';
import { createStreamsBuilder } from '../api/streams-builder.ts';
import { createTopologyTestDriver } from './topology-test-driver.ts';

const serdes = { key: stringSerde, value: jsonSerde<Record<string, unknown>>() };
const MODEL = join(import.meta.dirname, '..', '..', '..', 'models', 'repository', 'digits-mlp', '1', 'model.onnx');

describe('predict with the embedded model router', () => {
  it('routes a weighted canary sticky by record key, batches per version and mirrors a shadow', async () => {
    const root = await mkdtemp(join(tmpdir(), 'inflow-routing-'));
    await cp(MODEL, join(root, 'digits', '1', 'model.onnx'));
    await cp(MODEL, join(root, 'digits', '2', 'model.onnx'));
    await writeFile(
      join(root, 'digits', 'config.yaml'),
      [
        'platform: onnx',
        'versionPolicy: { all: true }',
        'runtime: { file: model.onnx }',
        'routing: { split: [{ version: 1, weight: 90 }, { version: 2, weight: 10 }], shadow: { version: 2, fraction: 0.5 } }',
        '',
      ].join('\n'),
    );
    const inference = await createLocalInference({ modelRepository: root, load: loadServable, watch: false, settleMs: 0 });
    const b = createStreamsBuilder();
    b.stream('in', serdes)
      .predict({
        inferencer: inference,
        model: 'digits',
        inputs: { input: { field: 'pixels', shape: [64] } },
        outputs: { label: { tensor: 'label' } },
        maxBatch: 32,
      })
      .to('out', serdes);
    const driver = await createTopologyTestDriver(b.build(), { partitions: 3 });
    try {
      const keys = 200;
      for (let round = 0; round < 3; round++) {
        for (let k = 0; k < keys; k++) await driver.pipe('in', `user-${k}`, { pixels: new Array(64).fill((k % 16) + round) }, { serdes });
      }
      await driver.flush();
      const out = await driver.read('out', serdes);
      assert.equal(out.length, 3 * keys);
      const versionOf = new Map<string, string>();
      for (const r of out) {
        const v = r.headers['inflow-model-version'] as string;
        const before = versionOf.get(r.key as string);
        assert.ok(before === undefined || before === v, `key ${String(r.key)} moved from version ${before} to ${v}`);
        versionOf.set(r.key as string, v);
      }
      const canary = [...versionOf.values()].filter((v) => v === '2').length / keys;
      assert.ok(canary > 0.04 && canary < 0.18, `canary share ${canary} is not near 10 %`);
      await inference.settleShadows();
      const mirrored = (await inference.metrics.shadowRequests.get()).values.reduce((a, v) => a + v.value, 0);
      // Keys on version 1 (≈90 %) are mirrored to 2 with probability 0.5, per key: ≈ 0.45 × 600 rows.
      assert.ok(mirrored > 0, 'no record was mirrored to the shadow version');
      const agreement = (await inference.metrics.shadowAgreement.get()).values.reduce((a, v) => a + v.value, 0);
      assert.ok(agreement > 0, 'the shadow (same weights) should agree with the primary');
    } finally {
      await driver.close();
      await inference.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});
