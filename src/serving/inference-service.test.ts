import assert from 'node:assert/strict';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Servable, ServableContext } from '../runtime/servable.ts';
import { createTensor } from '../tensor/tensor.ts';
import { createLocalInference } from './local-inference.ts';

/** Fake platform: `k.txt` holds k; y = k·x (FP32 [-1, 1]); "slow" versions resolve only when released. */
async function load(_platform: string, ctx: ServableContext): Promise<Servable> {
  const { readFile } = await import('node:fs/promises');
  const k = Number((await readFile(join(ctx.dir, 'k.txt'), 'utf8')).trim());
  return {
    signature: { inputs: [{ name: 'x', dtype: 'FP32', shape: [-1, 1] }], outputs: [{ name: 'y', dtype: 'FP32', shape: [-1, 1] }] },
    async run(inputs) {
      const x = inputs.x?.data as Float32Array;
      return {
        y: createTensor(
          'FP32',
          [x.length, 1],
          x.map((v) => v * k),
        ),
      };
    },
    async close() {},
  };
}

async function repository(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'inflow-svc-'));
  await write(root, files);
  return root;
}
async function write(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), text);
  }
}

const x = (v: number) => ({ x: createTensor('FP32', [1, 1], new Float32Array([v])) });
const y = (outputs: Record<string, { data: unknown }>): number => (outputs.y?.data as Float32Array)[0] as number;

describe('InferenceService', () => {
  it('answers the latest version, a specific version, and a labelled version', async () => {
    const root = await repository({
      'm/config.yaml': 'platform: module\nversionPolicy: { all: true }\nlabels: { stable: 1, canary: 2 }\n',
      'm/1/k.txt': '2',
      'm/2/k.txt': '3',
    });
    const svc = await createLocalInference({ modelRepository: root, load, watch: false, settleMs: 0 });
    assert.equal((await svc.infer({ model: 'm', inputs: x(1) })).version, 2);
    assert.equal(y((await svc.infer({ model: 'm', version: 1, inputs: x(1) })).outputs), 2);
    const labelled = await svc.infer({ model: 'm', label: 'stable', inputs: x(5), id: 'req-1' });
    assert.deepEqual([labelled.version, y(labelled.outputs), labelled.id], [1, 10, 'req-1']);
    await svc.close();
  });

  it('moves a label at run time and back, and refuses a label on a version that is not serving', async () => {
    const root = await repository({
      'm/config.yaml': 'platform: module\nversionPolicy: { all: true }\nlabels: { stable: 1 }\n',
      'm/1/k.txt': '2',
      'm/2/k.txt': '3',
    });
    const svc = await createLocalInference({ modelRepository: root, load, watch: false, settleMs: 0 });
    svc.setLabel('m', 'stable', 2);
    assert.equal((await svc.infer({ model: 'm', label: 'stable', inputs: x(1) })).version, 2);
    assert.deepEqual((await svc.metadata('m')).labels, { stable: 2 });
    assert.throws(() => svc.setLabel('m', 'stable', 9), { code: 'FAILED_PRECONDITION', message: /version 9 of model m is not AVAILABLE/ });
    svc.setLabel('m', 'stable', undefined);
    assert.equal((await svc.infer({ model: 'm', label: 'stable', inputs: x(1) })).version, 1);
    await svc.close();
  });

  it('rejects unknown models, versions, labels, both version and label, and bad inputs with clear errors', async () => {
    const root = await repository({ 'm/config.yaml': 'platform: module\n', 'm/1/k.txt': '2' });
    const svc = await createLocalInference({ modelRepository: root, load, watch: false, settleMs: 0 });
    await assert.rejects(svc.infer({ model: 'nope', inputs: x(1) }), { code: 'NOT_FOUND' });
    await assert.rejects(svc.infer({ model: 'm', version: 7, inputs: x(1) }), { code: 'NOT_FOUND', message: /Specific\(m, 7\)/ });
    await assert.rejects(svc.infer({ model: 'm', label: 'gold', inputs: x(1) }), {
      code: 'INVALID_ARGUMENT',
      message: /Unrecognized servable version label: gold/,
    });
    await assert.rejects(svc.infer({ model: 'm', version: 1, label: 'stable', inputs: x(1) }), {
      code: 'INVALID_ARGUMENT',
      message: /Both model version \(1\) and model version label \(stable\) cannot be supplied/,
    });
    await assert.rejects(svc.infer({ model: 'm', inputs: { z: createTensor('FP32', [1, 1], new Float32Array(1)) } }), {
      code: 'INVALID_ARGUMENT',
      message: /has no input "z"; its inputs are: x/,
    });
    await assert.rejects(svc.infer({ model: 'm', inputs: { x: createTensor('INT32', [1, 1], new Int32Array(1)) } }), {
      code: 'INVALID_ARGUMENT',
      message: /expected FP32 with shape \[-1, 1\], got INT32 \[1, 1\]/,
    });
    await assert.rejects(svc.infer({ model: 'm', inputs: x(1), outputs: ['nope'] }), {
      code: 'INVALID_ARGUMENT',
      message: /no output "nope"/,
    });
    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(svc.infer({ model: 'm', inputs: x(1) }, { signal: aborted.signal }), { code: 'CANCELLED' });
    assert.equal((await svc.infer({ model: 'm', inputs: x(1) })).version, 1, 'still serving after bad requests');
    await svc.close();
  });

  it('answers UNAVAILABLE (retriable) while a configured model has no version ready yet, NOT_FOUND once unloaded on request', async () => {
    const root = await repository({ 'm/config.yaml': 'platform: module\n', 'm/1/k.txt': '2' });
    // The version's files are fresh: with a long settle time it is not loaded yet.
    const svc = await createLocalInference({ modelRepository: root, load, watch: false, settleMs: 60_000 });
    await assert.rejects(svc.infer({ model: 'm', inputs: x(1) }), {
      code: 'UNAVAILABLE',
      message: 'model m has no version ready yet (loading); retry shortly',
    });
    await assert.rejects(svc.infer({ model: 'm', version: 1, inputs: x(1) }), { code: 'NOT_FOUND' });
    await assert.rejects(svc.infer({ model: 'nope', inputs: x(1) }), { code: 'NOT_FOUND' });
    await svc.repository.unload('m');
    await assert.rejects(svc.infer({ model: 'm', inputs: x(1) }), { code: 'NOT_FOUND' });
    await svc.close();
  });

  it('splits keyed traffic within ±2 % of the weights, sticky per key', async () => {
    const root = await repository({
      'm/config.yaml':
        'platform: module\nversionPolicy: { all: true }\nrouting: { split: [{ version: 1, weight: 80 }, { version: 2, weight: 20 }] }\n',
      'm/1/k.txt': '1',
      'm/2/k.txt': '2',
    });
    const svc = await createLocalInference({ modelRepository: root, load, watch: false, settleMs: 0 });
    const first = new Map<string, number>();
    let v2 = 0;
    const N = 10_000;
    for (let i = 0; i < N; i++) {
      const key = `user-${i}`;
      const { version } = await svc.infer({ model: 'm', inputs: x(1) }, { key });
      first.set(key, version);
      if (version === 2) v2++;
    }
    assert.ok(Math.abs(v2 / N - 0.2) <= 0.02, `version 2 got ${((100 * v2) / N).toFixed(2)} % of keys, expected 20 ± 2 %`);
    for (let i = 0; i < 500; i++) {
      const key = `user-${i}`;
      assert.equal((await svc.infer({ model: 'm', inputs: x(1) }, { key })).version, first.get(key), `${key} is sticky`);
    }
    // Changing the split at run time takes effect without a restart.
    svc.setRouting('m', { split: [{ version: 2, weight: 1 }] });
    assert.equal((await svc.infer({ model: 'm', inputs: x(1) }, { key: 'user-1' })).version, 2);
    await svc.close();
  });

  it('mirrors a fraction to a shadow version and records agreement without changing the answer', async () => {
    const root = await repository({
      'm/config.yaml':
        'platform: module\nversionPolicy: { all: true }\nlabels: { stable: 1 }\nrouting: { split: [{ version: 1, weight: 1 }], shadow: { version: 2, fraction: 1 } }\n',
      'm/1/k.txt': '2',
      'm/2/k.txt': '2',
    });
    const svc = await createLocalInference({ modelRepository: root, load, watch: false, settleMs: 0 });
    for (let i = 0; i < 20; i++) assert.equal((await svc.infer({ model: 'm', inputs: x(i) }, { key: `k${i}` })).version, 1);
    await svc.settleShadows();
    const text = await svc.metrics.registry.metrics();
    assert.match(text, /inflow_shadow_requests_total\{model="m",version="1",shadow_version="2"\} 20/);
    assert.match(text, /inflow_shadow_agreement_total\{model="m",version="1",shadow_version="2"\} 20/);
    assert.match(text, /inflow_inference_request_success_total\{model="m",version="1"\} 20/);
    await svc.close();
  });

  it('counts requests for unknown models under one label value, so caller-chosen names do not grow the metrics', async () => {
    const root = await repository({ 'm/config.yaml': 'platform: module\n', 'm/1/k.txt': '1' });
    const svc = await createLocalInference({ modelRepository: root, load, watch: false, settleMs: 0 });
    const before = (await svc.metrics.registry.metrics()).length;
    for (let i = 0; i < 200; i++) {
      const model = `nope-${i}-${'x'.repeat(2000)}`;
      await assert.rejects(svc.infer({ model, inputs: x(1) }), { code: 'NOT_FOUND' });
    }
    await assert.rejects(svc.infer({ model: 'm', version: 7, inputs: x(1) }), { code: 'NOT_FOUND' });
    const text = await svc.metrics.registry.metrics();
    assert.doesNotMatch(text, /nope-/);
    assert.match(text, /inflow_inference_request_failure_total\{model="\(unknown\)",version="",code="NOT_FOUND"\} 200/);
    // A known model keeps its own label, also when the request fails.
    assert.match(text, /inflow_inference_request_failure_total\{model="m",version="",code="NOT_FOUND"\} 1/);
    assert.ok(text.length - before < 1000, `metrics grew by ${text.length - before} bytes`);
    await svc.close();
  });

  it('hands a new version traffic under continuous load with zero failed requests', async () => {
    const root = await repository({ 'm/config.yaml': 'platform: module\n', 'm/1/k.txt': '1' });
    const svc = await createLocalInference({ modelRepository: root, load, watch: false, settleMs: 0 });
    // A real repository refresh runs while 8 callers keep sending; every answer is 1·x or 2·x.
    let stop = false;
    const failures: unknown[] = [];
    const versions = new Set<number>();
    const callers = Array.from({ length: 8 }, async () => {
      while (!stop) {
        try {
          const r = await svc.infer({ model: 'm', inputs: x(3) });
          versions.add(r.version);
          assert.equal(y(r.outputs), 3 * r.version);
        } catch (error) {
          failures.push(error);
        }
        // Yield to I/O like network callers would (a loop of resolved promises starves the event loop).
        await new Promise((resolve) => setImmediate(resolve));
      }
    });
    for (let swap = 2; swap <= 6; swap++) {
      await write(root, { [`m/${swap}/k.txt`]: String(swap) });
      await svc.repository.refresh();
      assert.deepEqual(svc.repository.available('m'), [swap]);
    }
    versions.clear();
    for (let i = 0; i < 1000 && !versions.has(6); i++) await new Promise((resolve) => setImmediate(resolve));
    stop = true;
    await Promise.all(callers);
    assert.deepEqual(failures, []);
    assert.deepEqual([...versions], [6], 'after the last swap only the newest version answers');
    await svc.close();
  });
});
