import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InflowError } from '../../errors.ts';
import { createManualClock } from '../../serving/clock.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import { createPredictBatcher } from './predict-batcher.ts';
import { normalizePredict, type PredictOptions } from '../api/predict-spec.ts';
import { createTestInferencer } from '../testing/test-inferencer.fixture.ts';

const row = (...v: number[]): Record<string, Tensor> => ({ x: { dtype: 'FP32', shape: [1, v.length], data: new Float32Array(v) } });
const T = { model: 'double' };
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function setup(options: Partial<PredictOptions> = {}) {
  const inferencer = createTestInferencer();
  const clock = createManualClock();
  const spec = normalizePredict({
    inferencer,
    model: 'double',
    inputs: { x: { field: 'x' } },
    outputs: { y: { tensor: 'y' } },
    ...options,
  });
  const batcher = createPredictBatcher(spec, clock, {}, () => 1);
  return { inferencer, clock, batcher };
}

describe('predict batcher', () => {
  it('batches the rows queued in one tick, up to maxBatch per call', async () => {
    const { inferencer, batcher } = setup({ maxBatch: 64 });
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => batcher.submit(row(i), T)));
    assert.deepEqual(inferencer.calls, [64, 36]);
    assert.deepEqual([...(results[99]?.outputs.y?.data as Float32Array)], [198]);
    assert.deepEqual(results[0]?.info, { model: 'double', version: 3 });
  });

  it('holds a partial batch until maxDelayMs has passed on the clock, a full one not at all', async () => {
    const { inferencer, clock, batcher } = setup({ maxBatch: 4, maxDelayMs: 5, idleDispatch: false });
    const partial = [batcher.submit(row(1), T), batcher.submit(row(2), T), batcher.submit(row(3), T)];
    await tick();
    assert.deepEqual(inferencer.calls, []);
    clock.advance(4_999);
    await tick();
    assert.deepEqual(inferencer.calls, []);
    clock.advance(1);
    await Promise.all(partial);
    assert.deepEqual(inferencer.calls, [3]);
    await Promise.all([1, 2, 3, 4].map((v) => batcher.submit(row(v), T)));
    assert.deepEqual(inferencer.calls, [3, 4]);
  });

  it('does not hold a lone record for maxDelayMs when no call is in flight (batch when busy, not when idle)', async () => {
    const { inferencer, batcher } = setup({ maxBatch: 4, maxDelayMs: 5 });
    const lone = batcher.submit(row(1), T);
    await tick();
    assert.deepEqual(inferencer.calls, [1], 'called without advancing the clock');
    await lone;
  });

  it('batches what queues while a call runs and sends it when the call returns, before its delay', async () => {
    const { inferencer, batcher } = setup({ maxBatch: 8, maxDelayMs: 5, maxConcurrentBatches: 1 });
    const { promise: gate, resolve: open } = Promise.withResolvers<undefined>();
    inferencer.gate = gate;
    const first = batcher.submit(row(1), T);
    await tick();
    assert.deepEqual(inferencer.calls, [1]);
    const queued = [2, 3, 4].map((v) => batcher.submit(row(v), T));
    await tick();
    assert.deepEqual(inferencer.calls, [1], 'the model is busy: they wait');
    inferencer.gate = undefined;
    open(undefined);
    await Promise.all([first, ...queued]);
    assert.deepEqual(inferencer.calls, [1, 3]);
  });

  it('isolates a poison row: its neighbours get predictions, it gets the model error', async () => {
    const { inferencer, batcher } = setup();
    const settled = await Promise.allSettled([batcher.submit(row(1), T), batcher.submit(row(-1), T), batcher.submit(row(2), T)]);
    assert.deepEqual(inferencer.calls, [3, 1, 1, 1]);
    assert.deepEqual(
      settled.map((s) => s.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.equal(((settled[1] as PromiseRejectedResult).reason as { code: string }).code, 'INVALID_ARGUMENT');
  });

  it('retries retriable errors with exponential backoff on the clock, then gives up with the last error', async () => {
    const { inferencer, clock, batcher } = setup({ retry: { maxAttempts: 3, initialBackoffMs: 10, maxBackoffMs: 1000 } });
    inferencer.failNext(2, 'UNAVAILABLE');
    const ok = batcher.submit(row(1), T);
    await tick();
    assert.deepEqual(inferencer.calls, [1]);
    clock.advance(10_000); // first backoff: 10 ms × random 1
    await tick();
    assert.deepEqual(inferencer.calls, [1, 1]);
    clock.advance(20_000); // second: 20 ms
    await ok;
    assert.deepEqual(inferencer.calls, [1, 1, 1]);

    inferencer.failNext(3, 'UNAVAILABLE');
    const failing = batcher.submit(row(1), T);
    await tick();
    clock.advance(10_000);
    await tick();
    clock.advance(20_000);
    await assert.rejects(failing, { code: 'UNAVAILABLE', message: /injected/ });
  });

  it('never retries a non-retriable error of a single row', async () => {
    const { inferencer, batcher } = setup();
    inferencer.failNext(1, 'NOT_FOUND');
    await assert.rejects(batcher.submit(row(1), T), { code: 'NOT_FOUND' });
    assert.deepEqual(inferencer.calls, [1]);
  });

  it('batches multi-row records by rows, splits their outputs back, and keeps model targets apart', async () => {
    const { inferencer, batcher } = setup({ maxBatch: 4 });
    const two = (a: number, b: number): Record<string, Tensor> => ({ x: { dtype: 'FP32', shape: [2, 1], data: new Float32Array([a, b]) } });
    const results = await Promise.all([
      batcher.submit(two(1, 2), T),
      batcher.submit(two(3, 4), T),
      batcher.submit(two(5, 6), T),
      batcher.submit(two(7, 8), { model: 'double', version: 3 }),
    ]);
    assert.deepEqual(inferencer.calls, [4, 2, 2]);
    assert.deepEqual(
      results.map((r) => [...(r.outputs.y?.data as Float32Array)]),
      [
        [2, 4],
        [6, 8],
        [10, 12],
        [14, 16],
      ],
    );
    assert.deepEqual(results[1]?.outputs.y?.shape, [2, 1]);
  });

  it('keeps rows of different shapes in different calls', async () => {
    const { inferencer, batcher } = setup();
    await Promise.all([batcher.submit(row(1, 2), T), batcher.submit(row(1), T), batcher.submit(row(3, 4), T)]);
    assert.deepEqual(inferencer.calls, [2, 1]);
  });

  it('rejects records without rows, and queued records on close', async () => {
    const { batcher, inferencer } = setup({ maxDelayMs: 50, idleDispatch: false });
    await assert.rejects(batcher.submit({ x: { dtype: 'FP32', shape: [0, 1], data: new Float32Array(0) } }, T), {
      code: 'INVALID_ARGUMENT',
      message: 'input "x" has shape [0, 1]; expected a first (batch) dimension ≥ 1',
    });
    const queued = batcher.submit(row(1), T);
    batcher.close();
    await assert.rejects(queued, { code: 'CANCELLED' });
    assert.deepEqual(inferencer.calls, []);
  });

  it("lets go of a call's deadline and of its link to close() when the call ends", async () => {
    // An AbortSignal.timeout() per call stayed armed for the whole timeout after the call, and an
    // AbortSignal.any() with the batcher's close signal lived until a full GC: at a thousand calls
    // a second they filled the old generation and its mark-compacts set the pipeline's p99.
    const signals: AbortSignal[] = [];
    const inferencer = createTestInferencer();
    const infer = inferencer.infer.bind(inferencer);
    inferencer.infer = (request, options) => {
      if (options?.signal) signals.push(options.signal);
      return infer(request, options);
    };
    const batcher = createPredictBatcher(
      normalizePredict({ inferencer, model: 'double', inputs: { x: { field: 'x' } }, outputs: { y: { tensor: 'y' } } }),
      createManualClock(),
      {},
      () => 1,
    );
    await batcher.submit(row(1), T);
    assert.equal(signals.length, 1);
    batcher.close();
    assert.equal(signals[0]?.aborted, false, 'closing the batcher after the call does not reach the finished call');
  });

  it('aborts a call that outlives timeoutMs, and the record fails with DEADLINE_EXCEEDED', async () => {
    const inferencer = createTestInferencer();
    inferencer.infer = (_request, options) =>
      new Promise((_resolve, reject) => {
        options?.signal?.addEventListener('abort', () => reject(InflowError.from(options.signal?.reason)), { once: true });
      });
    const spec = normalizePredict({
      inferencer,
      model: 'double',
      inputs: { x: { field: 'x' } },
      outputs: { y: { tensor: 'y' } },
      timeoutMs: 1,
      retry: { maxAttempts: 1 },
    });
    const batcher = createPredictBatcher(spec, createManualClock(), {}, () => 1);
    await assert.rejects(batcher.submit(row(1), T), { code: 'DEADLINE_EXCEEDED', message: /took longer than its timeout \(1 ms\)/ });
  });
});
