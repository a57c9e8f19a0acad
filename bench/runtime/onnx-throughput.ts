/**
 * Raw throughput of the onnx servable (session in a worker thread) vs onnxruntime-node's
 * session.run on the main thread, for one model at a few batch sizes.
 *
 *   node bench/runtime/onnx-throughput.ts [model=digits-mlp] [seconds per case=2] [intraOpThreads]
 *
 * Cases: `direct` awaits session.run on the main thread, one call at a time (what an embedded
 * runtime without workers does; the event loop is blocked while the model runs); `servable c=1`
 * awaits one servable call at a time (every call pays the thread hop); `servable c=N` keeps N calls
 * in flight (the hop overlaps with compute). Both sides get the same intraOpThreads (onnxruntime's
 * default when not given: one per physical core, with spinning worker threads).
 * Reports calls/s, rows/s, mean latency and the event loop's p99 delay during the case.
 */
process.env.ORT_DISABLE_TELEMETRY ??= '1';
process.env.INFLOW_LOG_LEVEL ??= 'warn';

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { loadServable } from '../../src/runtime/index.ts';
import type { Servable } from '../../src/runtime/servable.ts';
import { createTensor } from '../../src/tensor/tensor.ts';

const model = process.argv[2] ?? 'digits-mlp';
const seconds = Number(process.argv[3] ?? 2);
const intraOpThreads = process.argv[4] === undefined ? undefined : Number(process.argv[4]);
const dir = fileURLToPath(new URL(`../../models/repository/${model}/1/`, import.meta.url));

interface Result {
  case: string;
  batch: number;
  calls: number;
  callsPerSecond: number;
  rowsPerSecond: number;
  meanLatencyMicros: number;
  loopDelayP99Micros: number;
}

/** Runs `call` with `concurrency` loops for `seconds` (after a short warm-up). */
async function measure(name: string, batch: number, concurrency: number, call: () => Promise<unknown>): Promise<Result> {
  for (let i = 0; i < 200; i++) await call();
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const end = performance.now() + seconds * 1000;
  let calls = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await call();
        calls++;
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  delay.disable();
  return {
    case: name,
    batch,
    calls,
    callsPerSecond: Math.round(calls / elapsed),
    rowsPerSecond: Math.round((calls * batch) / elapsed),
    meanLatencyMicros: Math.round(((elapsed * 1e6) / calls) * concurrency),
    loopDelayP99Micros: Math.round(delay.percentile(99) / 1000),
  };
}

const session = await ort.InferenceSession.create(
  `${dir}model.onnx`,
  intraOpThreads === undefined ? {} : { intraOpNumThreads: intraOpThreads },
);
const inputMeta = session.inputMetadata[0];
if (!inputMeta?.isTensor) throw new Error('the model has no tensor input');
const features = Number(inputMeta.shape[1]);
const servable: Servable = await loadServable('onnx', {
  dir,
  model,
  version: 1,
  options: { file: 'model.onnx', ...(intraOpThreads === undefined ? {} : { intraOpThreads }) },
});
const results: Result[] = [];
for (const batch of [1, 64]) {
  const data = Float32Array.from({ length: batch * features }, (_, i) => (i * 7) % 17);
  const feeds = { [inputMeta.name]: new ort.Tensor('float32', data, [batch, features]) };
  results.push(await measure('direct session.run (main thread)', batch, 1, () => session.run(feeds)));
  const inputs = { [inputMeta.name]: createTensor('FP32', [batch, features], data) };
  results.push(await measure('servable c=1', batch, 1, () => servable.run(inputs)));
  results.push(await measure('servable c=8', batch, 8, () => servable.run(inputs)));
}
await servable.close();
await session.release();
console.table(results);
console.log(JSON.stringify({ model, seconds, intraOpThreads: intraOpThreads ?? 'default', node: process.version, results }));
