/**
 * The predict batcher's own CPU per record, in-process (no broker, no model): records of one
 * 784-wide FP32 row are submitted in bursts of `--burst` (as a poll admits them), the inferencer
 * answers at once with a [rows, 10] output, and each burst is awaited. What is left is the
 * batcher: queueing, grouping, concatenating the rows into the call's tensor, splitting the
 * output, resolving. CPU from process.cpuUsage() after a warm-up, `--reps` rounds.
 *
 *   node bench/streams/pipeline-batcher.ts [--records 200000] [--burst 500] [--max-batch 64] [--reps 5]
 */
import { parseArgs } from 'node:util';
import { systemClock } from '../../src/serving/clock.ts';
import type { InferRequest, InferResponse, Inferencer } from '../../src/serving/types.ts';
import { normalizePredict } from '../../src/streams/api/predict-spec.ts';
import { createPredictBatcher } from '../../src/streams/runtime/predict-batcher.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '200000' },
    burst: { type: 'string', default: '500' },
    'max-batch': { type: 'string', default: '64' },
    reps: { type: 'string', default: '5' },
  },
});
const N = Number(values.records);
const BURST = Number(values.burst);

const inferencer: Inferencer = {
  async infer(request: InferRequest): Promise<InferResponse> {
    const rows = (request.inputs.input as Tensor).shape[0] ?? 0;
    return {
      model: request.model,
      version: 1,
      outputs: { probabilities: { dtype: 'FP32', shape: [rows, 10], data: new Float32Array(rows * 10) } },
    };
  },
  metadata: () => Promise.reject(new Error('not used')),
  ready: () => Promise.resolve(true),
  close: () => Promise.resolve(),
};
const spec = normalizePredict({
  inferencer,
  model: 'mlp-784',
  inputs: { input: { field: 'pixels' } },
  outputs: { probabilities: { tensor: 'probabilities' } },
  maxBatch: Number(values['max-batch']),
  maxDelayMs: 2,
});
const batcher = createPredictBatcher(spec, systemClock);
const target = spec.targetOf({} as never);
const pixels = new Float32Array(784).fill(0.5);

async function round(n: number): Promise<void> {
  for (let done = 0; done < n; done += BURST) {
    const burst: Promise<unknown>[] = [];
    for (let i = 0; i < BURST; i++) burst.push(batcher.submit({ input: { dtype: 'FP32', shape: [1, 784], data: pixels.slice() } }, target));
    await Promise.all(burst);
  }
}

await round(Math.min(N, 50_000)); // warm-up: JIT
const results: number[] = [];
for (let rep = 0; rep < Number(values.reps); rep++) {
  const c0 = process.cpuUsage();
  await round(N);
  const c = process.cpuUsage(c0);
  results.push((c.user + c.system) / N);
}
batcher.close();
const sorted = [...results].sort((a, b) => a - b);
console.log(
  `batcher CPU µs/record: median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(2)} (${results.map((r) => r.toFixed(2)).join(' / ')}); ${N} records, bursts of ${BURST}, maxBatch ${values['max-batch']}`,
);
