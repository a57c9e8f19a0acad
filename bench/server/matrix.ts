/**
 * The model server's closing-note matrix: digits-mlp, one row per request, at 1, 16 and 64
 * concurrent clients, for TF REST JSON, OIP JSON, OIP binary (wrk, a separate process) and gRPC
 * (TF Predict and OIP ModelInfer with raw contents, via ghz, a separate Go process), with dynamic
 * batching on (maxBatchSize 64) and off (maxBatchSize 1). Also the raw model time (onnxruntime-node
 * session.run, batch 1, main thread) that server p50 is divided by.
 *
 *   ORT_DISABLE_TELEMETRY=1 INFLOW_LOG_LEVEL=silent node bench/server/matrix.ts [--seconds 5]
 * Needs wrk (apt-get install -y wrk) and ghz (go install github.com/bojand/ghz/cmd/ghz@latest).
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import { silentLogger } from '../../src/observability/logger.ts';
import { loadServable, setRuntimeLogger } from '../../src/runtime/index.ts';
import { startModelServer } from '../../src/server/model-server.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' } } });
const SECONDS = values.seconds;
const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const MODEL = join(ROOT, 'models', 'repository', 'digits-mlp', '1', 'model.onnx');
const ROW = Array.from({ length: 64 }, (_, i) => (i * 7) % 17);
const dir = await mkdtemp(join(tmpdir(), 'inflow-matrix-'));
const GHZ = join(homedir(), 'go', 'bin', 'ghz');

// --- raw model time -------------------------------------------------------------------------
const session = await ort.InferenceSession.create(MODEL, { intraOpNumThreads: 1 });
const feeds = { input: new ort.Tensor('float32', Float32Array.from(ROW), [1, 64]) };
for (let i = 0; i < 2000; i++) await session.run(feeds);
const times: number[] = [];
for (let i = 0; i < 5000; i++) {
  const t = performance.now();
  await session.run(feeds);
  times.push(performance.now() - t);
}
times.sort((a, b) => a - b);
const rawP50us = (times[Math.floor(times.length / 2)] ?? 0) * 1000;
await session.release();

// --- bodies ---------------------------------------------------------------------------------
const tfBody = JSON.stringify({ instances: [ROW] });
const oipBody = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], data: ROW }] });
const binHeader = JSON.stringify({
  inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], parameters: { binary_data_size: 256 } }],
  outputs: [
    { name: 'label', parameters: { binary_data: true } },
    { name: 'probabilities', parameters: { binary_data: true } },
  ],
});
const binBody = Buffer.concat([Buffer.from(binHeader), Buffer.from(Float32Array.from(ROW).buffer)]);
await writeFile(join(dir, 'bin.body'), binBody);

async function lua(name: string, bodyFile: string, headers: Record<string, string>): Promise<string> {
  const path = join(dir, `${name}.lua`);
  const h = Object.entries(headers)
    .map(([k, v]) => `wrk.headers["${k}"] = "${v}"`)
    .join('\n');
  await writeFile(
    path,
    `wrk.method = "POST"
local f = io.open("${bodyFile}", "rb"); wrk.body = f:read("*a"); f:close()
${h}
done = function(summary, latency, requests)
  io.write(string.format('RESULT {"requests": %d, "seconds": %f, "errors": %d, "non2xx": %d, "p50": %d, "p99": %d}\\n',
    summary.requests, summary.duration / 1e6, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(99)))
end
`,
  );
  return path;
}
await writeFile(join(dir, 'tf.body'), tfBody);
await writeFile(join(dir, 'oip.body'), oipBody);
const restCases = [
  {
    name: 'TF REST JSON :predict',
    path: '/v1/models/digits-mlp:predict',
    lua: await lua('tf', join(dir, 'tf.body'), { 'Content-Type': 'application/json' }),
  },
  {
    name: 'OIP REST JSON /infer',
    path: '/v2/models/digits-mlp/infer',
    lua: await lua('oip', join(dir, 'oip.body'), { 'Content-Type': 'application/json' }),
  },
  {
    name: 'OIP REST binary /infer',
    path: '/v2/models/digits-mlp/infer',
    lua: await lua('bin', join(dir, 'bin.body'), {
      'Content-Type': 'application/octet-stream',
      'Inference-Header-Content-Length': String(binHeader.length),
    }),
  },
];
const raw = Buffer.from(Float32Array.from(ROW).buffer).toString('base64');
const grpcCases = [
  {
    name: 'gRPC TF Predict',
    proto: 'tensorflow_serving/apis/prediction_service.proto',
    call: 'tensorflow.serving.PredictionService/Predict',
    data: JSON.stringify({
      model_spec: { name: 'digits-mlp' },
      inputs: { input: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: 1 }, { size: 64 }] }, float_val: ROW } },
    }),
  },
  {
    name: 'gRPC OIP ModelInfer raw',
    proto: 'inference/grpc_service.proto',
    call: 'inference.GRPCInferenceService/ModelInfer',
    data: JSON.stringify({
      model_name: 'digits-mlp',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64] }],
      raw_input_contents: [raw],
    }),
  },
];

interface Row {
  batching: string;
  transport: string;
  clients: number;
  rps: number;
  p50us: number;
  p99us: number;
  errors: number;
}
const rows: Row[] = [];
setRuntimeLogger(silentLogger);

for (const [batching, maxBatch] of [
  ['on', 64],
  ['off', 1],
] as const) {
  const repo = await mkdtemp(join(tmpdir(), 'inflow-matrix-repo-'));
  await cp(MODEL, join(repo, 'digits-mlp', '1', 'model.onnx'));
  await writeFile(
    join(repo, 'digits-mlp', 'config.yaml'),
    `platform: onnx\nbatching: { maxBatchSize: ${maxBatch}, maxQueueSize: 4096 }\nruntime: { file: model.onnx, intraOpThreads: 1 }\n`,
  );
  const server = await startModelServer({
    modelRepository: repo,
    load: loadServable,
    watch: false,
    rest: { host: '127.0.0.1', port: 0, maxConcurrentRequests: 4096 },
    grpc: { host: '127.0.0.1', port: 0 },
  });
  // The model was copied a moment ago: the repository loads it once its files have settled.
  while (server.inference.repository.available('digits-mlp').length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
  for (const c of restCases) {
    await run('wrk', ['-t1', '-c8', '-d1s', '-s', c.lua, `http://${server.restAddress}${c.path}`]); // warm-up
    for (const clients of [1, 16, 64]) {
      const { stdout } = await run('wrk', ['-t1', `-c${clients}`, `-d${SECONDS}s`, '-s', c.lua, `http://${server.restAddress}${c.path}`]);
      const r = JSON.parse(/RESULT (.*)/.exec(stdout)?.[1] ?? '{}') as {
        requests: number;
        seconds: number;
        errors: number;
        non2xx: number;
        p50: number;
        p99: number;
      };
      rows.push({
        batching,
        transport: c.name,
        clients,
        rps: r.requests / r.seconds,
        p50us: r.p50,
        p99us: r.p99,
        errors: r.errors + r.non2xx,
      });
    }
  }
  for (const c of grpcCases) {
    const args = (clients: number, seconds: string): string[] => [
      '--insecure',
      '--proto',
      c.proto,
      '-i',
      join(ROOT, 'src', 'protocol'),
      '--call',
      c.call,
      '-d',
      c.data,
      '-c',
      String(clients),
      '--connections',
      String(Math.min(clients, 4)),
      '-z',
      seconds,
      '--format',
      'json',
      server.grpcAddress ?? '',
    ];
    await run(GHZ, args(8, '1s'), { cwd: join(ROOT, 'src', 'protocol'), maxBuffer: 64 * 1024 * 1024 }); // warm-up
    for (const clients of [1, 16, 64]) {
      const { stdout } = await run(GHZ, args(clients, `${SECONDS}s`), { cwd: join(ROOT, 'src', 'protocol'), maxBuffer: 64 * 1024 * 1024 });
      const r = JSON.parse(stdout) as {
        errorDistribution?: Record<string, number>;
        rps: number;
        latencyDistribution: Array<{ percentage: number; latency: number }> | null;
        statusCodeDistribution: Record<string, number>;
      };
      const pct = (p: number): number => (r.latencyDistribution?.find((d) => d.percentage === p)?.latency ?? Number.NaN) / 1000;
      const errors = Object.entries(r.statusCodeDistribution ?? {})
        .filter(([k]) => k !== 'OK')
        .reduce((a, [, v]) => a + v, 0);
      if (r.latencyDistribution === null)
        console.error(c.name, clients, JSON.stringify(r.statusCodeDistribution), JSON.stringify(r.errorDistribution));
      rows.push({ batching, transport: c.name, clients, rps: r.rps, p50us: pct(50), p99us: pct(99), errors });
    }
  }
  await server.close();
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
console.log(
  `\ndigits-mlp, 1 row per request, ${SECONDS} s per cell, node ${process.version}; raw session.run p50 (batch 1): ${rawP50us.toFixed(1)} µs\n`,
);
console.log('| batching | transport | clients | req/s | p50 µs | p99 µs | p50 / raw model | errors |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  console.log(
    `| ${r.batching} | ${r.transport} | ${r.clients} | ${fmt(r.rps)} | ${fmt(r.p50us)} | ${fmt(r.p99us)} | ${(r.p50us / rawP50us).toFixed(1)}× | ${r.errors} |`,
  );
}
