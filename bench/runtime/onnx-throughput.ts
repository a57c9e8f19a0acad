/**
 * Raw throughput of the onnx servable (session in a worker thread) vs onnxruntime-node's
 * session.run on the main thread, for one model at a list of batch sizes — the "limit" every
 * server and stream figure is divided by.
 *
 *   node bench/runtime/onnx-throughput.ts [model=digits-mlp] [seconds per case=2] [intraOpThreads] [batches=1,64] [cases=direct,servable1,servable8]
 *
 * Cases: `direct` awaits session.run on the main thread, one call at a time (what an embedded
 * runtime without workers does; the event loop is blocked while the model runs); `servable c=1`
 * awaits one servable call at a time (every call pays the thread hop); `servable c=8` keeps 8 calls
 * in flight (the hop overlaps with compute). Both sides get the same intraOpThreads (onnxruntime's
 * default when not given: one per physical core, with spinning worker threads). Batch sizes past
 * the first whose single call takes longer than a case's duration are skipped (a 512-image CNN
 * batch would take minutes). Models whose servable cannot load (non-tensor outputs) get the direct
 * case only.
 * Reports calls/s, rows/s, mean latency and the event loop's p99 delay during the case; the last
 * line is the whole result as JSON (bench/run-all.ts reads it).
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
const intraOpThreads = process.argv[4] === undefined || process.argv[4] === '' ? undefined : Number(process.argv[4]);
const batches = (process.argv[5] ?? '1,64').split(',').map(Number);
const cases = new Set((process.argv[6] ?? 'direct,servable1,servable8').split(','));
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

/** Runs `call` with `concurrency` loops for `seconds`, after a warm-up of ~10 % of that (at least 3 calls). */
async function measure(name: string, batch: number, concurrency: number, call: () => Promise<unknown>): Promise<Result> {
  const warmEnd = performance.now() + seconds * 100;
  for (let i = 0; i < 200 && (i < 3 || performance.now() < warmEnd); i++) await call();
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
// Elements per row: the product of every dimension after the batch one ([-1, 3, 128, 128] → 49 152).
const rowShape = inputMeta.shape.slice(1).map(Number);
const features = rowShape.reduce((a, b) => a * b, 1);
let servable: Servable | undefined;
if (cases.has('servable1') || cases.has('servable8')) {
  try {
    servable = await loadServable('onnx', {
      dir,
      model,
      version: 1,
      options: { file: 'model.onnx', ...(intraOpThreads === undefined ? {} : { intraOpThreads }) },
    });
  } catch (e) {
    console.error(`${model}: servable not loaded (${(e as Error).message}); direct session.run only`);
  }
}
const results: Result[] = [];
for (const batch of batches) {
  const data = Float32Array.from({ length: batch * features }, (_, i) => (i * 7) % 17);
  const feeds = { [inputMeta.name]: new ort.Tensor('float32', data, [batch, ...rowShape]) };
  const direct = await measure('direct session.run (main thread)', batch, 1, () => session.run(feeds));
  if (cases.has('direct')) results.push(direct);
  if (servable !== undefined) {
    const s = servable;
    const inputs = { [inputMeta.name]: createTensor('FP32', [batch, ...rowShape], data) };
    if (cases.has('servable1')) results.push(await measure('servable c=1', batch, 1, () => s.run(inputs)));
    if (cases.has('servable8')) results.push(await measure('servable c=8', batch, 8, () => s.run(inputs)));
  }
  if (direct.meanLatencyMicros > seconds * 1e6) {
    console.error(`${model}: one batch-${batch} call takes ${direct.meanLatencyMicros} µs; larger batches skipped`);
    break;
  }
}
await servable?.close();
await session.release();
console.table(results);
console.log(JSON.stringify({ model, seconds, intraOpThreads: intraOpThreads ?? 'default', node: process.version, results }));
