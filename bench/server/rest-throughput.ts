/**
 * Throughput and latency of the REST transport: digits-mlp, one row per request, 64 keep-alive
 * connections, driven by `wrk` (a separate process, Lua script for the POST body) against TF
 * Serving `:predict` (row format) and OIP v2 `/infer` (JSON), plus `GET /v2/health/live` as the
 * transport's floor. Prints requests/s and p50/p99 per endpoint. Not part of `npm test`.
 *
 *   ORT_DISABLE_TELEMETRY=1 node bench/server/rest-throughput.ts [--connections 64] [--threads 2] [--seconds 10]
 *
 * Needs `wrk` on PATH (Debian: apt-get install -y wrk).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { silentLogger } from '../../src/observability/logger.ts';
import { loadServable, setRuntimeLogger } from '../../src/runtime/index.ts';
import { startRestServer } from '../../src/server/rest/index.ts';
import { createLocalInference } from '../../src/serving/local-inference.ts';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '64' },
    threads: { type: 'string', default: '2' },
    seconds: { type: 'string', default: '10' },
  },
});

const run = promisify(execFile);
const ROW = Array.from({ length: 64 }, (_, i) => (i * 7) % 17);
const dir = await mkdtemp(join(tmpdir(), 'inflow-bench-rest-'));

/** wrk script: one POST body, and a done() that prints the latency percentiles as JSON (µs). */
async function script(name: string, body: string | undefined): Promise<string> {
  const path = join(dir, `${name}.lua`);
  const request =
    body === undefined ? '' : `wrk.method = "POST"\nwrk.body = ${JSON.stringify(body)}\nwrk.headers["Content-Type"] = "application/json"\n`;
  await writeFile(
    path,
    `${request}done = function(summary, latency, requests)
  io.write(string.format('RESULT {"requests": %d, "seconds": %f, "errors": %d, "non2xx": %d, "p50": %d, "p99": %d}\\n',
    summary.requests, summary.duration / 1e6, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(99)))
end
`,
  );
  return path;
}

setRuntimeLogger(silentLogger);
const inference = await createLocalInference({
  modelRepository: join(import.meta.dirname, '..', '..', 'models', 'repository'),
  load: loadServable,
  watch: false,
  settleMs: 0,
});
const server = await startRestServer(inference, { host: '127.0.0.1', port: 0 });
const base = `http://127.0.0.1:${server.port}`;

const cases: Array<[string, string, string | undefined]> = [
  ['GET /v2/health/live', '/v2/health/live', undefined],
  ['TF REST :predict (1 row)', '/v1/models/digits-mlp:predict', JSON.stringify({ instances: [ROW] })],
  [
    'OIP JSON /infer (1 row)',
    '/v2/models/digits-mlp/infer',
    JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], data: ROW }] }),
  ],
];

console.log(`wrk -t${values.threads} -c${values.connections} -d${values.seconds}s, node ${process.version}`);
for (const [name, path, body] of cases) {
  const lua = await script(name.replace(/\W+/g, '-'), body);
  // A short warm-up, then the measured run.
  await run('wrk', ['-t1', '-c8', '-d2s', '-s', lua, base + path]);
  const { stdout } = await run('wrk', [
    '-t',
    values.threads,
    '-c',
    values.connections,
    '-d',
    `${values.seconds}s`,
    '--latency',
    '-s',
    lua,
    base + path,
  ]);
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`wrk printed no result:\n${stdout}`);
  const r = JSON.parse(line.slice(7)) as { requests: number; seconds: number; errors: number; non2xx: number; p50: number; p99: number };
  console.log(
    `${name.padEnd(28)} ${(r.requests / r.seconds).toFixed(0).padStart(7)} req/s   p50 ${(r.p50 / 1000).toFixed(2)} ms   p99 ${(r.p99 / 1000).toFixed(2)} ms   errors ${r.errors}   non-2xx ${r.non2xx}`,
  );
}
await server.close(1000);
await inference.close();
