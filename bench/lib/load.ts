/**
 * The neutral load generators of the model-server comparison, as child processes pinned to their
 * own CPUs: wrk (HTTP/1.1 keep-alive, one connection per client, a Lua script posts a fixed body
 * and prints the summary as JSON) and ghz (gRPC, unary calls from a JSON request).
 */
import { writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { execFileAsync } from './process.ts';

/** Percentiles every run reports (wrk can give any; ghz gives 10 … 99). */
export const PERCENTILES = [10, 25, 50, 75, 90, 95, 99] as const;

/** One load run's outcome; latencies in microseconds. */
export interface LoadResult {
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  /** Transport errors + non-2xx (wrk) or non-OK statuses (ghz), minus ghz's end-of-run `transport is closing`. */
  readonly errors: number;
  readonly p50us: number;
  readonly p99us: number;
  /** [percentile, µs] pairs, for the latency CDF plots. */
  readonly cdf: ReadonlyArray<readonly [number, number]>;
}

export const GHZ = process.env.GHZ ?? join(homedir(), 'go', 'bin', 'ghz');

/** Writes a wrk Lua script that posts `bodyFile` with `headers` and prints `RESULT {json}` at the end. */
export async function wrkScript(path: string, bodyFile: string, headers: Record<string, string>): Promise<string> {
  const h = Object.entries(headers)
    .map(([k, v]) => `wrk.headers["${k}"] = "${v}"`)
    .join('\n');
  const pcts = PERCENTILES.map((p) => `string.format("[%g, %d]", ${p}, latency:percentile(${p}))`).join(', ');
  await writeFile(
    path,
    `wrk.method = "POST"
local f = io.open("${bodyFile}", "rb"); wrk.body = f:read("*a"); f:close()
${h}
done = function(summary, latency, requests)
  local cdf = table.concat({${pcts}}, ",")
  io.write(string.format('RESULT {"requests": %d, "seconds": %f, "errors": %d, "non2xx": %d, "cdf": [%s]}\\n',
    summary.requests, summary.duration / 1e6, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, cdf))
end
`,
  );
  return path;
}

/** wrk -t1 -c<clients> for `seconds`, pinned to `cpus`. */
export async function runWrk(url: string, script: string, clients: number, seconds: number, cpus?: string): Promise<LoadResult> {
  const args = ['-t1', `-c${clients}`, `-d${seconds}s`, '--timeout', '10s', '-s', script, url];
  const { stdout } = await execFileAsync(cpus === undefined ? 'wrk' : 'taskset', cpus === undefined ? args : ['-c', cpus, 'wrk', ...args], {
    maxBuffer: 16 * 1024 * 1024,
  });
  const line = /RESULT (.*)/.exec(stdout)?.[1];
  if (line === undefined) throw new Error(`wrk printed no result:\n${stdout}`);
  const r = JSON.parse(line) as { requests: number; seconds: number; errors: number; non2xx: number; cdf: Array<[number, number]> };
  const at = (p: number): number => r.cdf.find(([q]) => q === p)?.[1] ?? Number.NaN;
  return {
    requests: r.requests,
    seconds: r.seconds,
    rps: r.requests / r.seconds,
    errors: r.errors + r.non2xx,
    p50us: at(50),
    p99us: at(99),
    cdf: r.cdf,
  };
}

export interface GhzCall {
  /** .proto file relative to `importPath`. */
  readonly proto: string;
  readonly importPath: string;
  readonly call: string;
  /** The request as JSON text. */
  readonly data: string;
}

/** ghz -c <clients> over min(clients, 4) connections for `seconds`, pinned to `cpus`. */
export async function runGhz(target: string, c: GhzCall, clients: number, seconds: number, cpus?: string): Promise<LoadResult> {
  const args = [
    '--insecure',
    '--proto',
    c.proto,
    '-i',
    c.importPath,
    '--call',
    c.call,
    '-d',
    c.data,
    '-c',
    String(clients),
    '--connections',
    String(Math.min(clients, 4)),
    '-z',
    `${seconds}s`,
    '--timeout',
    '10s',
    '--format',
    'json',
    target,
  ];
  const { stdout } = await execFileAsync(cpus === undefined ? GHZ : 'taskset', cpus === undefined ? args : ['-c', cpus, GHZ, ...args], {
    cwd: c.importPath,
    maxBuffer: 256 * 1024 * 1024,
  });
  const r = JSON.parse(stdout) as {
    count: number;
    total: number;
    rps: number;
    errorDistribution?: Record<string, number>;
    statusCodeDistribution?: Record<string, number>;
    latencyDistribution: Array<{ percentage: number; latency: number }> | null;
  };
  // A -z run ends by closing the connections under the calls still in flight: ghz counts those as
  // `transport is closing` / `the client connection is closing` errors; they are not the server's.
  const closing = Object.entries(r.errorDistribution ?? {})
    .filter(([k]) => /closing/.test(k))
    .reduce((a, [, v]) => a + v, 0);
  const notOk = Object.entries(r.statusCodeDistribution ?? {})
    .filter(([k]) => k !== 'OK')
    .reduce((a, [, v]) => a + v, 0);
  const cdf = (r.latencyDistribution ?? []).map((d) => [d.percentage, d.latency / 1000] as const);
  const at = (p: number): number => cdf.find(([q]) => q === p)?.[1] ?? Number.NaN;
  const ok = r.count - notOk;
  const seconds_ = r.total / 1e9;
  return { requests: ok, seconds: seconds_, rps: ok / seconds_, errors: Math.max(0, notOk - closing), p50us: at(50), p99us: at(99), cdf };
}
