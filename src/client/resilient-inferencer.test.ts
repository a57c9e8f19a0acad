import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InflowError } from '../errors.ts';
import { createManualClock, type ManualClock } from '../serving/clock.ts';
import type { InferRequest, InferResponse, Inferencer, ModelMetadata } from '../serving/types.ts';
import { createTensor } from '../tensor/tensor.ts';
import { backoffMs, createResilientInferencer, DEFAULT_RETRY, type ResilienceOptions } from './resilient-inferencer.ts';

const MS = 1000;
const REQUEST: InferRequest = { model: 'm', inputs: { x: createTensor('FP32', [1, 2], new Float32Array([1, 2])) } };

function answer(version: number): InferResponse {
  return { model: 'm', version, outputs: { y: createTensor('FP32', [1], new Float32Array([version])) } };
}

/** A fake transport: each call takes the next scripted outcome (the last one repeats). */
function scripted(outcomes: (InferResponse | InflowError)[]): Inferencer & { calls: number; closed: boolean } {
  const fake = {
    calls: 0,
    closed: false,
    async infer(_request: InferRequest, options?: { signal?: AbortSignal }) {
      if (options?.signal?.aborted) throw new InflowError('CANCELLED', 'cancelled');
      const outcome = outcomes[Math.min(fake.calls, outcomes.length - 1)] as InferResponse | InflowError;
      fake.calls++;
      if (outcome instanceof InflowError) throw outcome;
      return outcome;
    },
    async metadata(model: string): Promise<ModelMetadata> {
      fake.calls++;
      const outcome = outcomes[Math.min(fake.calls - 1, outcomes.length - 1)];
      if (outcome instanceof InflowError) throw outcome;
      return { name: model, platform: 'onnx', versions: [1], labels: {}, inputs: [], outputs: [] };
    },
    async ready() {
      return true;
    },
    async close() {
      fake.closed = true;
    },
  };
  return fake;
}

const unavailable = (): InflowError => new InflowError('UNAVAILABLE', 'connect ECONNREFUSED');

/** Lets pending promise callbacks run until a backoff timer is armed (event-loop turns, no time passes). */
async function untilTimer(clock: ManualClock): Promise<void> {
  for (let i = 0; i < 100 && clock.pendingTimers === 0; i++) await new Promise(setImmediate);
  assert.ok(clock.pendingTimers > 0, 'a backoff timer is armed');
}

function options(clock: ManualClock, extra: Partial<ResilienceOptions> = {}): ResilienceOptions {
  return { name: 'http://server:8501', clock, random: () => 0.5, ...extra };
}

describe('backoff', () => {
  it('grows by the multiplier up to maxBackoffMs and scales it by the jitter (full jitter)', () => {
    const policy = { ...DEFAULT_RETRY, initialBackoffMs: 20, maxBackoffMs: 100, multiplier: 2 };
    assert.deepEqual(
      [1, 2, 3, 4].map((retry) => backoffMs(retry, policy, () => 1)),
      [20, 40, 80, 100],
    );
    assert.equal(
      backoffMs(3, policy, () => 0.25),
      20,
    );
    assert.equal(
      backoffMs(3, policy, () => 0),
      0,
    );
  });
});

describe('resilient inferencer', () => {
  it('retries a retriable error after the jittered backoff and answers from the remote', async () => {
    const clock = createManualClock();
    const inner = scripted([unavailable(), answer(1)]);
    const client = createResilientInferencer(inner, options(clock, { retry: { initialBackoffMs: 20 } }));
    const pending = client.infer(REQUEST);
    await untilTimer(clock);
    assert.equal(inner.calls, 1);
    clock.advance(9 * MS);
    assert.equal(inner.calls, 1, 'no retry before 0.5 × 20 ms');
    clock.advance(1 * MS);
    const response = await pending;
    assert.equal(response.servedBy, 'remote');
    assert.equal(response.version, 1);
    assert.equal(inner.calls, 2);
    assert.deepEqual(client.stats(), {
      calls: 1,
      retries: 1,
      remoteErrors: 1,
      shortCircuited: 0,
      fallbacks: 0,
      failures: 0,
      circuit: 'closed',
    });
  });

  it('gives up after maxAttempts with the last error, saying how many attempts were made', async () => {
    const clock = createManualClock();
    const inner = scripted([unavailable()]);
    const client = createResilientInferencer(inner, options(clock, { random: () => 0, retry: { maxAttempts: 3 } }));
    await assert.rejects(client.infer(REQUEST), (error: InflowError) => {
      assert.equal(error.code, 'UNAVAILABLE');
      assert.match(error.message, /connect ECONNREFUSED \(gave up after 3 attempts\)$/);
      return true;
    });
    assert.equal(inner.calls, 3);
    assert.equal(client.stats().failures, 1);
  });

  for (const code of ['INVALID_ARGUMENT', 'NOT_FOUND', 'INTERNAL', 'UNAUTHENTICATED'] as const) {
    it(`does not retry ${code}, and does not count it towards opening the circuit`, async () => {
      const clock = createManualClock();
      const inner = scripted([new InflowError(code, 'no')]);
      const client = createResilientInferencer(inner, options(clock, { circuitBreaker: { failureThreshold: 1 } }));
      await assert.rejects(client.infer(REQUEST), { code });
      assert.equal(inner.calls, 1);
      assert.equal(client.stats().circuit, 'closed');
      assert.equal(client.stats().retries, 0);
    });
  }

  for (const code of ['RESOURCE_EXHAUSTED', 'DEADLINE_EXCEEDED'] as const) {
    it(`retries ${code}`, async () => {
      const inner = scripted([new InflowError(code, 'busy'), answer(2)]);
      const client = createResilientInferencer(inner, options(createManualClock(), { random: () => 0 }));
      assert.equal((await client.infer(REQUEST)).version, 2);
      assert.equal(inner.calls, 2);
    });
  }

  it('opens the circuit after failureThreshold failures and then fails fast with UNAVAILABLE naming the URL', async () => {
    const clock = createManualClock();
    const inner = scripted([unavailable()]);
    const client = createResilientInferencer(
      inner,
      options(clock, { random: () => 0, retry: { maxAttempts: 2 }, circuitBreaker: { failureThreshold: 4, resetTimeoutMs: 1000 } }),
    );
    await assert.rejects(client.infer(REQUEST), { code: 'UNAVAILABLE' });
    await assert.rejects(client.infer(REQUEST), { code: 'UNAVAILABLE' });
    assert.equal(client.stats().circuit, 'open');
    assert.equal(inner.calls, 4);
    await assert.rejects(client.infer(REQUEST), (error: InflowError) => {
      assert.equal(error.code, 'UNAVAILABLE');
      assert.match(error.message, /^circuit open for http:\/\/server:8501: 4 consecutive failures \(last: /);
      assert.match(error.message, /next trial call goes through in 1000 ms$/);
      return true;
    });
    assert.equal(inner.calls, 4, 'the open circuit did not call the server');
    assert.equal(client.stats().shortCircuited, 1);
  });

  it('stops retrying as soon as the circuit opens in the middle of a call', async () => {
    const inner = scripted([unavailable()]);
    const client = createResilientInferencer(
      inner,
      options(createManualClock(), { random: () => 0, retry: { maxAttempts: 5 }, circuitBreaker: { failureThreshold: 2 } }),
    );
    await assert.rejects(client.infer(REQUEST), /circuit open for/);
    assert.equal(inner.calls, 2);
  });

  it('sends calls to the fallback while the circuit is open, then half-opens and closes when the remote answers again', async () => {
    const clock = createManualClock();
    let remoteUp = false;
    const inner = scripted([unavailable()]);
    const remote: Inferencer = { ...inner, infer: async (r, o) => (remoteUp ? answer(7) : inner.infer(r, o)) };
    const fallback = scripted([answer(1)]);
    const client = createResilientInferencer(
      remote,
      options(clock, {
        random: () => 0,
        retry: { maxAttempts: 3 },
        circuitBreaker: { failureThreshold: 3, resetTimeoutMs: 500 },
        fallback,
      }),
    );
    const first = await client.infer(REQUEST);
    assert.equal(first.servedBy, 'fallback', 'retries exhausted → fallback');
    assert.equal(first.version, 1);
    assert.equal(client.stats().circuit, 'open');
    const second = await client.infer(REQUEST);
    assert.equal(second.servedBy, 'fallback');
    assert.equal(inner.calls, 3, 'the open circuit kept the second call off the remote');
    remoteUp = true;
    clock.advance(499 * MS);
    assert.equal((await client.infer(REQUEST)).servedBy, 'fallback');
    clock.advance(1 * MS);
    assert.equal(client.stats().circuit, 'half-open');
    const third = await client.infer(REQUEST);
    assert.equal(third.servedBy, 'remote');
    assert.equal(third.version, 7);
    assert.equal(client.stats().circuit, 'closed');
    assert.deepEqual(client.stats(), {
      calls: 4,
      retries: 2,
      remoteErrors: 3,
      shortCircuited: 2,
      fallbacks: 3,
      failures: 0,
      circuit: 'closed',
    });
  });

  it('does not go to the fallback for a non-retriable error: the request itself is wrong', async () => {
    const fallback = scripted([answer(1)]);
    const client = createResilientInferencer(
      scripted([new InflowError('INVALID_ARGUMENT', 'bad shape')]),
      options(createManualClock(), { fallback }),
    );
    await assert.rejects(client.infer(REQUEST), { code: 'INVALID_ARGUMENT' });
    assert.equal(fallback.calls, 0);
  });

  it('reports the fallback error when the fallback fails too', async () => {
    const fallback = scripted([new InflowError('NOT_FOUND', 'no such model locally')]);
    const client = createResilientInferencer(scripted([unavailable()]), options(createManualClock(), { random: () => 0, fallback }));
    await assert.rejects(client.infer(REQUEST), { code: 'NOT_FOUND', message: 'no such model locally' });
    assert.equal(client.stats().failures, 1);
    assert.equal(client.stats().fallbacks, 1);
  });

  it('rejects CANCELLED when the caller aborts during the backoff, without another attempt', async () => {
    const clock = createManualClock();
    const inner = scripted([unavailable(), answer(1)]);
    const client = createResilientInferencer(inner, options(clock));
    const controller = new AbortController();
    const pending = client.infer(REQUEST, { signal: controller.signal });
    await untilTimer(clock);
    controller.abort();
    await assert.rejects(pending, { code: 'CANCELLED' });
    assert.equal(clock.pendingTimers, 0, 'the backoff timer was cleared');
    assert.equal(inner.calls, 1);
  });

  it('cancels pending backoffs on close() and closes the inner inferencer', async () => {
    const clock = createManualClock();
    const inner = scripted([unavailable()]);
    const client = createResilientInferencer(inner, options(clock));
    const pending = client.infer(REQUEST);
    await untilTimer(clock);
    await client.close();
    await assert.rejects(pending, { code: 'CANCELLED' });
    assert.equal(inner.closed, true);
  });

  it('makes one attempt when retry is false', async () => {
    const inner = scripted([unavailable(), answer(1)]);
    const client = createResilientInferencer(inner, options(createManualClock(), { retry: false }));
    await assert.rejects(client.infer(REQUEST), { code: 'UNAVAILABLE', message: 'connect ECONNREFUSED' });
    assert.equal(inner.calls, 1);
  });

  it('retries metadata() and falls back for it too', async () => {
    const fallback = scripted([answer(1)]);
    const client = createResilientInferencer(scripted([unavailable()]), options(createManualClock(), { random: () => 0, fallback }));
    const metadata = await client.metadata('m');
    assert.equal(metadata.name, 'm');
    assert.equal(fallback.calls, 1);
  });

  it('is ready when the remote is, else when the fallback is', async () => {
    const down: Inferencer = { ...scripted([answer(1)]), ready: async () => false };
    const up = scripted([answer(1)]);
    assert.equal(await createResilientInferencer(down, options(createManualClock())).ready(), false);
    assert.equal(await createResilientInferencer(down, options(createManualClock(), { fallback: up })).ready('m'), true);
  });
});
