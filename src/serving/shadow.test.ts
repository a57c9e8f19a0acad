/**
 * A shadow version that disagrees: version 2 is another training of digits-mlp (models/variants),
 * mirrored for every request. The agreement counter must count exactly the requests on which the
 * two versions give the same answer, computed here by asking each version directly.
 */
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadServable } from '../runtime/index.ts';
import { createTensor } from '../tensor/tensor.ts';
import { createLocalInference } from './local-inference.ts';

const MODELS = join(import.meta.dirname, '..', '..', 'models');

describe('shadow version', () => {
  it('counts agreement only where the shadow gives the primary’s answer, and observes how far the scores moved', async () => {
    const root = await mkdtemp(join(tmpdir(), 'inflow-shadow-'));
    await mkdir(join(root, 'digits', '1'), { recursive: true });
    await mkdir(join(root, 'digits', '2'), { recursive: true });
    await cp(join(MODELS, 'repository', 'digits-mlp', '1', 'model.onnx'), join(root, 'digits', '1', 'model.onnx'));
    await cp(join(MODELS, 'variants', 'digits-mlp', '2', 'model.onnx'), join(root, 'digits', '2', 'model.onnx'));
    await writeFile(
      join(root, 'digits', 'config.yaml'),
      'platform: onnx\nversionPolicy: { all: true }\nruntime: { file: model.onnx }\nrouting: { split: [{ version: 1, weight: 100 }], shadow: { version: 2, fraction: 1 } }\n',
    );
    const dataset = JSON.parse(await readFile(join(MODELS, 'datasets', 'digits-test.json'), 'utf8')) as { pixels: number[][] };
    const svc = await createLocalInference({ modelRepository: root, load: loadServable, watch: false, settleMs: 0 });
    try {
      const rows = dataset.pixels.slice(0, 200);
      const input = (row: number[]) => ({ input: createTensor('FP32', [1, 64], new Float32Array(row)) });
      const labelOf = async (row: number[], version: number): Promise<bigint> =>
        ((await svc.infer({ model: 'digits', version, inputs: input(row) })).outputs.label?.data as BigInt64Array)[0] as bigint;
      let same = 0;
      for (const row of rows) if ((await labelOf(row, 1)) === (await labelOf(row, 2))) same++;
      assert.ok(same < rows.length, 'the two trainings disagree on some rows (else this test shows nothing)');
      assert.ok(same > rows.length / 2);

      const sum = async (metric: { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> }) =>
        (await metric.get()).values.filter((v) => v.labels.shadow_version === '2').reduce((a, v) => a + v.value, 0);
      const histogram = async (): Promise<{ count: number; total: number }> => {
        const values = (await svc.metrics.shadowAbsDiff.get()).values;
        return {
          count: values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0,
          total: values.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0,
        };
      };
      // Asking version 1 by number above was mirrored too: count from here on.
      await svc.settleShadows();
      const before = {
        requests: await sum(svc.metrics.shadowRequests),
        agreed: await sum(svc.metrics.shadowAgreement),
        diff: await histogram(),
      };

      for (const row of rows) {
        const response = await svc.infer({ model: 'digits', inputs: input(row) });
        assert.equal(response.version, 1, 'the primary answers');
      }
      await svc.settleShadows();
      assert.equal((await sum(svc.metrics.shadowRequests)) - before.requests, rows.length);
      assert.equal(
        (await sum(svc.metrics.shadowAgreement)) - before.agreed,
        same,
        'agreements = requests where both versions give the same label',
      );
      const after = await histogram();
      const count = after.count - before.diff.count;
      const total = after.total - before.diff.total;
      assert.equal(count, rows.length, 'one mean |difference| per mirrored request');
      assert.ok(total / count > 1e-4, `mean |difference| ${total / count}: the shadow's scores differ`);
    } finally {
      await svc.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});
