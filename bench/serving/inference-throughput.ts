/**
 * The inference core's overhead: an MLP through InferenceService with 64 concurrent callers
 * (one row per request), unbatched vs dynamically batched, against raw onnxruntime-node
 * `session.run` on the main thread at the same batch sizes. One process, one run, same model.
 *
 *   ORT_DISABLE_TELEMETRY=1 node bench/serving/inference-throughput.ts [--model digits-mlp] [--requests 20000] [--callers 64]
 */
import { cp, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { loadServable } from '../../src/runtime/index.ts';
import { createLocalInference } from '../../src/serving/local-inference.ts';
import { createTensor } from '../../src/tensor/tensor.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'digits-mlp' },
    requests: { type: 'string', default: '20000' },
    callers: { type: 'string', default: '64' },
  },
});
const MODEL = values.model;
const REQUESTS = Number(values.requests);
const CALLERS = Number(values.callers);
const source = join(import.meta.dirname, '..', '..', 'models', 'repository', MODEL, '1', 'model.onnx');

// --- raw onnxruntime-node on the main thread ----------------------------------------------
const session = await ort.InferenceSession.create(source, { intraOpNumThreads: 1, interOpNumThreads: 1 });
const inputName = session.inputNames[0] as string;
const width = 784 === Number(/(\d+)$/.exec(MODEL)?.[1]) ? 784 : 64;
async function raw(batch: number): Promise<number> {
  const data = new Float32Array(batch * width).fill(0.5);
  const feeds = { [inputName]: new ort.Tensor('float32', data, [batch, width]) };
  for (let i = 0; i < 200; i++) await session.run(feeds); // warm-up
  const calls = Math.max(50, Math.floor(REQUESTS / batch));
  const started = performance.now();
  for (let i = 0; i < calls; i++) await session.run(feeds);
  return (calls * batch) / ((performance.now() - started) / 1000);
}
const rawRates = { 1: await raw(1), 64: await raw(64) };
await session.release();

// --- through InferenceService ------------------------------------------------------------
async function service(batching: string): Promise<{ rate: number; meanBatch: number }> {
  const root = await mkdtemp(join(tmpdir(), 'inflow-bench-'));
  await cp(join(source, '..'), join(root, MODEL, '1'), { recursive: true });
  await writeFile(
    join(root, MODEL, 'config.yaml'),
    `platform: onnx\nbatching: ${batching}\nruntime: { file: model.onnx, intraOpThreads: 1 }\n`,
  );
  const svc = await createLocalInference({ modelRepository: root, load: loadServable, watch: false, settleMs: 0 });
  const row = createTensor('FP32', [1, width], new Float32Array(width).fill(0.5));
  const one = async (): Promise<void> => {
    await svc.infer({ model: MODEL, inputs: { input: row } });
  };
  for (let i = 0; i < 500; i++) await one(); // warm-up
  let left = REQUESTS;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      while (left-- > 0) await one();
    }),
  );
  const rate = REQUESTS / ((performance.now() - started) / 1000);
  const metrics = await svc.metrics.registry.getMetricsAsJSON();
  const value = (name: string): number =>
    (metrics.find((m) => m.name === name)?.values as Array<{ value: number }> | undefined)?.reduce((a, v) => a + v.value, 0) ?? 0;
  const meanBatch = value('inflow_inference_count_total') / value('inflow_inference_exec_count_total');
  await svc.close();
  return { rate, meanBatch };
}
const runs: Array<{ path: string; batching: string; base: 1 | 64 }> = [
  { path: 'unbatched (maxBatchSize 1)', batching: '{ maxBatchSize: 1, maxQueueSize: 4096, maxConcurrentBatches: 1 }', base: 1 },
  { path: 'unbatched, 2 calls in flight', batching: '{ maxBatchSize: 1, maxQueueSize: 4096, maxConcurrentBatches: 2 }', base: 1 },
  {
    path: 'batched (64, delay 0, 1 batch in flight)',
    batching: '{ maxBatchSize: 64, maxDelayMicros: 0, maxConcurrentBatches: 1 }',
    base: 64,
  },
  {
    path: 'batched (64, delay 0, 2 batches in flight)',
    batching: '{ maxBatchSize: 64, maxDelayMicros: 0, maxConcurrentBatches: 2 }',
    base: 64,
  },
  {
    path: 'batched (64, delay 500 µs, 2 batches in flight)',
    batching: '{ maxBatchSize: 64, maxDelayMicros: 500, maxConcurrentBatches: 2 }',
    base: 64,
  },
];
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const lines: string[] = [];
for (const run of runs) {
  const { rate, meanBatch } = await service(run.batching);
  lines.push(
    `| InferenceService, ${run.path} | ${fmt(rate)} | ${meanBatch.toFixed(1)} | ${(rate / rawRates[run.base]).toFixed(2)}× of batch ${run.base} |`,
  );
}
console.log(
  `\n${MODEL}: ${REQUESTS} requests of 1 row, ${CALLERS} concurrent callers, intraOpThreads 1, node ${process.version}, onnxruntime-node ${ort.env.versions.node}\n`,
);
console.log('| path | rows/s | mean batch | vs raw session.run at that batch |');
console.log('|---|---:|---:|---:|');
console.log(`| raw session.run, batch 1, main thread | ${fmt(rawRates[1])} | 1 | 1.00× |`);
console.log(`| raw session.run, batch 64, main thread | ${fmt(rawRates[64])} | 64 | 1.00× |`);
for (const line of lines) console.log(line);
