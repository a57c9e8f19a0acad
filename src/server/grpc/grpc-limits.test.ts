import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { afterEach, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { InflowError } from '../../errors.ts';
import { createInferenceMetrics } from '../../observability/metrics.ts';
import type { InferRequest, InferResponse } from '../../serving/types.ts';
import type { GrpcInference } from './grpc-inference.ts';
import { GrpcServiceName } from './grpc-protos.ts';
import { createGrpcServer, type GrpcServer, type GrpcServerOptions } from './grpc-server.ts';
import { createGrpcTestClient, type GrpcTestClient } from './grpc-test-client.ts';

const { INFERENCE, HEALTH } = GrpcServiceName;
const S = grpc.status;

/** An inference service whose calls wait until released or aborted (as the batcher does). */
function createHeldInference(): { inference: GrpcInference; nextCall: () => Promise<AbortSignal>; releaseAll: () => void } {
  const arrived: AbortSignal[] = [];
  const waiting: ((signal: AbortSignal) => void)[] = [];
  const held = new Set<() => void>();
  const inference: GrpcInference = {
    metrics: createInferenceMetrics(),
    ready: async () => true,
    metadata: async (model) => ({ name: model, platform: 'onnx', versions: [1], labels: {}, inputs: [], outputs: [] }),
    infer: (request: InferRequest, options = {}) =>
      new Promise<InferResponse>((resolve, reject) => {
        const signal = options.signal ?? new AbortController().signal;
        const release = (): void => resolve({ model: request.model, version: 1, outputs: {} });
        held.add(release);
        signal.addEventListener('abort', () => {
          held.delete(release);
          reject(new InflowError('CANCELLED', 'request cancelled while queued', { cause: signal.reason }));
        });
        const waiter = waiting.shift();
        if (waiter) waiter(signal);
        else arrived.push(signal);
      }),
  };
  return {
    inference,
    nextCall: () => {
      const signal = arrived.shift();
      return signal ? Promise.resolve(signal) : new Promise((resolve) => waiting.push(resolve));
    },
    releaseAll: () => {
      for (const release of held) release();
      held.clear();
    },
  };
}

const infer = { model_name: 'm', inputs: [] };

async function rejectsWith(promise: Promise<unknown>, code: number, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: grpc.ServiceError) => {
    assert.equal(error.code, code, `expected status ${code}, got ${error.code}: ${error.details}`);
    if (message) assert.match(error.details, message);
    return true;
  });
}

/** The reason an aborted signal carries, once it is aborted. */
async function abortReason(signal: AbortSignal): Promise<InflowError> {
  if (!signal.aborted) await once(signal, 'abort');
  return signal.reason as InflowError;
}

describe('gRPC server limits, deadlines, auth, TLS and shutdown', () => {
  let server: GrpcServer | undefined;
  let client: GrpcTestClient | undefined;
  let held: ReturnType<typeof createHeldInference>;

  async function start(options: GrpcServerOptions = {}, credentials?: grpc.ChannelCredentials): Promise<GrpcTestClient> {
    held = createHeldInference();
    server = createGrpcServer(held.inference, { host: '127.0.0.1', port: 0, ...options });
    const { port } = await server.start();
    client = createGrpcTestClient(`${options.tls ? 'localhost' : '127.0.0.1'}:${port}`, credentials);
    return client;
  }

  afterEach(async () => {
    held.releaseAll();
    client?.close();
    await server?.close(100);
    server = undefined;
    client = undefined;
  });

  it('aborts the inference when the client deadline passes and answers DEADLINE_EXCEEDED', async () => {
    const c = await start();
    // 1 s, not less: the server must receive the call before the deadline passes, and a loaded CI
    // machine (2 cores, load 20+) once took longer than 100 ms to get it there.
    const call = c.unary(INFERENCE, 'ModelInfer', infer, { deadline: 1000 });
    const signal = await held.nextCall();
    await rejectsWith(call, S.DEADLINE_EXCEEDED);
    assert.equal((await abortReason(signal)).code, 'DEADLINE_EXCEEDED');
    assert.deepEqual(await c.unary(INFERENCE, 'ServerLive', {}), { live: true });
  });

  it('bounds calls without a deadline by the server request timeout', async () => {
    const c = await start({ requestTimeoutMs: 50 });
    await rejectsWith(c.unary(INFERENCE, 'ModelInfer', infer), S.DEADLINE_EXCEEDED, /request timeout of 50 ms/);
  });

  it('aborts the inference when the client cancels the call', async () => {
    const c = await start();
    let clientCall: grpc.ClientUnaryCall | undefined;
    const call = c.unary(INFERENCE, 'ModelInfer', infer, { onCall: (x) => (clientCall = x) });
    const signal = await held.nextCall();
    clientCall?.cancel();
    await rejectsWith(call, S.CANCELLED);
    assert.equal((await abortReason(signal)).code, 'CANCELLED');
    assert.equal(server?.inFlight, 0);
  });

  it('answers RESOURCE_EXHAUSTED beyond maxRequestElements or maxRequestBytesElements before decoding', async () => {
    const c = await start({ maxRequestElements: 100, maxRequestBytesElements: 10 });
    // No data at all: decoding first would answer INVALID_ARGUMENT for the missing bytes.
    const fp32 = { model_name: 'm', inputs: [{ name: 'x', datatype: 'FP32', shape: [101] }], raw_input_contents: [Buffer.alloc(0)] };
    await rejectsWith(c.unary(INFERENCE, 'ModelInfer', fp32), S.RESOURCE_EXHAUSTED, /more than 100 tensor elements/);
    const bytes = { model_name: 'm', inputs: [{ name: 'x', datatype: 'BYTES', shape: [11] }], raw_input_contents: [Buffer.alloc(0)] };
    await rejectsWith(c.unary(INFERENCE, 'ModelInfer', bytes), S.RESOURCE_EXHAUSTED, /more than 10 BYTES elements/);
    const predict = {
      model_spec: { name: 'm' },
      inputs: { x: { dtype: 'DT_STRING', tensor_shape: { dim: [{ size: 11 }] }, string_val: [] } },
    };
    await rejectsWith(c.unary(GrpcServiceName.PREDICTION, 'Predict', predict), S.RESOURCE_EXHAUSTED, /more than 10 BYTES elements/);
    // Within the limits the request reaches the inference.
    const small = c.unary(INFERENCE, 'ModelInfer', {
      model_name: 'm',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2] }],
      raw_input_contents: [Buffer.alloc(8)],
    });
    await held.nextCall();
    held.releaseAll();
    await small;
  });

  it('answers RESOURCE_EXHAUSTED beyond maxConcurrentCalls and serves again once calls finish', async () => {
    const c = await start({ maxConcurrentCalls: 1 });
    const first = c.unary(INFERENCE, 'ModelInfer', infer);
    await held.nextCall();
    await rejectsWith(c.unary(INFERENCE, 'ModelInfer', infer), S.RESOURCE_EXHAUSTED, /too many calls in flight \(limit 1\)/);
    // Health is not counted: probes pass while the server is saturated.
    assert.deepEqual(await c.unary(HEALTH, 'Check', {}), { status: 'SERVING' });
    held.releaseAll();
    await first;
    const again = c.unary(INFERENCE, 'ModelInfer', infer);
    await held.nextCall();
    held.releaseAll();
    assert.equal(((await again) as { model_name: string }).model_name, 'm');
  });

  it('answers RESOURCE_EXHAUSTED for a message over maxReceiveMessageBytes and stays up', async () => {
    const c = await start({ maxReceiveMessageBytes: 1024 });
    const big = {
      model_name: 'm',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [512], contents: { fp32_contents: new Array<number>(512).fill(1) } }],
    };
    await rejectsWith(c.unary(INFERENCE, 'ModelInfer', big), S.RESOURCE_EXHAUSTED);
    assert.deepEqual(await c.unary(INFERENCE, 'ServerLive', {}), { live: true });
  });

  it('requires the bearer token on every method but health, and the admin token on the repository extension', async () => {
    const c = await start({ auth: { token: 's3cret' }, admin: { token: 'adm' } });
    const bearer = (token: string): grpc.Metadata => {
      const m = new grpc.Metadata();
      m.set('authorization', `Bearer ${token}`);
      return m;
    };
    await rejectsWith(c.unary(INFERENCE, 'ServerLive', {}), S.UNAUTHENTICATED, /missing "authorization"/);
    await rejectsWith(c.unary(INFERENCE, 'ServerLive', {}, { metadata: bearer('wrong') }), S.UNAUTHENTICATED, /invalid bearer token/);
    const basic = new grpc.Metadata();
    basic.set('authorization', 'Basic czNjcmV0');
    await rejectsWith(c.unary(INFERENCE, 'ServerLive', {}, { metadata: basic }), S.UNAUTHENTICATED, /must be "Bearer <token>"/);
    assert.deepEqual(await c.unary(INFERENCE, 'ServerLive', {}, { metadata: bearer('s3cret') }), { live: true });
    assert.deepEqual(await c.unary(HEALTH, 'Check', {}), { status: 'SERVING' });
    await rejectsWith(c.unary(INFERENCE, 'RepositoryIndex', {}, { metadata: bearer('s3cret') }), S.UNAUTHENTICATED);
    // Past auth: this stub has no local repository to index.
    await rejectsWith(c.unary(INFERENCE, 'RepositoryIndex', {}, { metadata: bearer('adm') }), S.UNIMPLEMENTED, /local model repository/);
  });

  it('keeps the repository extension UNIMPLEMENTED unless the admin option is on', async () => {
    const c = await start();
    await rejectsWith(c.unary(INFERENCE, 'RepositoryIndex', {}), S.UNIMPLEMENTED, /admin option/);
    assert.deepEqual((await c.unary<{ extensions: string[] }>(INFERENCE, 'ServerMetadata', {})).extensions, []);
  });

  it('serves TLS and, with a client CA, accepts only clients with a certificate it signed', async () => {
    const pem = (name: string): Buffer => readFileSync(new URL(`fixtures/${name}`, import.meta.url));
    const ca = pem('ca.pem');
    const withCert = grpc.credentials.createSsl(ca, pem('client.key'), pem('client.pem'));
    const c = await start({ tls: { key: pem('server.key'), cert: pem('server.pem'), ca } }, withCert);
    assert.deepEqual(await c.unary(INFERENCE, 'ServerLive', {}), { live: true });
    const target = c.channel.getChannel().getTarget().replace(/^dns:/, '');
    const anonymous = createGrpcTestClient(target, grpc.credentials.createSsl(ca));
    try {
      await rejectsWith(anonymous.unary(INFERENCE, 'ServerLive', {}, { deadline: 5000 }), S.UNAVAILABLE);
    } finally {
      anonymous.close();
    }
  });

  it('turns health NOT_SERVING on close, drains for graceMs, then cancels what is left', async () => {
    const c = await start();
    const statuses: string[] = [];
    const watch = c.channel.makeServerStreamRequest(
      '/grpc.health.v1.Health/Watch',
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
    );
    const ended = new Promise<void>((resolve) => {
      watch.on('data', (b: Buffer) => statuses.push(b.length === 0 ? 'UNKNOWN' : b[1] === 1 ? 'SERVING' : 'NOT_SERVING'));
      watch.on('end', resolve);
      watch.on('error', () => resolve());
    });
    const pending = c.unary(INFERENCE, 'ModelInfer', infer);
    const signal = await held.nextCall();
    while (statuses.length === 0) await once(watch, 'data');
    const closing = server!.close(50);
    await rejectsWith(pending, S.CANCELLED);
    await closing;
    await ended;
    assert.deepEqual(statuses, ['SERVING', 'NOT_SERVING']);
    assert.equal((await abortReason(signal)).code, 'CANCELLED');
    server = undefined;
  });
});
