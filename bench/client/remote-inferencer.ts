/**
 * Round-trip time of one RemoteInferencer call per protocol, against inflow's model server in a
 * child process (so client and server do not share an event loop), model mlp-784 (784 FP32 in,
 * INT64 label + 10 FP32 out), batches of 1 and 64 rows, calls one after another (closed loop,
 * concurrency 1). The server's batcher is set to `maxDelayMicros: 0` so no batching wait is
 * measured. Also measures the OIP REST binary call made with fetch (undici) instead of node:http,
 * the choice http-transport.ts explains.
 *
 *   node bench/client/remote-inferencer.ts [--iterations 200] [--warmup 30]
 *
 * Prints one line per protocol and batch: mean, p50 and p99 in µs.
 */
import { fork } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createRemoteInferencer, type RemoteInferencerOptions } from '../../src/client/index.ts';
import type { Inferencer, InferRequest } from '../../src/serving/types.ts';
import { decodeOipBinaryResponse, encodeOipBinaryRequest, INFERENCE_HEADER_CONTENT_LENGTH } from '../../src/tensor/codecs/index.ts';
import { createTensor } from '../../src/tensor/tensor.ts';

const MODELS = join(import.meta.dirname, '..', '..', 'models');

const { values } = parseArgs({
  options: {
    iterations: { type: 'string', default: '200' },
    warmup: { type: 'string', default: '30' },
    serve: { type: 'boolean', default: false },
  },
});

/** Child: a model server over a temp repository holding mlp-784; sends its ports, runs until disconnected. */
async function serve(): Promise<void> {
  const { loadServable, setRuntimeLogger } = await import('../../src/runtime/index.ts');
  const { silentLogger } = await import('../../src/observability/logger.ts');
  const { startModelServer } = await import('../../src/server/model-server.ts');
  setRuntimeLogger(silentLogger);
  const root = await mkdtemp(join(tmpdir(), 'inflow-bench-client-'));
  const dir = join(root, 'mlp-784');
  await mkdir(join(dir, '1'), { recursive: true });
  await cp(join(MODELS, 'repository', 'mlp-784', '1', 'model.onnx'), join(dir, '1', 'model.onnx'));
  await writeFile(
    join(dir, 'config.yaml'),
    'platform: onnx\nversionPolicy: { latest: 1 }\nbatching: { maxBatchSize: 64, maxDelayMicros: 0 }\nruntime: { file: model.onnx }\n',
  );
  // The repository loads only settled files: date the fresh copy back.
  const past = new Date(Date.now() - 3_600_000);
  for (const p of [join(dir, '1', 'model.onnx'), join(dir, '1'), join(dir, 'config.yaml'), dir]) await utimes(p, past, past);
  const server = await startModelServer({
    modelRepository: root,
    load: loadServable,
    watch: false,
    rest: { host: '127.0.0.1', port: 0, accessLogSampleRate: 0 },
    grpc: { host: '127.0.0.1', port: 0 },
  });
  process.send?.({ rest: server.restAddress, grpc: server.grpcAddress });
  process.on('disconnect', () => {
    void server.close().then(() => rm(root, { recursive: true, force: true }));
  });
}

function summary(samples: number[]): { mean: number; p50: number; p99: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { mean: samples.reduce((a, b) => a + b, 0) / samples.length, p50: at(0.5), p99: at(0.99) };
}

async function measure(call: () => Promise<unknown>, iterations: number, warmup: number): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await call();
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const started = performance.now();
    await call();
    samples.push((performance.now() - started) * 1000);
  }
  return samples;
}

/** The OIP REST binary call done with fetch (undici), for the transport comparison. */
function fetchInferencer(url: string): Pick<Inferencer, 'infer'> {
  return {
    async infer(request: InferRequest) {
      const encoded = encodeOipBinaryRequest({ inputs: request.inputs, parameters: { binary_data_output: true } });
      const response = await fetch(`${url}/v2/models/${request.model}/infer`, {
        method: 'POST',
        headers: {
          'content-type': 'application/octet-stream',
          [INFERENCE_HEADER_CONTENT_LENGTH]: String(encoded.headerLength),
        },
        body: Buffer.concat(encoded.chunks),
      });
      const body = new Uint8Array(await response.arrayBuffer());
      const decoded = decodeOipBinaryResponse(body, response.headers.get(INFERENCE_HEADER_CONTENT_LENGTH) ?? undefined);
      return { model: decoded.modelName, version: Number(decoded.modelVersion), outputs: decoded.outputs };
    },
  };
}

async function main(): Promise<void> {
  const iterations = Number(values.iterations);
  const warmup = Number(values.warmup);
  const child = fork(import.meta.filename, ['--serve'], { env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' } });
  const ports = await new Promise<{ rest: string; grpc: string }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { rest: string; grpc: string }));
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  const variants: { name: string; options: Pick<RemoteInferencerOptions, 'protocol' | 'oipBinary' | 'url'> }[] = [
    { name: 'tfserving-rest', options: { protocol: 'tfserving-rest', url: `http://${ports.rest}` } },
    { name: 'tfserving-grpc', options: { protocol: 'tfserving-grpc', url: ports.grpc } },
    { name: 'oip-rest json', options: { protocol: 'oip-rest', url: `http://${ports.rest}` } },
    { name: 'oip-rest binary', options: { protocol: 'oip-rest', oipBinary: true, url: `http://${ports.rest}` } },
    { name: 'oip-grpc', options: { protocol: 'oip-grpc', url: ports.grpc } },
  ];
  console.log(`node ${process.version}, mlp-784, ${iterations} calls after ${warmup} warm-up calls, concurrency 1; µs per call`);
  for (const batch of [1, 64]) {
    const data = new Float32Array(batch * 784);
    for (let i = 0; i < data.length; i++) data[i] = ((i * 7919) % 1000) / 1000;
    const request: InferRequest = { model: 'mlp-784', inputs: { input: createTensor('FP32', [batch, 784], data) } };
    const rows: [string, Pick<Inferencer, 'infer'>, () => Promise<void>][] = variants.map((v) => {
      const remote = createRemoteInferencer({ ...v.options, circuitBreaker: false, retry: false });
      return [v.name, remote, () => remote.close()];
    });
    rows.push(['oip-rest binary via fetch', fetchInferencer(`http://${ports.rest}`), async () => undefined]);
    for (const [name, inferencer, close] of rows) {
      const s = summary(await measure(() => inferencer.infer(request), iterations, warmup));
      console.log(
        `batch ${String(batch).padStart(2)}  ${name.padEnd(26)} mean ${s.mean.toFixed(0).padStart(6)}  p50 ${s.p50.toFixed(0).padStart(6)}  p99 ${s.p99.toFixed(0).padStart(6)}`,
      );
      await close();
    }
  }
  child.disconnect();
}

if (values.serve) await serve();
else await main();
