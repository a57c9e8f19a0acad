/**
 * inflow's gRPC server against its transport's ceiling, in one run on the same cores: each server
 * pinned to one CPU (`taskset`), ghz pinned to another, 64 concurrent calls of OIP ModelInfer
 * (typed contents) and TF Predict, digits-mlp, 1 row. The ceilings are bench/server/grpc-ceiling.ts
 * answering the same requests with inflow's response bytes: @grpc/grpc-js (`grpc-js`: bytes in,
 * bytes out; `grpc-js-codec`: with proto-loader's protobufjs codec), a bare node:http2 handler
 * (`http2`; `http2-codec`: with inflow's codec) and @connectrpc/connect-node's gRPC protocol with
 * @bufbuild/protobuf's codec (`connect-node`).
 * Servers run in rotated order per rep; ratios pair cells of the same rep. Besides req/s, each
 * cell reports the server's CPU per call (all its threads, from /proc): on a shared machine the
 * pinned CPU is not the server's alone, and CPU per call is what throughput on a core of its own
 * would follow.
 *
 *   node bench/server/grpc-ceiling-compare.ts [--reps 3] [--seconds 5] [--concurrency 64]
 *        [--connections 4] [--server-cpu 1] [--client-cpu 0] [--servers inflow,grpc-js,grpc-js-codec,http2,http2-codec,connect-node]
 *        [--methods infer,predict] [--baseline <another inflow checkout> --servers baseline,inflow,…]
 *
 * Needs ghz (`go install github.com/bojand/ghz/cmd/ghz@latest`, looked up on PATH and ~/go/bin)
 * and taskset. Prints one JSON line per cell, then medians and ratios (inflow ÷ ceiling).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { loadavg, homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '64' },
    connections: { type: 'string', default: '4' },
    'server-cpu': { type: 'string', default: '1' },
    'client-cpu': { type: 'string', default: '0' },
    servers: { type: 'string', default: 'inflow,grpc-js,grpc-js-codec,http2,http2-codec,connect-node' },
    methods: { type: 'string', default: 'infer,predict' },
    /** Another checkout of inflow (e.g. a worktree of the previous commit), run as server `baseline`. */
    baseline: { type: 'string' },
  },
});

const root = new URL('../..', import.meta.url).pathname;
const ghz = existsSync(join(homedir(), 'go/bin/ghz')) ? join(homedir(), 'go/bin/ghz') : 'ghz';
const row = Array.from({ length: 64 }, (_, i) => i % 17);
const calls = {
  infer: {
    proto: 'src/protocol/inference/grpc_service.proto',
    call: 'inference.GRPCInferenceService/ModelInfer',
    data: { model_name: 'digits-mlp', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], contents: { fp32_contents: row } }] },
  },
  predict: {
    proto: 'src/protocol/tensorflow_serving/apis/prediction_service.proto',
    call: 'tensorflow.serving.PredictionService/Predict',
    data: {
      model_spec: { name: 'digits-mlp' },
      inputs: { input: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: 1 }, { size: 64 }] }, float_val: row } },
    },
  },
} as const;
type Method = keyof typeof calls;

const serverArgs: Record<string, string[]> = {
  inflow: ['bench/server/grpc-serve.ts'],
  'grpc-js': ['bench/server/grpc-ceiling.ts', '--stack', 'grpc-js', '--port'],
  'grpc-js-codec': ['bench/server/grpc-ceiling.ts', '--stack', 'grpc-js', '--codec', '--port'],
  http2: ['bench/server/grpc-ceiling.ts', '--stack', 'http2', '--port'],
  'http2-codec': ['bench/server/grpc-ceiling.ts', '--stack', 'http2', '--codec', '--port'],
  'connect-node': ['bench/server/grpc-ceiling.ts', '--stack', 'connect-node', '--port'],
};

if (values.baseline) serverArgs.baseline = serverArgs.inflow as string[];

async function startServer(name: string, port: number): Promise<ChildProcess> {
  const args = serverArgs[name];
  if (!args) throw new Error(`unknown server ${name}; expected one of ${Object.keys(serverArgs).join(', ')}`);
  const child = spawn('taskset', ['-c', values['server-cpu'], process.execPath, ...args, String(port)], {
    cwd: name === 'baseline' ? values.baseline : root,
    stdio: ['ignore', 'pipe', 'inherit'],
    // One intra-op thread, as every server in bench/peers/servers-compare.ts: onnxruntime's default
    // pool spins one thread per core after each run, which on the one pinned CPU starves the server.
    env: { INFLOW_ONNX_INTRA_OP_THREADS: '1', ...process.env, INFLOW_LOG_LEVEL: 'silent', ORT_DISABLE_TELEMETRY: '1' },
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('gRPC server on')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}) before listening`)));
  });
  return child;
}

interface Cell {
  rep: number;
  server: string;
  method: Method;
  reqPerSec: number;
  p50us: number;
  p99us: number;
  errors: number;
  /** Server CPU (user + system, all its threads) per answered call, µs: what a call costs whatever else runs. */
  cpuUsPerCall: number;
  load1: number;
}

/** user + system CPU of process `pid` and its threads, µs (/proc/<pid>/stat fields 14 and 15, in clock ticks of 10 ms). */
function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

async function ghzRun(
  method: Method,
  port: number,
  seconds: string,
  concurrency: string,
): Promise<{ rps: number; p50: number; p99: number; errors: number }> {
  const c = calls[method];
  const args = ['-c', values['client-cpu'], ghz, '--insecure', '--proto', c.proto, '-i', 'src/protocol', '--call', c.call];
  args.push('-d', JSON.stringify(c.data), '-c', concurrency, '--connections', values.connections, '-z', `${seconds}s`);
  args.push('--format', 'json', `127.0.0.1:${port}`);
  const { stdout } = await run('taskset', args, { cwd: root, maxBuffer: 64 * 1024 * 1024 });
  const report = JSON.parse(stdout) as {
    rps: number;
    latencyDistribution: { percentage: number; latency: number }[] | null;
    statusCodeDistribution?: Record<string, number>;
  };
  const at = (p: number): number => (report.latencyDistribution?.find((d) => d.percentage === p)?.latency ?? Number.NaN) / 1000;
  const errors = Object.entries(report.statusCodeDistribution ?? {})
    .filter(([code]) => code !== 'OK')
    .reduce((n, [, count]) => n + count, 0);
  return { rps: report.rps, p50: at(50), p99: at(99), errors };
}

const servers = values.servers.split(',');
const methods = values.methods.split(',') as Method[];
const cells: Cell[] = [];
let port = 18600;
for (let rep = 0; rep < Number(values.reps); rep++) {
  const order = servers.map((_, i) => servers[(i + rep) % servers.length] as string);
  for (const server of order) {
    const p = port++;
    const child = await startServer(server, p);
    try {
      // Warm every method up first (JIT), then measure them in an order that alternates per rep.
      for (const method of methods) await ghzRun(method, p, '2', values.concurrency);
      for (const method of rep % 2 === 0 ? methods : [...methods].reverse()) {
        const load1 = Number(loadavg()[0]?.toFixed(2));
        const cpuBefore = cpuMicros(child.pid as number);
        const r = await ghzRun(method, p, values.seconds, values.concurrency);
        const cpu = cpuMicros(child.pid as number) - cpuBefore;
        const cell: Cell = {
          rep,
          server,
          method,
          reqPerSec: Math.round(r.rps),
          p50us: Math.round(r.p50),
          p99us: Math.round(r.p99),
          errors: r.errors,
          cpuUsPerCall: Math.round(cpu / (r.rps * Number(values.seconds))),
          load1,
        };
        cells.push(cell);
        console.log(JSON.stringify(cell));
      }
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
console.log(`\n| method | server | req/s median (reps) | p50 µs | p99 µs | server CPU µs/call (reps) | load1 |`);
console.log('|---|---|---:|---:|---:|---:|---:|');
for (const method of methods) {
  for (const server of servers) {
    const mine = cells.filter((c) => c.method === method && c.server === server);
    const rps = mine.map((c) => c.reqPerSec);
    console.log(
      `| ${method} | ${server} | ${Math.round(median(rps)).toLocaleString('en-US')} (${rps.join(', ')}) | ${Math.round(median(mine.map((c) => c.p50us)))} | ${Math.round(median(mine.map((c) => c.p99us)))} | ${Math.round(median(mine.map((c) => c.cpuUsPerCall)))} (${mine.map((c) => c.cpuUsPerCall).join(', ')}) | ${mine.map((c) => c.load1).join(', ')} |`,
    );
  }
}
for (const subject of ['inflow', 'baseline'].filter((s) => servers.includes(s))) {
  console.log(`\n| method | ceiling | req/s: ${subject} ÷ ceiling, median (per rep) | CPU per call: ceiling ÷ ${subject} (per rep) |`);
  console.log('|---|---|---:|---:|');
  for (const method of methods) {
    for (const ceiling of servers.filter((s) => s !== 'inflow' && s !== 'baseline')) {
      const pick = (rep: number, s: string): Cell | undefined => cells.find((c) => c.rep === rep && c.method === method && c.server === s);
      const reps = Array.from({ length: Number(values.reps) }, (_, rep) => rep);
      const ratios = reps.map((rep) => (pick(rep, subject)?.reqPerSec ?? Number.NaN) / (pick(rep, ceiling)?.reqPerSec ?? Number.NaN));
      const cpu = reps.map((rep) => (pick(rep, ceiling)?.cpuUsPerCall ?? Number.NaN) / (pick(rep, subject)?.cpuUsPerCall ?? Number.NaN));
      const show = (xs: number[]): string => `${median(xs).toFixed(2)} (${xs.map((r) => r.toFixed(2)).join(', ')})`;
      console.log(`| ${method} | ${ceiling} | ${show(ratios)} | ${show(cpu)} |`);
    }
  }
}
