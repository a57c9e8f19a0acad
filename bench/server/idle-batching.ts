/**
 * What batching costs a lone caller (issue: "batch when busy, not when idle"): digits-mlp over
 * TF REST JSON, one row per request, wrk at 1 and 64 connections, for the batcher as the peer
 * comparison configures it (maxBatchSize 64, maxDelayMicros 500) with `idleDispatch` on (the
 * default) and off (the fixed delay of before), and with batching off (maxBatchSize 1). Same
 * process, same model file, cells interleaved per repetition so machine load hits all alike.
 *
 *   ORT_DISABLE_TELEMETRY=1 INFLOW_LOG_LEVEL=silent node bench/server/idle-batching.ts [--seconds 4] [--reps 2]
 * Needs wrk (apt-get install -y wrk).
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { silentLogger } from '../../src/observability/logger.ts';
import { loadServable, setRuntimeLogger } from '../../src/runtime/index.ts';
import { startModelServer } from '../../src/server/model-server.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '4' }, reps: { type: 'string', default: '2' } } });
const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const MODEL = join(ROOT, 'models', 'repository', 'digits-mlp', '1', 'model.onnx');
const ROW = Array.from({ length: 64 }, (_, i) => (i * 7) % 17);
const dir = await mkdtemp(join(tmpdir(), 'inflow-idle-batching-'));
await writeFile(join(dir, 'tf.body'), JSON.stringify({ instances: [ROW] }));
const script = join(dir, 'tf.lua');
await writeFile(
  script,
  `wrk.method = "POST"
local f = io.open("${join(dir, 'tf.body')}", "rb"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  io.write(string.format('RESULT {"requests": %d, "seconds": %f, "errors": %d, "p50": %d, "p99": %d}\\n',
    summary.requests, summary.duration / 1e6, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout + summary.errors.status,
    latency:percentile(50), latency:percentile(99)))
end
`,
);
setRuntimeLogger(silentLogger);

const CONFIGS = {
  'batching on, idle dispatch (default)': '{ maxBatchSize: 64, maxDelayMicros: 500, idleDispatch: true }',
  'batching on, fixed 500 µs delay': '{ maxBatchSize: 64, maxDelayMicros: 500, idleDispatch: false }',
  'batching off (maxBatchSize 1)': '{ maxBatchSize: 1 }',
} as const;
type Name = keyof typeof CONFIGS;
const results = new Map<string, { rps: number[]; p50: number[]; p99: number[]; errors: number }>();

for (let rep = 0; rep < Number(values.reps); rep++) {
  for (const [name, batching] of Object.entries(CONFIGS) as [Name, string][]) {
    const repo = await mkdtemp(join(tmpdir(), 'inflow-idle-batching-repo-'));
    await cp(MODEL, join(repo, 'digits-mlp', '1', 'model.onnx'));
    await writeFile(
      join(repo, 'digits-mlp', 'config.yaml'),
      `platform: onnx\nbatching: ${batching}\nruntime: { file: model.onnx, intraOpThreads: 1 }\n`,
    );
    const server = await startModelServer({
      modelRepository: repo,
      load: loadServable,
      watch: false,
      rest: { host: '127.0.0.1', port: 0, maxConcurrentRequests: 4096 },
    });
    while (server.inference.repository.available('digits-mlp').length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
    const url = `http://${server.restAddress}/v1/models/digits-mlp:predict`;
    await run('wrk', ['-t1', '-c8', '-d1s', '-s', script, url]); // warm-up
    for (const clients of [1, 64]) {
      const { stdout } = await run('wrk', ['-t1', `-c${clients}`, `-d${values.seconds}s`, '-s', script, url]);
      const r = JSON.parse(/RESULT (.*)/.exec(stdout)?.[1] ?? '{}') as {
        requests: number;
        seconds: number;
        errors: number;
        p50: number;
        p99: number;
      };
      const key = `${name}|${clients}`;
      const cell = results.get(key) ?? { rps: [], p50: [], p99: [], errors: 0 };
      cell.rps.push(r.requests / r.seconds);
      cell.p50.push(r.p50);
      cell.p99.push(r.p99);
      cell.errors += r.errors;
      results.set(key, cell);
    }
    await server.close();
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? (s[(s.length - 1) / 2] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
console.log(
  `\ndigits-mlp, TF REST JSON, 1 row per request, ${values.seconds} s per cell, medians of ${values.reps} reps, node ${process.version}\n`,
);
console.log('| batcher | req/s c=1 | p50 µs c=1 | p99 µs c=1 | req/s c=64 | p50 µs c=64 | p99 µs c=64 | errors |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const name of Object.keys(CONFIGS)) {
  const one = results.get(`${name}|1`);
  const many = results.get(`${name}|64`);
  if (!one || !many) continue;
  console.log(
    `| ${name} | ${fmt(median(one.rps))} | ${fmt(median(one.p50))} | ${fmt(median(one.p99))} | ${fmt(median(many.rps))} | ${fmt(median(many.p50))} | ${fmt(median(many.p99))} | ${one.errors + many.errors} |`,
  );
}
