import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InflowError } from '../errors.ts';
import { stringTensor, type Tensor, tensorStrings } from '../tensor/tensor.ts';
import { createManualClock, type ManualClock } from './clock.ts';
import { type BatcherOptions, type BatchInfo, createDynamicBatcher, type DynamicBatcher } from './dynamic-batcher.ts';

/** One `run` call the test completes by hand. */
interface Call {
  inputs: Record<string, Tensor>;
  outputs: readonly string[] | undefined;
  resolve(outputs: Record<string, Tensor>): void;
  reject(error: unknown): void;
}

/** FP32 tensor [rows, width] from row arrays. */
function fp32(rows: number[][]): Tensor {
  return { dtype: 'FP32', shape: [rows.length, rows[0]?.length ?? 0], data: Float32Array.from(rows.flat()) };
}

/** The "model": y = 2x, row-wise. */
function double(inputs: Record<string, Tensor>): Record<string, Tensor> {
  const x = inputs.x!;
  return { y: { dtype: 'FP32', shape: [...x.shape], data: (x.data as Float32Array).map((v) => v * 2) } };
}

function rowsOf(tensor: Tensor): number[][] {
  const width = tensor.shape[1]!;
  const data = [...(tensor.data as Float32Array)];
  return Array.from({ length: tensor.shape[0]! }, (_, i) => data.slice(i * width, (i + 1) * width));
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function setup(options: Partial<BatcherOptions> = {}): {
  batcher: DynamicBatcher;
  calls: Call[];
  clock: ManualClock;
  batches: BatchInfo[];
} {
  const calls: Call[] = [];
  const batches: BatchInfo[] = [];
  const clock = createManualClock(1_000);
  const batcher = createDynamicBatcher(
    (inputs, { outputs }) => {
      const { promise, resolve, reject } = Promise.withResolvers<Record<string, Tensor>>();
      calls.push({ inputs, outputs, resolve, reject });
      return promise;
    },
    // The fixed-delay mode unless a test asks for the default (`idleDispatch: undefined`): most
    // tests here are about the delay, which the default skips while no batch runs.
    { maxBatchSize: 4, maxDelayMicros: 1_000, maxQueueSize: 16, maxConcurrentBatches: 1, idleDispatch: false, ...options },
    { clock, onBatch: (info) => batches.push(info) },
  );
  return { batcher, calls, clock, batches };
}

function complete(call: Call): void {
  call.resolve(double(call.inputs));
}

describe('dynamic batcher', () => {
  describe('batches when busy, not when idle (the default)', () => {
    it('runs a request that finds no batch in flight at once, without waiting for maxDelayMicros or arming a timer', async () => {
      const { batcher, calls, clock } = setup({ idleDispatch: undefined });
      const a = batcher.submit({ x: fp32([[1]]) });
      assert.equal(clock.pendingTimers, 0);
      await Promise.resolve();
      assert.equal(calls.length, 1, 'dispatched in a microtask, the clock not advanced');
      complete(calls[0]!);
      assert.deepEqual(rowsOf((await a).y!), [[2]]);
    });

    it('still lets requests submitted in the same synchronous run share the idle dispatch', async () => {
      const { batcher, calls } = setup({ idleDispatch: undefined });
      for (const i of [1, 2, 3]) batcher.submit({ x: fp32([[i]]) }).catch(() => {});
      await Promise.resolve();
      assert.equal(calls.length, 1);
      assert.deepEqual(calls[0]!.inputs.x!.shape, [3, 1]);
    });

    it('queues requests that arrive while a batch runs and dispatches them together once the model is idle again', async () => {
      const { batcher, calls, clock } = setup({ idleDispatch: undefined, maxBatchSize: 8 });
      batcher.submit({ x: fp32([[1]]) }).catch(() => {});
      await Promise.resolve();
      assert.equal(calls.length, 1);
      const later = [2, 3, 4].map((i) => {
        clock.advance(100);
        return batcher.submit({ x: fp32([[i]]) });
      });
      await Promise.resolve();
      assert.equal(calls.length, 1, 'the model is busy: they wait (maxConcurrentBatches 1)');
      assert.equal(batcher.queuedRows, 3);
      complete(calls[0]!);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(calls.length, 2, 'dispatched when the batch settled, before their delay ran out');
      assert.deepEqual(calls[1]!.inputs.x!.shape, [3, 1]);
      assert.equal(clock.pendingTimers, 0, 'their delay timer was cancelled');
      complete(calls[1]!);
      assert.deepEqual(
        (await Promise.all(later)).map((o) => rowsOf(o.y!)),
        [[[4]], [[6]], [[8]]],
      );
    });

    it('applies maxDelayMicros to a request that finds a free slot while another batch runs', async () => {
      const { batcher, calls, clock } = setup({ idleDispatch: undefined, maxConcurrentBatches: 2 });
      batcher.submit({ x: fp32([[1]]) }).catch(() => {});
      await Promise.resolve();
      assert.equal(calls.length, 1);
      batcher.submit({ x: fp32([[2]]) }).catch(() => {});
      await Promise.resolve();
      assert.equal(calls.length, 1, 'busy: it waits for company');
      clock.advance(1_000);
      assert.equal(calls.length, 2);
    });
  });

  it('dispatches a full batch as soon as maxBatchSize rows are queued, without waiting for the delay', async () => {
    const { batcher, calls } = setup();
    const results = [1, 2, 3, 4].map((i) => batcher.submit({ x: fp32([[i]]) }));
    batcher.submit({ x: fp32([[5]]) }).catch(() => {});
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0]!.inputs.x!.shape, [4, 1]);
    assert.equal(batcher.queuedRows, 1);
    assert.equal(batcher.inflightBatches, 1);
    complete(calls[0]!);
    const outs = await Promise.all(results);
    assert.deepEqual(
      outs.map((o) => rowsOf(o.y!)),
      [[[2]], [[4]], [[6]], [[8]]],
    );
  });

  it('dispatches a partial batch when the oldest request has waited maxDelayMicros', async () => {
    const { batcher, calls, clock, batches } = setup();
    const a = batcher.submit({ x: fp32([[1]]) });
    clock.advance(400);
    const b = batcher.submit({ x: fp32([[2], [3]]) });
    clock.advance(599);
    assert.equal(calls.length, 0, 'not before the delay of the first request');
    clock.advance(1);
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0]!.inputs.x!.shape, [3, 1]);
    clock.advance(250);
    complete(calls[0]!);
    assert.deepEqual(rowsOf((await a).y!), [[2]]);
    assert.deepEqual(rowsOf((await b).y!), [[4], [6]]);
    assert.deepEqual(batches, [{ rows: 3, requests: 2, queueMicros: [1_000, 600], computeMicros: 250 }]);
  });

  it('with maxDelayMicros 0 batches what is submitted in one synchronous run, in a microtask and without a timer', async () => {
    const { batcher, calls, clock } = setup({ maxDelayMicros: 0, maxBatchSize: 8 });
    const results = [1, 2, 3].map((i) => batcher.submit({ x: fp32([[i]]) }));
    assert.equal(calls.length, 0);
    assert.equal(clock.pendingTimers, 0);
    await Promise.resolve();
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0]!.inputs.x!.shape, [3, 1]);
    complete(calls[0]!);
    assert.equal((await Promise.all(results)).length, 3);
  });

  it('dispatches early when the queue reaches a preferred batch size', () => {
    const { batcher, calls } = setup({ maxBatchSize: 8, preferredBatchSizes: [3, 6] });
    batcher.submit({ x: fp32([[1]]) }).catch(() => {});
    batcher.submit({ x: fp32([[2]]) }).catch(() => {});
    assert.equal(calls.length, 0);
    batcher.submit({ x: fp32([[3]]) }).catch(() => {});
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0]!.inputs.x!.shape, [3, 1]);
  });

  it('takes the largest preferred-size prefix when a slot frees with more rows queued', async () => {
    const { batcher, calls } = setup({ maxBatchSize: 8, preferredBatchSizes: [4], maxConcurrentBatches: 1 });
    const first = [1, 2, 3, 4].map((i) => batcher.submit({ x: fp32([[i]]) }));
    assert.equal(calls.length, 1);
    const rest = [5, 6, 7, 8, 9].map((i) => batcher.submit({ x: fp32([[i]]) }));
    assert.equal(calls.length, 1, 'the only slot is busy');
    complete(calls[0]!);
    await Promise.all(first);
    assert.equal(calls.length, 2);
    assert.deepEqual(rowsOf(calls[1]!.inputs.x!), [[5], [6], [7], [8]]);
    assert.equal(batcher.queuedRows, 1);
    complete(calls[1]!);
    await Promise.all(rest.slice(0, 4));
    rest[4]!.catch(() => {});
  });

  it('rejects a submit that would exceed maxQueueSize with RESOURCE_EXHAUSTED and keeps the queue as it was', async () => {
    const { batcher, calls } = setup({ maxBatchSize: 4, maxQueueSize: 4 });
    batcher.submit({ x: fp32([[1], [2], [3]]) }).catch(() => {});
    await assert.rejects(batcher.submit({ x: fp32([[4], [5]]) }), {
      code: 'RESOURCE_EXHAUSTED',
      message: /3 rows queued \+ 2 > maxQueueSize = 4/,
    });
    assert.equal(batcher.queuedRows, 3);
    assert.equal(calls.length, 0);
    batcher.submit({ x: fp32([[4]]) }).catch(() => {});
    assert.equal(calls.length, 1, 'a request that fits is still taken');
  });

  it('runs at most maxConcurrentBatches batches at once', async () => {
    const { batcher, calls } = setup({ maxBatchSize: 1, maxConcurrentBatches: 2 });
    const results = [1, 2, 3, 4].map((i) => batcher.submit({ x: fp32([[i]]) }));
    assert.equal(calls.length, 2);
    assert.equal(batcher.inflightBatches, 2);
    assert.equal(batcher.queuedRows, 2);
    complete(calls[1]!);
    await results[1];
    assert.equal(calls.length, 3);
    assert.deepEqual(rowsOf(calls[2]!.inputs.x!), [[3]], 'FIFO');
    for (const call of calls.slice()) if (call !== calls[1]) complete(call);
    await flush();
    complete(calls[3]!);
    assert.deepEqual(
      (await Promise.all(results)).map((o) => rowsOf(o.y!)),
      [[[2]], [[4]], [[6]], [[8]]],
    );
  });

  it('rejects a request with more rows than maxBatchSize with INVALID_ARGUMENT', async () => {
    const { batcher, calls } = setup({ maxBatchSize: 2 });
    await assert.rejects(batcher.submit({ x: fp32([[1], [2], [3]]) }), {
      code: 'INVALID_ARGUMENT',
      message: 'request has 3 rows; expected at most maxBatchSize = 2 rows per request',
    });
    assert.equal(calls.length, 0);
  });

  it('rejects inputs of one request with different dim 0, naming them', async () => {
    const { batcher } = setup();
    await assert.rejects(batcher.submit({ a: fp32([[1]]), b: fp32([[1], [2]]) }), {
      code: 'INVALID_ARGUMENT',
      message:
        'inputs "a" and "b" have different batch sizes (dim 0): 1 and 2; expected every input of a request to have the same number of rows',
    });
    await assert.rejects(batcher.submit({ s: { dtype: 'FP32', shape: [], data: new Float32Array(1) } }), {
      code: 'INVALID_ARGUMENT',
      message: /input "s" is a scalar/,
    });
    await assert.rejects(batcher.submit({}), { code: 'INVALID_ARGUMENT', message: /no inputs/ });
    await assert.rejects(batcher.submit({ x: { dtype: 'FP32', shape: [0, 2], data: new Float32Array(0) } }), {
      code: 'INVALID_ARGUMENT',
      message: /0 rows/,
    });
    assert.equal(batcher.queuedRows, 0);
  });

  it('removes a request aborted while queued and rejects it with CANCELLED; its rows are not run', async () => {
    const { batcher, calls, clock } = setup();
    const controller = new AbortController();
    const a = batcher.submit({ x: fp32([[1]]) }, { signal: controller.signal });
    const b = batcher.submit({ x: fp32([[2]]) });
    controller.abort();
    await assert.rejects(a, { code: 'CANCELLED', message: 'request cancelled while queued for batching' });
    assert.equal(batcher.queuedRows, 1);
    clock.advance(1_000);
    assert.equal(calls.length, 1);
    assert.deepEqual(rowsOf(calls[0]!.inputs.x!), [[2]]);
    complete(calls[0]!);
    assert.deepEqual(rowsOf((await b).y!), [[4]]);
  });

  it('cancels its timer when every queued request is aborted', async () => {
    const { batcher, calls, clock } = setup();
    const controller = new AbortController();
    const a = batcher.submit({ x: fp32([[1]]) }, { signal: controller.signal });
    assert.equal(clock.pendingTimers, 1);
    controller.abort();
    await assert.rejects(a, { code: 'CANCELLED' });
    assert.equal(clock.pendingTimers, 0);
    clock.advance(5_000);
    assert.equal(calls.length, 0);
    await batcher.drain();
  });

  it('restarts the delay from the next request when the oldest queued one is aborted', async () => {
    const { batcher, calls, clock } = setup();
    const controller = new AbortController();
    const a = batcher.submit({ x: fp32([[1]]) }, { signal: controller.signal });
    clock.advance(600);
    batcher.submit({ x: fp32([[2]]) }).catch(() => {});
    controller.abort();
    await assert.rejects(a, { code: 'CANCELLED' });
    clock.advance(400);
    assert.equal(calls.length, 0, 'the aborted request no longer sets the deadline');
    clock.advance(600);
    assert.equal(calls.length, 1);
  });

  it('fills a free slot from the group whose oldest request has waited longest', async () => {
    const { batcher, calls, clock } = setup({ maxBatchSize: 2 });
    for (const i of [1, 2]) batcher.submit({ x: fp32([[i]]) }).catch(() => {});
    assert.equal(calls.length, 1, 'the only slot is busy');
    const controller = new AbortController();
    batcher.submit({ x: fp32([[0, 0]]) }, { signal: controller.signal }).catch(() => {});
    clock.advance(100);
    batcher.submit({ x: fp32([[3]]) }).catch(() => {});
    clock.advance(100);
    batcher.submit({ x: fp32([[4, 4]]) }).catch(() => {});
    controller.abort();
    clock.advance(2_000);
    complete(calls[0]!);
    await flush();
    assert.equal(calls.length, 2);
    assert.deepEqual(rowsOf(calls[1]!.inputs.x!), [[3]]);
  });

  it('rejects a request aborted while its batch runs with CANCELLED at once and leaves the others of the batch alone', async () => {
    const { batcher, calls } = setup({ maxBatchSize: 2 });
    const controller = new AbortController();
    const a = batcher.submit({ x: fp32([[1]]) }, { signal: controller.signal });
    const b = batcher.submit({ x: fp32([[2]]) });
    assert.equal(calls.length, 1);
    controller.abort(new Error('client went away'));
    await assert.rejects(a, (error: unknown) => {
      assert.ok(error instanceof InflowError);
      assert.equal(error.code, 'CANCELLED');
      assert.equal(error.message, 'request cancelled while its batch was running');
      return true;
    });
    assert.equal(batcher.inflightBatches, 1, 'the batch itself still runs');
    complete(calls[0]!);
    assert.deepEqual(rowsOf((await b).y!), [[4]]);
    assert.equal(batcher.inflightBatches, 0);
  });

  it('rejects a request whose signal is already aborted without queuing it', async () => {
    const { batcher } = setup();
    await assert.rejects(batcher.submit({ x: fp32([[1]]) }, { signal: AbortSignal.abort() }), { code: 'CANCELLED' });
    assert.equal(batcher.queuedRows, 0);
  });

  it('never batches requests with different dtypes, non-batch dims or output sets, and keeps FIFO within a group', async () => {
    const { batcher, calls, clock } = setup({ maxBatchSize: 8 });
    const int32: Tensor = { dtype: 'INT32', shape: [1, 1], data: Int32Array.of(7) };
    const submits = [
      batcher.submit({ x: fp32([[1]]) }),
      batcher.submit({ x: fp32([[1, 2]]) }),
      batcher.submit({ x: int32 }),
      batcher.submit({ x: fp32([[2]]) }, { outputs: ['y'] }),
      batcher.submit({ x: fp32([[3]]) }),
      batcher.submit({ x: fp32([[3, 4]]) }),
      batcher.submit({ x: fp32([[4]]) }, { outputs: ['y'] }),
    ];
    for (const s of submits) s.catch(() => {});
    clock.advance(1_000);
    await flush();
    // One slot: batches go one at a time, oldest group first.
    while (calls.length < 4) {
      complete(calls.at(-1)!);
      await flush();
    }
    const shapes = calls.map((c) => [c.inputs.x!.dtype, rowsOf(c.inputs.x!), c.outputs]);
    assert.deepEqual(shapes, [
      ['FP32', [[1], [3]], undefined],
      [
        'FP32',
        [
          [1, 2],
          [3, 4],
        ],
        undefined,
      ],
      ['INT32', [[7]], undefined],
      ['FP32', [[2], [4]], ['y']],
    ]);
  });

  it('groups requests by input names whatever their insertion order', () => {
    const { batcher, calls } = setup({ maxBatchSize: 2 });
    batcher.submit({ a: fp32([[1]]), b: fp32([[2]]) }).catch(() => {});
    batcher.submit({ b: fp32([[4]]), a: fp32([[3]]) }).catch(() => {});
    assert.equal(calls.length, 1);
    assert.deepEqual(rowsOf(calls[0]!.inputs.a!), [[1], [3]]);
    assert.deepEqual(rowsOf(calls[0]!.inputs.b!), [[2], [4]]);
  });

  it('gives each caller exactly its own rows of every output, BYTES included', async () => {
    const calls: Array<Record<string, Tensor>> = [];
    const batcher = createDynamicBatcher(
      async (inputs) => {
        calls.push(inputs);
        const names = tensorStrings(inputs.name!);
        return {
          ...double(inputs),
          greeting: stringTensor(
            [names.length],
            names.map((n) => `hi ${n}`),
          ),
        };
      },
      { maxBatchSize: 6, maxDelayMicros: 1_000, maxQueueSize: 6, maxConcurrentBatches: 1 },
      { clock: createManualClock() },
    );
    const a = batcher.submit({ x: fp32([[1, 10]]), name: stringTensor([1], ['a']) });
    const b = batcher.submit({
      x: fp32([
        [2, 20],
        [3, 30],
        [4, 40],
      ]),
      name: stringTensor([3], ['b0', 'b1', 'b2']),
    });
    const c = batcher.submit({
      x: fp32([
        [5, 50],
        [6, 60],
      ]),
      name: stringTensor([2], ['c0', 'c1']),
    });
    assert.equal(calls.length, 1);
    const [ra, rb, rc] = await Promise.all([a, b, c]);
    assert.deepEqual(rowsOf(ra.y!), [[2, 20]]);
    assert.deepEqual(rowsOf(rb.y!), [
      [4, 40],
      [6, 60],
      [8, 80],
    ]);
    assert.deepEqual(rowsOf(rc.y!), [
      [10, 100],
      [12, 120],
    ]);
    assert.deepEqual(tensorStrings(rb.greeting!), ['hi b0', 'hi b1', 'hi b2']);
    assert.deepEqual(rc.greeting!.shape, [2]);
    assert.deepEqual(tensorStrings(rc.greeting!), ['hi c0', 'hi c1']);
  });

  it('rejects every request of a failed batch with the error and leaves other batches alone', async () => {
    const { batcher, calls } = setup({ maxBatchSize: 2, maxConcurrentBatches: 2 });
    const failed = [batcher.submit({ x: fp32([[1]]) }), batcher.submit({ x: fp32([[2]]) })];
    const ok = [batcher.submit({ x: fp32([[3]]) }), batcher.submit({ x: fp32([[4]]) })];
    calls[0]!.reject(new Error('onnxruntime: out of memory'));
    for (const f of failed) {
      await assert.rejects(f, (error: unknown) => {
        assert.ok(error instanceof InflowError);
        assert.equal(error.code, 'INTERNAL');
        assert.equal(error.message, 'onnxruntime: out of memory');
        assert.ok(error.cause instanceof Error);
        return true;
      });
    }
    complete(calls[1]!);
    assert.deepEqual(
      (await Promise.all(ok)).map((o) => rowsOf(o.y!)),
      [[[6]], [[8]]],
    );
  });

  it('rejects the batch with INTERNAL when an output does not have the batch rows', async () => {
    const { batcher, calls } = setup({ maxBatchSize: 2 });
    const results = [batcher.submit({ x: fp32([[1]]) }), batcher.submit({ x: fp32([[2]]) })];
    calls[0]!.resolve({ y: fp32([[1]]) });
    for (const r of results) {
      await assert.rejects(r, {
        code: 'INTERNAL',
        message: 'output "y" has shape [1, 1] for a batch of 2 rows; expected dim 0 = 2 to split it back per request',
      });
    }
  });

  it('drain flushes the queue without waiting for the delay and resolves once nothing is queued or in flight', async () => {
    const { batcher, calls } = setup({ maxBatchSize: 2 });
    const results = [1, 2, 3].map((i) => batcher.submit({ x: fp32([[i]]) }));
    assert.equal(calls.length, 1);
    let drained = false;
    const drain = batcher.drain().then(() => {
      drained = true;
    });
    complete(calls[0]!);
    await flush();
    assert.equal(calls.length, 2, 'the queued request is flushed although its delay has not passed');
    assert.equal(drained, false);
    complete(calls[1]!);
    await drain;
    assert.equal(batcher.queuedRows + batcher.inflightBatches, 0);
    assert.equal((await Promise.all(results)).length, 3);
    await batcher.drain();
  });

  it('close rejects new submits with UNAVAILABLE and still answers what was queued', async () => {
    const { batcher, calls } = setup();
    const queued = batcher.submit({ x: fp32([[1]]) });
    const closed = batcher.close();
    await assert.rejects(batcher.submit({ x: fp32([[2]]) }), { code: 'UNAVAILABLE' });
    assert.equal(calls.length, 1);
    complete(calls[0]!);
    await closed;
    assert.deepEqual(rowsOf((await queued).y!), [[2]]);
  });

  it('rejects bad options with INVALID_CONFIG', () => {
    const run = async (): Promise<Record<string, Tensor>> => ({});
    const base: BatcherOptions = { maxBatchSize: 4, maxDelayMicros: 0, maxQueueSize: 8, maxConcurrentBatches: 1 };
    for (const bad of [
      { maxBatchSize: 0 },
      { maxDelayMicros: -1 },
      { maxQueueSize: 3 },
      { maxConcurrentBatches: 1.5 },
      { preferredBatchSizes: [5] },
    ] as Array<Partial<BatcherOptions>>) {
      assert.throws(() => createDynamicBatcher(run, { ...base, ...bad }), { code: 'INVALID_CONFIG' }, JSON.stringify(bad));
    }
  });

  it('answers every caller with its own rows whatever the sizes, delays and aborts (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ rows: fc.integer({ min: 1, max: 3 }), wait: fc.integer({ min: 0, max: 600 }), abort: fc.boolean() }), {
          minLength: 1,
          maxLength: 12,
        }),
        fc.integer({ min: 1, max: 3 }),
        async (requests, concurrency) => {
          const clock = createManualClock();
          const batcher = createDynamicBatcher(
            async (inputs) => double(inputs),
            {
              maxBatchSize: 4,
              maxDelayMicros: 500,
              maxQueueSize: 64,
              maxConcurrentBatches: concurrency,
            },
            { clock },
          );
          let next = 0;
          const pending = requests.map((r) => {
            const values = Array.from({ length: r.rows }, () => [next++]);
            const controller = new AbortController();
            const promise = batcher.submit({ x: fp32(values) }, { signal: controller.signal });
            if (r.abort) controller.abort();
            clock.advance(r.wait);
            return { values, promise, aborted: r.abort };
          });
          await batcher.drain();
          for (const p of pending) {
            if (p.aborted) await assert.rejects(p.promise, { code: 'CANCELLED' });
            else
              assert.deepEqual(
                rowsOf((await p.promise).y!),
                p.values.map((row) => row.map((v) => v * 2)),
              );
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
