import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createTensor, stringTensor, type Tensor, tensorStrings } from '../tensor/tensor.ts';
import type { FromWorker, ToWorker, WorkerInit } from './onnx-protocol.ts';
import { loadOnnxServable, MAX_CRASHES_IN_ROW, type SessionWorker, type SessionWorkerEvents } from './onnx-servable.ts';
import { setRuntimeLogger } from './runtime-logger.ts';
import type { ServableContext } from './servable.ts';
import { silentLogger } from '../observability/logger.ts';

setRuntimeLogger(silentLogger);
const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

function context(file: string, options: Record<string, unknown> = {}, dir = FIXTURES): ServableContext {
  return { dir, model: 'm', version: 1, options: { file, ...options } };
}

function fp32(shape: number[], values: number[]): Tensor {
  return createTensor('FP32', shape, Float32Array.from(values));
}

describe('onnx servable (real worker threads)', () => {
  it('reads the signature from the session, with symbolic dims as -1, and computes X·W + b', async () => {
    const servable = await loadOnnxServable(context('linear.onnx'));
    try {
      assert.deepEqual(servable.signature, {
        inputs: [{ name: 'X', dtype: 'FP32', shape: [-1, 4] }],
        outputs: [{ name: 'Y', dtype: 'FP32', shape: [-1, 2] }],
      });
      assert.equal(servable.executionProvider, 'cpu');
      const W = [
        [1, -1],
        [2, 0.5],
        [0, 3],
        [-1, 1],
      ];
      const rows = [
        [1, 2, 3, 4],
        [1, 1, 1, 1],
        [-2, 0.5, 0, 8],
      ];
      const expected = rows.flatMap((r) => [0, 1].map((j) => r.reduce((sum, x, k) => sum + x * (W[k]?.[j] ?? 0), 0) + [0.5, -0.25][j]!));
      const { Y } = await servable.run({ X: fp32([3, 4], rows.flat()) });
      assert.deepEqual(Y?.shape, [3, 2]);
      assert.deepEqual([...(Y?.data as Float32Array)], expected.map(Math.fround));
    } finally {
      await servable.close();
    }
  });

  it('carries INT64 and BYTES (UTF-8) through, and returns only the outputs asked for', async () => {
    const servable = await loadOnnxServable(context('mixed.onnx'));
    try {
      const inputs = {
        ids: createTensor('INT64', [2, 3], new BigInt64Array([1n, -2n, 3n, 2n ** 40n, 0n, 7n])),
        words: stringTensor([3], ['a', 'héllo', '']),
      };
      const all = await servable.run(inputs);
      assert.deepEqual([...(all.doubled?.data as BigInt64Array)], [2n, -4n, 6n, 2n ** 41n, 0n, 14n]);
      assert.deepEqual(tensorStrings(all.same!), ['a', 'héllo', '']);
      const only = await servable.run(inputs, { outputs: ['same'] });
      assert.deepEqual(Object.keys(only), ['same']);
    } finally {
      await servable.close();
    }
  });

  it('turns a ZipMap output into FP32 [N, classes] and reports the class labels', async () => {
    const servable = await loadOnnxServable(context('zipmap.onnx'));
    try {
      assert.deepEqual(servable.signature.outputs, [
        { name: 'label', dtype: 'INT64', shape: [-1] },
        { name: 'probabilities', dtype: 'FP32', shape: [-1, 2] },
      ]);
      assert.deepEqual(servable.classLabels, { probabilities: [0, 1] });
      const { probabilities, label } = await servable.run({ X: fp32([2, 2], [1, 2, 3, 1]) });
      const softmax = (a: number, b: number): number[] => [
        Math.exp(a) / (Math.exp(a) + Math.exp(b)),
        Math.exp(b) / (Math.exp(a) + Math.exp(b)),
      ];
      const expected = [...softmax(1, 2), ...softmax(3, 1)];
      assert.equal(probabilities?.data.length, expected.length);
      for (const [i, p] of [...(probabilities?.data as Float32Array)].entries())
        assert.ok(Math.abs(p - expected[i]!) < 1e-6, `${p} vs ${expected[i]}`);
      assert.deepEqual([...(label?.data as BigInt64Array)], [1n, 0n]);
    } finally {
      await servable.close();
    }
  });

  it('falls back to the next execution provider when one cannot start', async () => {
    const servable = await loadOnnxServable(context('linear.onnx', { executionProviders: ['cuda', 'cpu'] }));
    try {
      // On a machine with CUDA the session gets it; elsewhere the library fails to load and CPU serves.
      assert.ok(['cuda', 'cpu'].includes(servable.executionProvider));
      const { Y } = await servable.run({ X: fp32([1, 4], [0, 0, 0, 0]) });
      assert.deepEqual([...(Y?.data as Float32Array)], [0.5, -0.25]);
    } finally {
      await servable.close();
    }
  });

  it('fails the load, naming the file, for a missing file, a corrupt file, and a sequence output', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inflow-onnx-'));
    try {
      await writeFile(join(dir, 'corrupt.onnx'), 'this is not a protobuf model');
      await assert.rejects(loadOnnxServable(context('missing.onnx', {}, dir)), {
        code: 'INVALID_CONFIG',
        message: /missing\.onnx does not exist/,
      });
      await assert.rejects(loadOnnxServable(context('corrupt.onnx', {}, dir)), {
        code: 'FAILED_PRECONDITION',
        message: /corrupt\.onnx.*[Pp]rotobuf parsing failed/,
      });
      await assert.rejects(loadOnnxServable(context('sequence.onnx')), {
        code: 'FAILED_PRECONDITION',
        message: /sequence\.onnx.*"parts" is not a tensor.*zipmap/,
      });
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  it('rejects inputs that do not fit the signature before they reach the worker', async () => {
    const servable = await loadOnnxServable(context('linear.onnx'));
    try {
      const int = createTensor('INT32', [2, 4], new Int32Array(8));
      await assert.rejects(servable.run({ X: int }), {
        code: 'INVALID_ARGUMENT',
        message: /input "X": expected FP32 \[-1, 4\], got INT32 \[2, 4\]/,
      });
      await assert.rejects(servable.run({ X: fp32([1, 3], [1, 2, 3]) }), {
        code: 'INVALID_ARGUMENT',
        message: /expected FP32 \[-1, 4\], got FP32 \[1, 3\]/,
      });
      await assert.rejects(servable.run({}), { code: 'INVALID_ARGUMENT', message: /input "X" is missing/ });
      await assert.rejects(servable.run({ X: fp32([1, 4], [1, 2, 3, 4]), Z: fp32([1], [1]) }), {
        code: 'INVALID_ARGUMENT',
        message: /unknown input "Z"/,
      });
      await assert.rejects(servable.run({ X: fp32([1, 4], [1, 2, 3, 4]) }, { outputs: ['nope'] }), {
        code: 'INVALID_ARGUMENT',
        message: /unknown output "nope"/,
      });
      await assert.rejects(servable.run({ X: fp32([1, 4], [1, 2, 3, 4]) }, { signal: AbortSignal.abort() }), { code: 'CANCELLED' });
    } finally {
      await servable.close();
    }
  });

  it('serves many concurrent calls across two workers, each call getting its own rows back', async () => {
    const servable = await loadOnnxServable(context('linear.onnx', { workers: 2, intraOpThreads: 1 }));
    try {
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => servable.run({ X: fp32([1, 4], [i, 0, 0, 0]) })));
      assert.deepEqual(
        results.map((r) => [...(r.Y?.data as Float32Array)]),
        Array.from({ length: 20 }, (_, i) => [i + 0.5, -i - 0.25]),
      );
    } finally {
      await servable.close();
    }
    await assert.rejects(servable.run({ X: fp32([1, 4], [0, 0, 0, 0]) }), { code: 'UNAVAILABLE', message: /unloading/ });
  });
});

/** A worker driven by the test: answers nothing on its own except `ready` (unless told to fail). */
class FakeWorker implements SessionWorker {
  readonly posted: ToWorker[] = [];
  exited = false;
  readonly events: SessionWorkerEvents;

  constructor(events: SessionWorkerEvents) {
    this.events = events;
  }

  post(message: ToWorker): void {
    this.posted.push(message);
    if (message.type === 'close') queueMicrotask(() => this.exit(0));
  }

  async terminate(): Promise<void> {
    this.exit(1);
  }

  exit(code: number): void {
    if (this.exited) return;
    this.exited = true;
    this.events.exit(code, undefined);
  }

  runs(): number[] {
    return this.posted.flatMap((m) => (m.type === 'run' ? [m.id] : []));
  }

  reply(id: number, value: number): void {
    const message: FromWorker = { type: 'result', id, outputs: { y: { dtype: 'FP32', shape: [1, 1], data: new Float32Array([value]) } } };
    this.events.message(message);
  }
}

function fakes(loadOk: (n: number) => boolean = () => true): {
  spawn: (init: WorkerInit, events: SessionWorkerEvents) => FakeWorker;
  workers: FakeWorker[];
} {
  const workers: FakeWorker[] = [];
  const spawn = (_init: WorkerInit, events: SessionWorkerEvents): FakeWorker => {
    const worker = new FakeWorker(events);
    const n = workers.push(worker);
    queueMicrotask(() =>
      events.message(
        loadOk(n)
          ? {
              type: 'ready',
              inputs: [{ name: 'x', dtype: 'FP32', shape: [-1, 1] }],
              outputs: [{ name: 'y', dtype: 'FP32', shape: [-1, 1] }],
              provider: 'cpu',
              skipped: [],
              classLabels: {},
            }
          : { type: 'load-error', code: 'FAILED_PRECONDITION', message: 'boom' },
      ),
    );
    return worker;
  };
  return { spawn, workers };
}

/** Lets queued microtasks and promise callbacks run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

describe('onnx servable (dispatch, cancellation, crashes; fake workers)', () => {
  const x = (v: number): Record<string, Tensor> => ({ x: fp32([1, 1], [v]) });
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'inflow-onnx-fake-'));
    await writeFile(join(dir, 'model.onnx'), 'fake');
  });
  after(async () => rm(dir, { recursive: true }));
  const ctx = (options: Record<string, unknown> = {}): ServableContext => ({ dir, model: 'm', version: 1, options });

  it('keeps calls beyond the pipeline depth on the main thread and drops a cancelled one before it is sent', async () => {
    const { spawn, workers } = fakes();
    const servable = await loadOnnxServable(ctx(), spawn);
    const worker = workers[0]!;
    const controller = new AbortController();
    const first = servable.run(x(1));
    const second = servable.run(x(2));
    const third = servable.run(x(3), { signal: controller.signal });
    const fourth = servable.run(x(4));
    assert.equal(worker.runs().length, 2);
    controller.abort();
    await assert.rejects(third, { code: 'CANCELLED' });
    const [id1, id2] = worker.runs();
    worker.reply(id1!, 10);
    assert.deepEqual([...((await first).y?.data ?? [])], [10]);
    // The cancelled third call was never sent: the fourth took its place.
    assert.equal(worker.runs().length, 3);
    worker.reply(id2!, 20);
    worker.reply(worker.runs()[2]!, 40);
    assert.deepEqual([...((await second).y?.data ?? [])], [20]);
    assert.deepEqual([...((await fourth).y?.data ?? [])], [40]);
    await servable.close();
  });

  it('rejects a call cancelled while in the worker at once, and drops its late result', async () => {
    const { spawn, workers } = fakes();
    const servable = await loadOnnxServable(ctx(), spawn);
    const worker = workers[0]!;
    const controller = new AbortController();
    const call = servable.run(x(1), { signal: controller.signal });
    assert.equal(worker.runs().length, 1);
    controller.abort();
    await assert.rejects(call, { code: 'CANCELLED' });
    worker.reply(worker.runs()[0]!, 99);
    const next = servable.run(x(2));
    worker.reply(worker.runs()[1]!, 2);
    assert.deepEqual([...((await next).y?.data ?? [])], [2]);
    await servable.close();
  });

  it('fails the calls of a worker that dies with UNAVAILABLE, restarts it, and serves the next call', async () => {
    const { spawn, workers } = fakes();
    const servable = await loadOnnxServable(ctx(), spawn);
    const call = servable.run(x(1));
    workers[0]!.exit(1);
    await assert.rejects(call, { code: 'UNAVAILABLE', message: /worker exited with code 1.*retried/ });
    assert.equal(workers.length, 2);
    assert.equal(servable.restarts, 1);
    const next = servable.run(x(2));
    await settle();
    workers[1]!.reply(workers[1]!.runs()[0]!, 5);
    assert.deepEqual([...((await next).y?.data ?? [])], [5]);
    assert.equal(servable.broken, undefined);
    await servable.close();
  });

  it(`reports itself broken after ${MAX_CRASHES_IN_ROW + 1} deaths in a row, and when a restart cannot load`, async () => {
    const { spawn, workers } = fakes();
    const servable = await loadOnnxServable(ctx(), spawn);
    for (let i = 0; i <= MAX_CRASHES_IN_ROW; i++) {
      workers.at(-1)!.exit(1);
      await settle();
    }
    assert.match(servable.broken?.message ?? '', /broken/);
    await assert.rejects(servable.run(x(1)), { code: 'UNAVAILABLE', message: /broken/ });
    await servable.close();

    const second = fakes((n) => n === 1);
    const other = await loadOnnxServable(ctx(), second.spawn);
    const queued = other.run(x(1));
    second.workers[0]!.exit(1);
    await assert.rejects(queued, { code: 'UNAVAILABLE' });
    await settle();
    assert.match(other.broken?.message ?? '', /restart failed/);
    await other.close();
  });

  it('spreads calls over its workers, least busy first', async () => {
    const { spawn, workers } = fakes();
    const servable = await loadOnnxServable(ctx({ workers: 2 }), spawn);
    const calls = [1, 2, 3, 4].map((v) => servable.run(x(v)));
    assert.deepEqual(
      workers.map((w) => w.runs().length),
      [2, 2],
    );
    for (const w of workers) for (const id of w.runs()) w.reply(id, id);
    assert.equal((await Promise.all(calls)).length, 4);
    await servable.close();
  });

  it('closes only after the calls it accepted finish, then stops its workers', async () => {
    const { spawn, workers } = fakes();
    const servable = await loadOnnxServable(ctx(), spawn);
    const call = servable.run(x(1));
    let closed = false;
    const closing = servable.close().then(() => (closed = true));
    await settle();
    assert.equal(closed, false);
    assert.ok(!workers[0]!.posted.some((m) => m.type === 'close'));
    workers[0]!.reply(workers[0]!.runs()[0]!, 1);
    await call;
    await closing;
    assert.ok(workers[0]!.posted.some((m) => m.type === 'close'));
    assert.equal(workers[0]!.exited, true);
  });

  it('stops loading when the load is cancelled', async () => {
    const workers: FakeWorker[] = [];
    const spawn = (_init: WorkerInit, events: SessionWorkerEvents): FakeWorker => {
      const worker = new FakeWorker(events);
      workers.push(worker);
      return worker; // never ready
    };
    const controller = new AbortController();
    const loading = loadOnnxServable({ ...ctx(), signal: controller.signal }, spawn);
    controller.abort();
    await assert.rejects(loading, { code: 'CANCELLED' });
    assert.equal(workers[0]!.exited, true);
  });
});
