/**
 * Memory over model swaps: drops 50 new versions of an ONNX model into a repository under
 * continuous load (8 callers), refreshing after each, and prints RSS after every 10 swaps.
 * A leak shows as RSS growing with the swap count; a healthy core stays flat after the first
 * few swaps. Also counts failed requests (must be 0).
 *
 *   ORT_DISABLE_TELEMETRY=1 node --expose-gc bench/serving/swap-memory.ts [--model mlp-784] [--swaps 50]
 */
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadServable } from '../../src/runtime/index.ts';
import { createLocalInference } from '../../src/serving/local-inference.ts';
import { createTensor } from '../../src/tensor/tensor.ts';

const { values } = parseArgs({ options: { model: { type: 'string', default: 'mlp-784' }, swaps: { type: 'string', default: '50' } } });
const MODEL = values.model;
const SWAPS = Number(values.swaps);
const src = join(import.meta.dirname, '..', '..', 'models', 'repository', MODEL, '1', 'model.onnx');
const shape = MODEL === 'mlp-784' ? [1, 784] : MODEL === 'cnn-mobilenet' ? [1, 3, 128, 128] : [1, 64];
const root = await mkdtemp(join(tmpdir(), 'inflow-swap-mem-'));
await cp(src, join(root, 'm', '1', 'model.onnx'));
await writeFile(join(root, 'm', 'config.yaml'), 'platform: onnx\nruntime: { file: model.onnx }\n');
const svc = await createLocalInference({ modelRepository: root, load: loadServable, watch: false, settleMs: 0 });
const row = createTensor('FP32', shape, new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5));
const gc = (globalThis as { gc?: () => void }).gc;
const mib = (): string => (process.memoryUsage().rss / 1024 / 1024).toFixed(1);

let stop = false;
let answered = 0;
let failed = 0;
const callers = Array.from({ length: 8 }, async () => {
  while (!stop) {
    try {
      await svc.infer({ model: 'm', inputs: { input: row } });
      answered++;
    } catch {
      failed++;
    }
  }
});
const samples: Array<[number, string]> = [[0, mib()]];
for (let v = 2; v <= SWAPS + 1; v++) {
  await cp(src, join(root, 'm', String(v), 'model.onnx'));
  await svc.repository.refresh();
  await rm(join(root, 'm', String(v - 1)), { recursive: true, force: true });
  if ((v - 1) % 10 === 0) {
    gc?.();
    samples.push([v - 1, mib()]);
  }
}
stop = true;
await Promise.all(callers);
await svc.close();
console.log(
  `\n${MODEL}: ${SWAPS} swaps under 8 concurrent callers; ${answered} requests answered, ${failed} failed; gc ${gc ? 'forced before each sample' : 'not exposed'}\n`,
);
console.log('| swaps | RSS MiB |');
console.log('|---:|---:|');
for (const [n, rss] of samples) console.log(`| ${n} | ${rss} |`);
