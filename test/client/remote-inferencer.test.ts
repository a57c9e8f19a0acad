/**
 * The remote client against inflow's real model server (REST + gRPC, TF Serving + OIP) over a
 * repository holding digits-mlp: predictions match Python onnxruntime's reference outputs in every
 * protocol; metadata, readiness and error codes; the server going away (retries, circuit, embedded
 * fallback) and coming back on the same ports (half-open → closed); deadlines against servers that
 * never answer. Breaker time runs on manual clocks and backoffs are jittered to zero: no sleeps.
 */
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createRemoteInferencer, type RemoteInferencerOptions, type ResilientInferencer } from '../../src/client/index.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { loadServable, setRuntimeLogger } from '../../src/runtime/index.ts';
import { type RunningModelServer, startModelServer } from '../../src/server/model-server.ts';
import { createManualClock } from '../../src/serving/clock.ts';
import { createLocalInference, type LocalInference } from '../../src/serving/local-inference.ts';
import type { InferResponse } from '../../src/serving/types.ts';
import { createTensor, type Tensor } from '../../src/tensor/tensor.ts';

const MODELS = join(import.meta.dirname, '..', '..', 'models');
const TOKEN = 'client-test-token';
const MS = 1000;

interface SampleTensor {
  datatype: string;
  shape: number[];
  data: number[];
}
interface Sample {
  inputs: { input: SampleTensor };
  outputs: { label: SampleTensor; probabilities: SampleTensor };
}

type Variant = { name: string } & Pick<RemoteInferencerOptions, 'protocol' | 'oipBinary'>;
const VARIANTS: Variant[] = [
  { name: 'tfserving-rest', protocol: 'tfserving-rest' },
  { name: 'tfserving-grpc', protocol: 'tfserving-grpc' },
  { name: 'oip-rest (JSON)', protocol: 'oip-rest' },
  { name: 'oip-rest (binary)', protocol: 'oip-rest', oipBinary: true },
  { name: 'oip-grpc', protocol: 'oip-grpc' },
];

function assertMatchesSample(response: InferResponse, sample: Sample, what: string): void {
  const label = response.outputs.label;
  const probabilities = response.outputs.probabilities;
  assert.ok(label && probabilities, `${what}: both outputs are present`);
  assert.equal(label.dtype, 'INT64');
  assert.deepEqual(label.shape, sample.outputs.label.shape);
  assert.deepEqual(Array.from(label.data as BigInt64Array, Number), sample.outputs.label.data, `${what}: labels`);
  assert.equal(probabilities.dtype, 'FP32');
  assert.deepEqual(probabilities.shape, sample.outputs.probabilities.shape);
  const got = probabilities.data as Float32Array;
  for (const [i, want] of sample.outputs.probabilities.data.entries()) {
    const g = got[i] as number;
    assert.ok(Math.abs(g - want) <= 1e-5 + 1e-4 * Math.abs(want), `${what}: probabilities[${i}] = ${g}, Python onnxruntime gave ${want}`);
  }
}

describe('remote inferencer against inflow’s model server', () => {
  let root: string;
  let repository: string;
  let server: RunningModelServer;
  let restPort: number;
  let grpcPort: number;
  let fallback: LocalInference;
  let sample: Sample;
  let input: Tensor;
  const clients: ResilientInferencer[] = [];

  function urlOf(variant: Pick<Variant, 'protocol'>): string {
    return variant.protocol.endsWith('-rest') ? `http://127.0.0.1:${restPort}` : `127.0.0.1:${grpcPort}`;
  }

  function client(variant: Omit<Variant, 'name'>, extra: Partial<RemoteInferencerOptions> = {}): ResilientInferencer {
    const created = createRemoteInferencer({
      protocol: variant.protocol,
      ...(variant.oipBinary === undefined ? {} : { oipBinary: variant.oipBinary }),
      url: urlOf(variant),
      auth: { token: TOKEN },
      timeoutMs: 5000,
      random: () => 0,
      clock: createManualClock(),
      reconnectBackoffMs: { initial: 20, max: 200 },
      ...extra,
    });
    clients.push(created);
    return created;
  }

  async function start(ports: { rest: number; grpc: number }): Promise<RunningModelServer> {
    return startModelServer({
      modelRepository: repository,
      load: loadServable,
      watch: false,
      shutdownGraceMs: 1000,
      rest: { host: '127.0.0.1', port: ports.rest, auth: { token: TOKEN } },
      grpc: { host: '127.0.0.1', port: ports.grpc, auth: { token: TOKEN } },
    });
  }

  before(async () => {
    setRuntimeLogger(silentLogger);
    root = await mkdtemp(join(tmpdir(), 'inflow-client-'));
    repository = join(root, 'repository');
    await mkdir(join(repository, 'digits-mlp', '1'), { recursive: true });
    await cp(join(MODELS, 'repository', 'digits-mlp', '1', 'model.onnx'), join(repository, 'digits-mlp', '1', 'model.onnx'));
    await writeFile(
      join(repository, 'digits-mlp', 'config.yaml'),
      'platform: onnx\nversionPolicy: { latest: 1 }\nlabels: { stable: 1 }\nbatching: { maxBatchSize: 64, maxDelayMicros: 500 }\nruntime: { file: model.onnx }\n',
    );
    // The repository loads only versions whose files settled (1 s unchanged): date the fresh copy back.
    const past = new Date(Date.now() - 3_600_000);
    for (const file of ['digits-mlp/1/model.onnx', 'digits-mlp/1', 'digits-mlp/config.yaml', 'digits-mlp']) {
      await utimes(join(repository, file), past, past);
    }
    sample = JSON.parse(await readFile(join(MODELS, 'samples', 'digits-mlp.json'), 'utf8')) as Sample;
    input = createTensor('FP32', sample.inputs.input.shape, Float32Array.from(sample.inputs.input.data));
    server = await start({ rest: 0, grpc: 0 });
    restPort = Number(server.restAddress?.split(':')[1]);
    grpcPort = Number(server.grpcAddress?.split(':')[1]);
    fallback = await createLocalInference({ modelRepository: repository, load: loadServable, watch: false, settleMs: 0 });
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
    await fallback?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  for (const variant of VARIANTS) {
    describe(variant.name, () => {
      it('predicts the digits-mlp sample as Python onnxruntime does', async () => {
        const remote = client(variant);
        const response = await remote.infer({ model: 'digits-mlp', id: 'req-1', inputs: { input } });
        assert.equal(response.servedBy, 'remote');
        assert.equal(response.model, 'digits-mlp');
        assert.equal(response.version, 1);
        assert.equal(response.id, 'req-1');
        assertMatchesSample(response, sample, variant.name);
      });

      it('returns only the requested outputs', async () => {
        const response = await client(variant).infer({ model: 'digits-mlp', version: 1, inputs: { input }, outputs: ['label'] });
        assert.deepEqual(Object.keys(response.outputs), ['label']);
      });

      it('reads the model metadata and readiness', async () => {
        const remote = client(variant);
        const metadata = await remote.metadata('digits-mlp');
        assert.equal(metadata.name, 'digits-mlp');
        assert.deepEqual(metadata.versions, [1]);
        assert.deepEqual(metadata.inputs, [{ name: 'input', dtype: 'FP32', shape: [-1, 64] }]);
        assert.deepEqual(metadata.outputs, [
          { name: 'label', dtype: 'INT64', shape: [-1] },
          { name: 'probabilities', dtype: 'FP32', shape: [-1, 10] },
        ]);
        assert.equal(await remote.ready(), true);
        assert.equal(await remote.ready('digits-mlp'), true);
        assert.equal(await remote.ready('nope'), false);
      });

      it('answers NOT_FOUND for an unknown model, without retrying', async () => {
        const remote = client(variant);
        await assert.rejects(remote.infer({ model: 'nope', inputs: { input } }), (error: Error & { code?: string }) => {
          assert.equal(error.code, 'NOT_FOUND');
          assert.match(error.message, new RegExp(`^remote ${variant.protocol} `));
          return true;
        });
        assert.equal(remote.stats().retries, 0);
        assert.equal(remote.stats().circuit, 'closed');
      });

      it('answers INVALID_ARGUMENT for a wrong input shape, without retrying', async () => {
        const remote = client(variant);
        const wrong = createTensor('FP32', [2, 3], new Float32Array(6));
        await assert.rejects(remote.infer({ model: 'digits-mlp', inputs: { input: wrong } }), { code: 'INVALID_ARGUMENT' });
        assert.equal(remote.stats().retries, 0);
      });

      it('answers UNAUTHENTICATED for a wrong token, without retrying', async () => {
        const remote = client(variant, { auth: { token: 'wrong' } });
        await assert.rejects(remote.infer({ model: 'digits-mlp', inputs: { input } }), { code: 'UNAUTHENTICATED' });
        assert.equal(remote.stats().retries, 0);
      });

      if (variant.protocol.startsWith('tfserving')) {
        it('sends a version label', async () => {
          const response = await client(variant).infer({ model: 'digits-mlp', label: 'stable', inputs: { input } });
          assert.equal(response.version, 1);
        });
      } else {
        it('refuses a version label, which OIP cannot carry', async () => {
          const remote = client(variant);
          await assert.rejects(remote.infer({ model: 'digits-mlp', label: 'stable', inputs: { input } }), {
            code: 'INVALID_ARGUMENT',
            message: /the Open Inference Protocol has no version labels/,
          });
        });
      }
    });
  }

  describe('when the server goes away and comes back', () => {
    it('retries, opens the circuit, answers from the embedded fallback, then half-opens and closes on the same ports', async () => {
      const retry = { maxAttempts: 3, initialBackoffMs: 20 };
      const circuitBreaker = { failureThreshold: 3, resetTimeoutMs: 1000 };
      const withFallback = VARIANTS.map((variant) => {
        const clock = createManualClock();
        return { variant, clock, remote: client(variant, { clock, retry, circuitBreaker, fallback }) };
      });
      const bareClock = createManualClock();
      const bare = client({ protocol: 'oip-rest' }, { clock: bareClock, retry, circuitBreaker });
      for (const { remote } of withFallback)
        assert.equal((await remote.infer({ model: 'digits-mlp', inputs: { input } })).servedBy, 'remote');

      await server.close();

      for (const { variant, remote } of withFallback) {
        const response = await remote.infer({ model: 'digits-mlp', inputs: { input } });
        assert.equal(response.servedBy, 'fallback', `${variant.name}: retries exhausted → fallback`);
        assertMatchesSample(response, sample, `${variant.name} fallback`);
        const stats = remote.stats();
        assert.equal(stats.circuit, 'open', variant.name);
        assert.equal(stats.retries, 2, `${variant.name}: two retries`);
        assert.equal(stats.remoteErrors, 3);
        assert.equal((await remote.infer({ model: 'digits-mlp', inputs: { input } })).servedBy, 'fallback');
        assert.equal(remote.stats().shortCircuited, 1, `${variant.name}: the open circuit answered without trying the server`);
        assert.equal(remote.stats().remoteErrors, 3);
      }
      await assert.rejects(bare.infer({ model: 'digits-mlp', inputs: { input } }), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'UNAVAILABLE');
        assert.match(error.message, /cannot reach the server \(ECONNREFUSED.*\(gave up after 3 attempts\)$/);
        return true;
      });
      await assert.rejects(bare.infer({ model: 'digits-mlp', inputs: { input } }), {
        code: 'UNAVAILABLE',
        message: new RegExp(`^circuit open for http://127.0.0.1:${restPort}: 3 consecutive failures`),
      });

      server = await start({ rest: restPort, grpc: grpcPort });

      for (const { variant, clock, remote } of withFallback) {
        // ready() waits for a gRPC channel to reconnect (an event, bounded by timeoutMs).
        assert.equal(await remote.ready(), true, `${variant.name}: ready again`);
        assert.equal((await remote.infer({ model: 'digits-mlp', inputs: { input } })).servedBy, 'fallback', 'still open');
        clock.advance(1000 * MS);
        assert.equal(remote.stats().circuit, 'half-open');
        const response = await remote.infer({ model: 'digits-mlp', inputs: { input } });
        assert.equal(response.servedBy, 'remote', `${variant.name}: the trial call reached the restarted server`);
        assertMatchesSample(response, sample, `${variant.name} after restart`);
        assert.equal(remote.stats().circuit, 'closed');
      }
      bareClock.advance(1000 * MS);
      assert.equal((await bare.infer({ model: 'digits-mlp', inputs: { input } })).servedBy, 'remote');
    });
  });

  describe('deadlines', () => {
    it('gives DEADLINE_EXCEEDED, retried, in bounded time, when an HTTP server never answers', async () => {
      const silent = http.createServer(() => undefined);
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const port = (silent.address() as net.AddressInfo).port;
      const remote = createRemoteInferencer({ protocol: 'oip-rest', url: `http://127.0.0.1:${port}`, timeoutMs: 50, random: () => 0 });
      try {
        const started = performance.now();
        await assert.rejects(remote.infer({ model: 'digits-mlp', inputs: { input } }), {
          code: 'DEADLINE_EXCEEDED',
          message: /no answer within 50 ms .*\(gave up after 3 attempts\)$/,
        });
        const elapsed = performance.now() - started;
        assert.ok(elapsed >= 140 && elapsed < 2000, `3 attempts of 50 ms took ${elapsed.toFixed(0)} ms`);
        assert.equal(remote.stats().retries, 2);
      } finally {
        await remote.close();
        silent.closeAllConnections();
        await new Promise((resolve) => silent.close(resolve));
      }
    });

    it('gives CANCELLED, not retried, when the caller aborts a call in flight', async () => {
      const controller = new AbortController();
      const silent = http.createServer(() => controller.abort(new Error('shutting down')));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const port = (silent.address() as net.AddressInfo).port;
      const remote = createRemoteInferencer({ protocol: 'oip-rest', url: `http://127.0.0.1:${port}`, random: () => 0 });
      try {
        await assert.rejects(remote.infer({ model: 'digits-mlp', inputs: { input } }, { signal: controller.signal }), {
          code: 'CANCELLED',
          message: /the caller cancelled the call: shutting down/,
        });
        assert.equal(remote.stats().retries, 0);
        assert.equal(remote.stats().circuit, 'closed');
      } finally {
        await remote.close();
        silent.closeAllConnections();
        await new Promise((resolve) => silent.close(resolve));
      }
    });

    it('gives DEADLINE_EXCEEDED over gRPC when the peer accepts connections but never speaks', async () => {
      const sockets = new Set<net.Socket>();
      const mute = net.createServer((socket) => sockets.add(socket));
      await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
      const port = (mute.address() as net.AddressInfo).port;
      const remote = createRemoteInferencer({
        protocol: 'oip-grpc',
        url: `127.0.0.1:${port}`,
        timeoutMs: 50,
        retry: { maxAttempts: 2 },
        random: () => 0,
      });
      try {
        await assert.rejects(remote.infer({ model: 'digits-mlp', inputs: { input } }), { code: 'DEADLINE_EXCEEDED' });
        assert.equal(remote.stats().retries, 1);
      } finally {
        await remote.close();
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => mute.close(resolve));
      }
    });
  });
});
