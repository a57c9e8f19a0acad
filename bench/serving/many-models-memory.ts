/**
 * Memory of one server holding many small models (issue: "10 small models ≤ 300 MB RSS in one
 * server"): loads N copies of a model as N separate models in one repository, runs a few requests
 * on each (so every runtime session and worker is warm), and prints RSS before loading, after
 * loading, and after the requests, plus the per-model increment. Each ONNX version runs in its own
 * worker thread (inference off the event loop), so the increment is one worker + one session.
 *
 *   ORT_DISABLE_TELEMETRY=1 node --expose-gc bench/serving/many-models-memory.ts [--model digits-mlp] [--count 10] [--dist]
 *
 * `--dist` loads the built package (`npm run build` first) as an installed inflow runs it: from the
 * sources every worker thread also strips the types of the worker's modules (Node's type
 * stripping loads its compiler into each thread), which costs ~8 MiB per worker.
 */
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type * as RuntimeModule from '../../src/runtime/index.ts';
import type * as ServingModule from '../../src/serving/local-inference.ts';
import type * as TensorModule from '../../src/tensor/tensor.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'digits-mlp' },
    count: { type: 'string', default: '10' },
    dist: { type: 'boolean', default: false },
  },
});
const from = (module: string): string => new URL(values.dist ? `../../dist/${module}.js` : `../../src/${module}.ts`, import.meta.url).href;
const { loadServable } = (await import(from('runtime/index'))) as typeof RuntimeModule;
const { createLocalInference } = (await import(from('serving/local-inference'))) as typeof ServingModule;
const { createTensor } = (await import(from('tensor/tensor'))) as typeof TensorModule;
const MODEL = values.model;
const COUNT = Number(values.count);
const src = join(import.meta.dirname, '..', '..', 'models', 'repository', MODEL, '1', 'model.onnx');
const shape = MODEL === 'mlp-784' ? [1, 784] : [1, 64];
const gc = (globalThis as { gc?: () => void }).gc;
const rss = (): number => {
  gc?.();
  return process.memoryUsage().rss / 1024 / 1024;
};

const root = await mkdtemp(join(tmpdir(), 'inflow-many-models-'));
for (let i = 0; i < COUNT; i++) {
  await cp(src, join(root, `m${i}`, '1', 'model.onnx'));
  await writeFile(join(root, `m${i}`, 'config.yaml'), 'platform: onnx\nruntime: { file: model.onnx, intraOpThreads: 1 }\n');
}
const before = rss();
const svc = await createLocalInference({ modelRepository: root, load: loadServable, watch: false, settleMs: 0 });
while (svc.repository.models().some((m) => svc.repository.available(m).length === 0)) await new Promise((r) => setTimeout(r, 50));
const loaded = rss();
const row = createTensor('FP32', shape, new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5));
for (let round = 0; round < 50; round++) {
  await Promise.all(Array.from({ length: COUNT }, (_, i) => svc.infer({ model: `m${i}`, inputs: { input: row } })));
}
const used = rss();
console.log(
  `${COUNT} × ${MODEL} in one process (${values.dist ? 'built package' : 'sources'}), node ${process.version}: RSS ${before.toFixed(0)} MiB before, ${loaded.toFixed(0)} MiB loaded, ` +
    `${used.toFixed(0)} MiB after 50 requests each; ${((used - before) / COUNT).toFixed(1)} MiB per model`,
);
await svc.close();
await rm(root, { recursive: true, force: true });
