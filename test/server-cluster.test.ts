/**
 * `inflow serve --workers 2` as a user runs it: a real primary process forking two real workers
 * that share one REST and one gRPC port (both picked by the primary: `--rest-port 0 --grpc-port 0`).
 * Which worker answered is read from /metrics (`inflow_cluster_worker_info{pid}`), each scrape on a
 * new connection. No sleeps: every wait is on a process event or a log line, bounded by the test's timeout.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { GrpcServiceName } from '../src/server/grpc/grpc-protos.ts';
import { createGrpcTestClient } from '../src/server/grpc/grpc-test-client.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'inflow.js');
const MODELS = join(import.meta.dirname, '..', 'models');
const ENV = { ...process.env, ORT_DISABLE_TELEMETRY: '1', INFLOW_LOG_LEVEL: 'info' };
const ROWS = 3;
/** Bound on a clean shutdown of the whole cluster, ms (drain + unload + exit, both workers). */
const SHUTDOWN_BOUND_MS = 15_000;

interface SampleTensor {
  shape: number[];
  data: number[];
}
interface Sample {
  inputs: { input: SampleTensor };
  outputs: { label: SampleTensor; probabilities: SampleTensor };
}

/** A log line of the cluster (pino JSON on stderr, primary and workers interleaved). */
type LogLine = Record<string, unknown> & { msg?: string };

/** Collects the JSON lines of a stream and resolves waits on them (past lines count too). */
function logWatcher(stream: NodeJS.ReadableStream): {
  next(what: string, match: (line: LogLine) => boolean, from?: number): Promise<LogLine>;
  readonly count: number;
} {
  const lines: LogLine[] = [];
  const waiters = new Set<() => void>();
  let ended = false;
  createInterface({ input: stream })
    .on('line', (text) => {
      try {
        lines.push(JSON.parse(text) as LogLine);
      } catch {
        lines.push({ msg: text });
      }
      for (const waiter of waiters) waiter();
    })
    .on('close', () => {
      ended = true;
      for (const waiter of waiters) waiter();
    });
  return {
    get count() {
      return lines.length;
    },
    next(what, match, from = 0) {
      return new Promise<LogLine>((resolve, reject) => {
        let seen = from;
        const check = (): void => {
          for (; seen < lines.length; seen++) {
            const line = lines[seen] as LogLine;
            if (match(line)) {
              waiters.delete(check);
              resolve(line);
              return;
            }
          }
          if (ended) {
            waiters.delete(check);
            reject(new Error(`the cluster's stderr ended before: ${what}`));
          }
        };
        waiters.add(check);
        check();
      });
    },
  };
}

/** GET on a new connection (so the primary hands it to the next worker). */
function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

function post(url: string, json: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(json);
    request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end(payload);
  });
}

/** Per worker pid, its /metrics text, scraping on new connections until `count` workers were seen. */
async function scrapeWorkers(rest: string, count: number, attempts = 40): Promise<Map<number, string>> {
  const byPid = new Map<number, string>();
  for (let i = 0; i < attempts && byPid.size < count; i++) {
    const { body } = await get(`http://${rest}/metrics`);
    const pid = /inflow_cluster_worker_info\{pid="(\d+)"/.exec(body)?.[1];
    assert.ok(pid, 'every worker exposes inflow_cluster_worker_info on /metrics');
    byPid.set(Number(pid), body);
  }
  return byPid;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function assertClose(actual: readonly number[], expected: readonly number[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  actual.forEach((v, i) => assert.ok(Math.abs(v - (expected[i] as number)) <= 1e-5, `${what}[${i}]: ${v} vs ${expected[i]}`));
}

describe('inflow serve --workers 2', () => {
  let repo: string;
  let child: ChildProcess;
  let exited: Promise<[number | null, NodeJS.Signals | null]>;
  let log: ReturnType<typeof logWatcher>;
  let rest: string;
  let grpcAddress: string;
  let pids: number[];
  let sample: Sample;
  const everyPid = new Set<number>();

  before(async () => {
    repo = await mkdtemp(join(tmpdir(), 'inflow-cluster-'));
    await cp(join(MODELS, 'repository', 'digits-mlp'), join(repo, 'digits-mlp'), { recursive: true });
    sample = JSON.parse(await readFile(join(MODELS, 'samples', 'digits-mlp.json'), 'utf8')) as Sample;
    child = spawn(
      process.execPath,
      [BIN, 'serve', '--model-repository', repo, '--workers', '2', '--host', '127.0.0.1', '--rest-port', '0', '--grpc-port', '0'],
      { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    log = logWatcher(child.stderr as NodeJS.ReadableStream);
    const banner: string[] = [];
    for await (const line of createInterface({ input: child.stdout as NodeJS.ReadableStream })) {
      banner.push(line);
      if (line.startsWith('  gRPC  ')) break;
    }
    child.stdout?.resume();
    const text = banner.join('\n');
    rest = /REST {2}http:\/\/(\S+)/.exec(text)?.[1] ?? assert.fail(`no REST address in:\n${text}`);
    grpcAddress = /gRPC {2}(\S+)/.exec(text)?.[1] ?? assert.fail(`no gRPC address in:\n${text}`);
    pids = (/with 2 workers \(pids (\d+), (\d+)\)/.exec(text)?.slice(1) ?? assert.fail(`no worker pids in:\n${text}`)).map(Number);
    for (const pid of pids) everyPid.add(pid);
  });

  after(async () => {
    // Only after a failed test is anything left: end it without grace.
    for (const pid of [child.pid, ...everyPid]) if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
    await rm(repo, { recursive: true, force: true });
  });

  it('runs two worker processes that answer on the one REST port', async () => {
    assert.equal(new Set(pids).size, 2);
    assert.ok(!pids.includes(child.pid ?? -1), 'the workers are processes of their own');
    const seen = await scrapeWorkers(rest, 2);
    assert.deepEqual([...seen.keys()].sort(), [...pids].sort());
  });

  it('answers TF REST :predict with the reference predictions, spread over both workers', async () => {
    const rows = sample.inputs.input.data.slice(0, ROWS * 64);
    const instances = Array.from({ length: ROWS }, (_, i) => rows.slice(i * 64, (i + 1) * 64));
    const calls = 4;
    // A new connection per request: round-robin hands them to both workers.
    for (let i = 0; i < calls; i++) {
      const { status, body } = await post(`http://${rest}/v1/models/digits-mlp:predict`, { instances });
      assert.equal(status, 200, body);
      const predictions = (JSON.parse(body) as { predictions: { label: number; probabilities: number[] }[] }).predictions;
      assert.deepEqual(
        predictions.map((p) => p.label),
        sample.outputs.label.data.slice(0, ROWS),
      );
      assertClose(
        predictions.flatMap((p) => p.probabilities),
        sample.outputs.probabilities.data.slice(0, ROWS * 10),
        'probabilities',
      );
    }
    const predictOk = /inflow_http_requests_total\{route="tf_predict",code="200"\} (\d+)/;
    const counts = [...(await scrapeWorkers(rest, 2)).values()].map((text) => Number(predictOk.exec(text)?.[1] ?? 0));
    assert.equal(
      counts.reduce((a, b) => a + b, 0),
      calls,
    );
    assert.ok(
      counts.every((n) => n > 0),
      `both workers answer REST calls (per worker: ${counts.join(', ')})`,
    );
  });

  it('answers gRPC Predict on the one gRPC port, spread over both workers', async () => {
    const calls = 6;
    for (let i = 0; i < calls; i++) {
      // A channel of its own per call (no shared subchannel): each is a new connection.
      const client = createGrpcTestClient(grpcAddress, undefined, { 'grpc.use_local_subchannel_pool': 1 });
      try {
        const response = await client.unary<{ outputs: { label: { int64_val: string[] }; probabilities: { float_val: number[] } } }>(
          GrpcServiceName.PREDICTION,
          'Predict',
          {
            model_spec: { name: 'digits-mlp' },
            inputs: {
              input: {
                dtype: 'DT_FLOAT',
                tensor_shape: { dim: [{ size: ROWS }, { size: 64 }] },
                float_val: sample.inputs.input.data.slice(0, ROWS * 64),
              },
            },
          },
          { deadline: 10_000 },
        );
        assert.deepEqual(response.outputs.label.int64_val.map(Number), sample.outputs.label.data.slice(0, ROWS));
        assertClose(response.outputs.probabilities.float_val, sample.outputs.probabilities.data.slice(0, ROWS * 10), 'probabilities');
      } finally {
        client.close();
      }
    }
    // Each worker counts its own gRPC calls: both must have answered some.
    const predictOk = /inflow_grpc_requests_total\{method="tensorflow\.serving\.PredictionService\/Predict",code="OK"\} (\d+)/;
    const counts = [...(await scrapeWorkers(rest, 2)).values()].map((text) => Number(predictOk.exec(text)?.[1] ?? 0));
    assert.equal(counts.length, 2);
    assert.equal(
      counts.reduce((a, b) => a + b, 0),
      calls,
    );
    assert.ok(
      counts.every((n) => n > 0),
      `both workers answer gRPC calls (per worker: ${counts.join(', ')})`,
    );
  });

  it('replaces a killed worker and keeps answering meanwhile', async () => {
    const [victim, survivor] = pids as [number, number];
    const from = log.count;
    process.kill(victim, 'SIGKILL');
    await log.next('the primary sees the worker exit', (l) => l.msg === 'cluster worker exited' && l.workerPid === victim, from);
    // One worker serves until the replacement listens.
    const during = await get(`http://${rest}/v1/models/digits-mlp`);
    assert.equal(during.status, 200, during.body);
    const listening = await log.next(
      'a replacement worker listens',
      (l) => l.msg === 'cluster worker listening' && typeof l.workerPid === 'number' && !pids.includes(l.workerPid),
      from,
    );
    const replacement = listening.workerPid as number;
    everyPid.add(replacement);
    assert.equal(alive(victim), false);
    const seen = await scrapeWorkers(rest, 2);
    assert.deepEqual([...seen.keys()].sort(), [survivor, replacement].sort());
    pids = [survivor, replacement];
  });

  it('stops every worker and exits 0 within the bound on SIGTERM', async () => {
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the cluster did not exit within ${SHUTDOWN_BOUND_MS} ms of SIGTERM`)), SHUTDOWN_BOUND_MS);
    });
    try {
      const [code, signal] = await Promise.race([exited, bound]);
      assert.deepEqual({ code, signal }, { code: 0, signal: null });
    } finally {
      clearTimeout(timer);
    }
    for (const pid of everyPid) assert.equal(alive(pid), false, `worker ${pid} has exited`);
    const failed = await log
      .next('a worker that stopped with a non-zero code', (l) => l.msg === 'cluster worker stopped' && l.code !== 0)
      .catch(() => undefined);
    assert.equal(failed, undefined, 'no worker stopped with a non-zero code');
  });
});

describe('inflow serve --workers: start-up errors', () => {
  const run = promisify(execFile);
  async function inflow(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stderr: string }> {
    try {
      await run(process.execPath, [BIN, ...args], { env: { ...ENV, ...env }, timeout: 60_000 });
      return { code: 0, stderr: '' };
    } catch (error) {
      const e = error as { code: number; stderr: string };
      return { code: e.code, stderr: e.stderr };
    }
  }

  it('refuses the admin API with more than one worker, saying why', async () => {
    const { code, stderr } = await inflow(['serve', '--model-repository', MODELS, '--workers', '2'], { INFLOW_ADMIN_TOKEN: 'secret' });
    assert.equal(code, 2);
    assert.match(stderr, /INFLOW_ADMIN_TOKEN is set, but the admin API cannot be used with --workers 2: .*reach one worker only/);
  });

  it('rejects a worker count that is not a positive integer or auto', async () => {
    const { code, stderr } = await inflow(['serve', '--model-repository', MODELS, '--workers', '0']);
    assert.equal(code, 2);
    assert.equal(stderr.trim(), 'inflow: --workers must be "auto" or an integer 1-256, got "0"');
  });

  it("exits non-zero with the workers' reason when they cannot listen", async () => {
    const repo = await mkdtemp(join(tmpdir(), 'inflow-cluster-busy-'));
    const busy: Server = createServer();
    try {
      await cp(join(MODELS, 'repository', 'digits-mlp'), join(repo, 'digits-mlp'), { recursive: true });
      busy.listen(0, '127.0.0.1');
      await once(busy, 'listening');
      const port = String((busy.address() as { port: number }).port);
      const args = ['serve', '--model-repository', repo, '--workers', '2', '--host', '127.0.0.1', '--rest-port', port, '--no-grpc'];
      const { code, stderr } = await inflow(args);
      assert.notEqual(code, 0, stderr);
      // serve's primary checks the port before forking (fail fast); a worker that still cannot listen reports EADDRINUSE.
      assert.match(stderr, /inflow: (cluster worker \d+ failed to start: .*EADDRINUSE|127\.0\.0\.1:\d+ is already in use)/);
    } finally {
      busy.close();
      await rm(repo, { recursive: true, force: true });
    }
  });
});
