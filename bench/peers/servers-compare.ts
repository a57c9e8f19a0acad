/**
 * Model servers side by side on one machine: inflow vs MLServer, Triton (through PyTriton) and
 * KServe's Python model server, each serving the same ONNX models (digits-mlp, mlp-784) on
 * onnxruntime with one intra-op thread, pinned to the same CPU(s) (`--server-cpus`, default "1"),
 * driven by the same neutral load generators pinned to the other CPU(s) (`--load-cpus`, default
 * "0"): wrk with a Lua body for REST, ghz for gRPC, at 1/16/64 clients. Per cell: requests/s,
 * p50/p99, a latency CDF, and the server's CPU seconds per 1 000 requests (its whole process tree,
 * from /proc). Batching: inflow's batcher, MLServer's adaptive batching and Triton's dynamic
 * batcher at 64 rows / 0.5 ms; KServe's Python server has none.
 *
 *   ORT_DISABLE_TELEMETRY=1 node bench/peers/servers-compare.ts [--seconds 4] [--clients 1,16,64]
 *     [--models digits-mlp,mlp-784] [--servers inflow,mlserver,triton,kserve[,inflow-nobatch]] [--reps 1] [--out results.json]
 *
 * Each rep starts every server once (order rotated per rep), runs its cells, stops it. Needs wrk,
 * ghz (~/go/bin/ghz or $GHZ) and the peers' venvs (bench/peers/setup-python.sh, made on first use).
 * A peer that cannot start is recorded with the reason and the run goes on.
 */
process.env.ORT_DISABLE_TELEMETRY ??= '1';

import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { GHZ, type GhzCall, type LoadResult, runGhz, runWrk, wrkScript } from '../lib/load.ts';
import { execFileAsync, freePort, loadAverage, type Service, startService } from '../lib/process.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    clients: { type: 'string', default: '1,16,64' },
    models: { type: 'string', default: 'digits-mlp,mlp-784' },
    servers: { type: 'string', default: 'inflow,mlserver,triton,kserve' },
    reps: { type: 'string', default: '1' },
    'server-cpus': { type: 'string', default: '1' },
    'load-cpus': { type: 'string', default: '0' },
    out: { type: 'string', default: '' },
  },
});
const SECONDS = Number(values.seconds);
const CLIENTS = values.clients.split(',').map(Number);
const MODELS = values.models.split(',');
const SERVERS = values.servers.split(',');
const REPS = Number(values.reps);
const SERVER_CPUS = values['server-cpus'];
const LOAD_CPUS = values['load-cpus'];
const ROOT = join(import.meta.dirname, '..', '..');
const PROTO = join(ROOT, 'src', 'protocol');
const work = await mkdtemp(join(tmpdir(), 'inflow-bench-servers-'));

/** The first reference row of each model (real data: a scikit-learn digit, an MNIST-like 784 row). */
const rows = new Map<string, number[]>();
for (const m of MODELS) {
  const s = JSON.parse(await readFile(join(ROOT, 'models', 'samples', `${m}.json`), 'utf8')) as {
    inputs: { input: { shape: number[]; data: number[] } };
  };
  const features = s.inputs.input.shape[1] ?? 0;
  rows.set(m, s.inputs.input.data.slice(0, features));
}

// --- transports: a request body per model, usable against every server that speaks it ----------
interface RestTransport {
  readonly kind: 'rest';
  readonly name: string;
  path(model: string): string;
  script(model: string): Promise<string>;
}
interface GrpcTransport {
  readonly kind: 'grpc';
  readonly name: string;
  call(model: string): GhzCall;
}
type Transport = RestTransport | GrpcTransport;

async function bodyScript(label: string, model: string, body: Buffer | string, headers: Record<string, string>): Promise<string> {
  const file = join(work, `${label}-${model}.body`);
  await writeFile(file, body);
  return await wrkScript(join(work, `${label}-${model}.lua`), file, headers);
}
const row = (m: string): number[] => rows.get(m) ?? [];
const TRANSPORTS: Record<string, Transport> = {
  'tf-rest': {
    kind: 'rest',
    name: 'REST TF/V1 :predict',
    path: (m) => `/v1/models/${m}:predict`,
    script: (m) => bodyScript('tf', m, JSON.stringify({ instances: [row(m)] }), { 'Content-Type': 'application/json' }),
  },
  'oip-json': {
    kind: 'rest',
    name: 'REST OIP JSON',
    path: (m) => `/v2/models/${m}/infer`,
    script: (m) =>
      bodyScript('oip', m, JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, row(m).length], data: row(m) }] }), {
        'Content-Type': 'application/json',
      }),
  },
  'oip-binary': {
    kind: 'rest',
    name: 'REST OIP binary',
    path: (m) => `/v2/models/${m}/infer`,
    script: (m) => {
      const header = JSON.stringify({
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, row(m).length], parameters: { binary_data_size: row(m).length * 4 } }],
        outputs: [
          { name: 'label', parameters: { binary_data: true } },
          { name: 'probabilities', parameters: { binary_data: true } },
        ],
      });
      return bodyScript('bin', m, Buffer.concat([Buffer.from(header), Buffer.from(Float32Array.from(row(m)).buffer)]), {
        'Content-Type': 'application/octet-stream',
        'Inference-Header-Content-Length': String(Buffer.byteLength(header)),
      });
    },
  },
  'grpc-oip': {
    kind: 'grpc',
    name: 'gRPC OIP ModelInfer',
    call: (m) => ({
      proto: 'inference/grpc_service.proto',
      importPath: PROTO,
      call: 'inference.GRPCInferenceService/ModelInfer',
      data: JSON.stringify({
        model_name: m,
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, row(m).length], contents: { fp32_contents: row(m) } }],
      }),
    }),
  },
  'grpc-tf': {
    kind: 'grpc',
    name: 'gRPC TF Predict',
    call: (m) => ({
      proto: 'tensorflow_serving/apis/prediction_service.proto',
      importPath: PROTO,
      call: 'tensorflow.serving.PredictionService/Predict',
      data: JSON.stringify({
        model_spec: { name: m },
        inputs: { input: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: 1 }, { size: row(m).length }] }, float_val: row(m) } },
      }),
    }),
  },
};

// --- servers -------------------------------------------------------------------------------------
interface Running {
  readonly service: Service;
  readonly rest: string;
  readonly grpc: string;
}
interface ServerDef {
  readonly name: string;
  readonly transports: readonly string[];
  start(): Promise<Running>;
}

const modelPath = (m: string): string => join(ROOT, 'models', 'repository', m, '1', 'model.onnx');

async function python(peer: string): Promise<string> {
  const { stdout } = await execFileAsync('bash', [join(import.meta.dirname, 'setup-python.sh'), peer], { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim().split('\n').at(-1) ?? '';
}

/** inflow serve over a fresh repository of MODELS with the batcher at `maxBatchSize` (1 = off). */
async function startInflow(name: string, maxBatchSize: number): Promise<Running> {
  const repo = await mkdtemp(join(work, 'repo-'));
  for (const m of MODELS) {
    // Timestamps kept: files older than the settle delay load at once.
    await cp(modelPath(m), join(repo, m, '1', 'model.onnx'), { preserveTimestamps: true });
    await writeFile(
      join(repo, m, 'config.yaml'),
      `platform: onnx\nbatching: { maxBatchSize: ${maxBatchSize}, maxDelayMicros: 500 }\nruntime: { file: model.onnx, intraOpThreads: 1 }\n`,
    );
  }
  const [rest, grpc] = [await freePort(), await freePort()];
  const service = await startService({
    name,
    command: process.execPath,
    args: [
      join(ROOT, 'bin', 'inflow.js'),
      'serve',
      '--model-repository',
      repo,
      '--host',
      '127.0.0.1',
      '--rest-port',
      `${rest}`,
      '--grpc-port',
      `${grpc}`,
    ],
    env: { ORT_DISABLE_TELEMETRY: '1', INFLOW_LOG_LEVEL: 'warn' },
    cpus: SERVER_CPUS,
    readyUrl: `http://127.0.0.1:${rest}/v2/models/${MODELS.at(-1)}/ready`,
  });
  return { service, rest: `127.0.0.1:${rest}`, grpc: `127.0.0.1:${grpc}` };
}

const INFLOW_TRANSPORTS = ['tf-rest', 'oip-json', 'oip-binary', 'grpc-oip', 'grpc-tf'];
const SERVER_DEFS: Record<string, ServerDef> = {
  inflow: { name: 'inflow', transports: INFLOW_TRANSPORTS, start: () => startInflow('inflow', 64) },
  /** The same server with its batcher off (maxBatchSize 1): what a lone request costs without the 0.5 ms batching window. */
  'inflow-nobatch': { name: 'inflow (batching off)', transports: INFLOW_TRANSPORTS, start: () => startInflow('inflow (batching off)', 1) },
  mlserver: {
    name: 'MLServer',
    transports: ['oip-json', 'grpc-oip'],
    async start() {
      const py = await python('mlserver');
      const [rest, grpc, metrics] = [await freePort(), await freePort(), await freePort()];
      const service = await startService({
        name: 'MLServer',
        command: py,
        args: [
          join(import.meta.dirname, 'python', 'mlserver_start.py'),
          `${rest}`,
          `${grpc}`,
          `${metrics}`,
          '64',
          ...MODELS.map((m) => `${m}=${modelPath(m)}`),
        ],
        cpus: SERVER_CPUS,
        readyUrl: `http://127.0.0.1:${rest}/v2/models/${MODELS.at(-1)}/ready`,
      });
      return { service, rest: `127.0.0.1:${rest}`, grpc: `127.0.0.1:${grpc}` };
    },
  },
  triton: {
    name: 'Triton (PyTriton)',
    transports: ['oip-json', 'oip-binary', 'grpc-oip'],
    async start() {
      const py = await python('pytriton');
      const [rest, grpc, metrics] = [await freePort(), await freePort(), await freePort()];
      const service = await startService({
        name: 'Triton (PyTriton)',
        command: py,
        args: [
          join(import.meta.dirname, 'python', 'pytriton_onnx.py'),
          `${rest}`,
          `${grpc}`,
          `${metrics}`,
          '64',
          ...MODELS.map((m) => `${m}=${modelPath(m)}`),
        ],
        cpus: SERVER_CPUS,
        readyUrl: `http://127.0.0.1:${rest}/v2/models/${MODELS.at(-1)}/ready`,
      });
      return { service, rest: `127.0.0.1:${rest}`, grpc: `127.0.0.1:${grpc}` };
    },
  },
  kserve: {
    name: 'KServe',
    transports: ['tf-rest', 'oip-json', 'grpc-oip'],
    async start() {
      const py = await python('kserve');
      const [rest, grpc] = [await freePort(), await freePort()];
      const service = await startService({
        name: 'KServe',
        command: py,
        args: [join(import.meta.dirname, 'python', 'kserve_onnx.py'), `${rest}`, `${grpc}`, ...MODELS.map((m) => `${m}=${modelPath(m)}`)],
        cpus: SERVER_CPUS,
        readyUrl: `http://127.0.0.1:${rest}/v2/models/${MODELS.at(-1)}/ready`,
      });
      return { service, rest: `127.0.0.1:${rest}`, grpc: `127.0.0.1:${grpc}` };
    },
  },
};

// --- one cell ------------------------------------------------------------------------------------
export interface Cell {
  readonly rep: number;
  readonly server: string;
  readonly model: string;
  readonly transport: string;
  readonly clients: number;
  readonly rps: number;
  readonly p50us: number;
  readonly p99us: number;
  readonly cdf: ReadonlyArray<readonly [number, number]>;
  readonly errors: number;
  readonly cpuPer1k: number;
  readonly load1: number;
}

async function load(r: Running, t: Transport, model: string, clients: number, seconds: number): Promise<LoadResult> {
  return t.kind === 'rest'
    ? await runWrk(`http://${r.rest}${t.path(model)}`, await t.script(model), clients, seconds, LOAD_CPUS)
    : await runGhz(r.grpc, t.call(model), clients, seconds, LOAD_CPUS);
}

/** One request that must succeed and carry a prediction, so a misconfigured peer is not timed on errors. */
async function check(r: Running, t: Transport, model: string): Promise<void> {
  if (t.kind === 'grpc') {
    const res = await load(r, t, model, 1, 0.3);
    if (res.requests === 0) throw new Error(`${t.name} ${model}: no successful call`);
    return;
  }
  const script = await readFile(await t.script(model), 'utf8');
  const bodyFile = /io\.open\("([^"]+)"/.exec(script)?.[1] ?? '';
  const headers: Record<string, string> = {};
  for (const m of script.matchAll(/wrk\.headers\["([^"]+)"\] = "([^"]+)"/g)) headers[m[1] ?? ''] = m[2] ?? '';
  const res = await fetch(`http://${r.rest}${t.path(model)}`, { method: 'POST', headers, body: await readFile(bodyFile) });
  const text = Buffer.from(await res.arrayBuffer()).toString('latin1');
  if (!res.ok || !/label|predictions/.test(text)) throw new Error(`${t.name} ${model}: HTTP ${res.status} ${text.slice(0, 300)}`);
}

const { stdout: wrkVersion } = await execFileAsync('bash', ['-c', 'wrk -v 2>&1 | head -1']);
const ghzVersion = await execFileAsync(GHZ, ['--version']).then(
  (r) => `${r.stdout}${r.stderr}`,
  () => '?',
);
/** Writes what is measured so far (after every cell: a cut-short run keeps its numbers). */
async function save(): Promise<void> {
  if (!values.out) return;
  const result = {
    kind: 'servers',
    seconds: SECONDS,
    clients: CLIENTS,
    models: MODELS,
    reps: REPS,
    serverCpus: SERVER_CPUS,
    loadCpus: LOAD_CPUS,
    machineCpus: cpus().length,
    node: process.version,
    tools: { wrk: wrkVersion.trim(), ghz: `ghz ${ghzVersion.trim()}` },
    wallSeconds: (Date.now() - started) / 1000,
    cells,
    failures,
  };
  await writeFile(values.out, JSON.stringify(result, null, 1));
}
const cells: Cell[] = [];
const failures: Array<{ rep: number; server: string; what: string; reason: string }> = [];
const started = Date.now();
for (let rep = 0; rep < REPS; rep++) {
  const order = SERVERS.map((_, i) => SERVERS[(i + rep) % SERVERS.length] as string);
  for (const key of order) {
    const def = SERVER_DEFS[key];
    if (def === undefined) throw new Error(`unknown server "${key}": expected one of ${Object.keys(SERVER_DEFS).join(', ')}`);
    let running: Running;
    try {
      running = await def.start();
    } catch (e) {
      failures.push({ rep, server: def.name, what: 'start', reason: (e as Error).message.slice(0, 2000) });
      console.error(`${def.name}: did not start: ${(e as Error).message.slice(0, 500)}`);
      continue;
    }
    try {
      for (const model of MODELS) {
        for (const tk of def.transports) {
          const t = TRANSPORTS[tk] as Transport;
          try {
            await check(running, t, model);
            await load(running, t, model, 8, 1); // warm-up, discarded
            for (const clients of CLIENTS) {
              const cpu0 = await running.service.cpuSeconds();
              const r = await load(running, t, model, clients, SECONDS);
              const cpu1 = await running.service.cpuSeconds();
              const cell: Cell = {
                rep,
                server: def.name,
                model,
                transport: t.name,
                clients,
                rps: r.rps,
                p50us: r.p50us,
                p99us: r.p99us,
                cdf: r.cdf,
                errors: r.errors,
                cpuPer1k: r.requests > 0 ? ((cpu1 - cpu0) / r.requests) * 1000 : Number.NaN,
                load1: await loadAverage(),
              };
              cells.push(cell);
              await save();
              console.error(
                `rep ${rep} ${def.name} ${model} ${t.name} c=${clients}: ${Math.round(r.rps)} req/s p50 ${Math.round(r.p50us)} µs p99 ${Math.round(r.p99us)} µs, ${cell.cpuPer1k.toFixed(2)} CPU s/1k, errors ${r.errors}`,
              );
            }
          } catch (e) {
            failures.push({ rep, server: def.name, what: `${model} ${t.name}`, reason: (e as Error).message.slice(0, 2000) });
            console.error(`${def.name} ${model} ${t.name}: ${(e as Error).message.slice(0, 500)}`);
          }
        }
      }
    } finally {
      await running.service.stop();
    }
  }
}

await save();
await rm(work, { recursive: true, force: true });
const fmt = (n: number): string => (Number.isNaN(n) ? '—' : Math.round(n).toLocaleString('en-US'));
console.log('| rep | server | model | transport | clients | req/s | p50 µs | p99 µs | CPU s / 1k req | errors |');
console.log('|---:|---|---|---|---:|---:|---:|---:|---:|---:|');
for (const c of cells) {
  console.log(
    `| ${c.rep} | ${c.server} | ${c.model} | ${c.transport} | ${c.clients} | ${fmt(c.rps)} | ${fmt(c.p50us)} | ${fmt(c.p99us)} | ${c.cpuPer1k.toFixed(2)} | ${c.errors} |`,
  );
}
for (const f of failures) console.log(`FAILED rep ${f.rep} ${f.server} ${f.what}: ${f.reason.split('\n')[0]}`);
