import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { RunningModelServer } from './model-server.ts';
import { createRestartPolicy, startServerCluster } from './server-cluster.ts';

describe('restart policy of the server cluster', () => {
  it('replaces a worker that ran long after the initial delay, and that resets the run of fast crashes', () => {
    const policy = createRestartPolicy({ fastCrashMs: 1000, maxFastCrashes: 3, initialDelayMs: 100, maxDelayMs: 10_000 });
    assert.deepEqual(policy.onExit(10), { restart: true, delayMs: 100 });
    assert.deepEqual(policy.onExit(10), { restart: true, delayMs: 200 });
    assert.deepEqual(policy.onExit(5000), { restart: true, delayMs: 100 });
    assert.deepEqual(policy.onExit(10), { restart: true, delayMs: 100 });
  });

  it('doubles the delay with each fast crash in a row, up to the cap', () => {
    const policy = createRestartPolicy({ fastCrashMs: 1000, maxFastCrashes: 10, initialDelayMs: 100, maxDelayMs: 500 });
    const delays = Array.from({ length: 6 }, () => {
      const decision = policy.onExit(999);
      assert.ok(decision.restart);
      return decision.delayMs;
    });
    assert.deepEqual(delays, [100, 200, 400, 500, 500, 500]);
  });

  it('gives up at the maxFastCrashes-th fast crash in a row, saying why', () => {
    const policy = createRestartPolicy({ fastCrashMs: 1000, maxFastCrashes: 3 });
    assert.equal(policy.onExit(0).restart, true);
    assert.equal(policy.onExit(0).restart, true);
    assert.deepEqual(policy.onExit(0), {
      restart: false,
      fastCrashes: 3,
      reason: '3 workers in a row exited less than 1000 ms after they started',
    });
  });

  it('rejects options that are not counts or durations', () => {
    assert.throws(() => createRestartPolicy({ maxFastCrashes: 0 }), {
      code: 'INVALID_CONFIG',
      message: /maxFastCrashes must be an integer ≥ 1, got 0/,
    });
    assert.throws(() => createRestartPolicy({ initialDelayMs: -1 }), {
      code: 'INVALID_CONFIG',
      message: /initialDelayMs must be a number ≥ 0/,
    });
  });
});

describe('startServerCluster', () => {
  const never = (): Promise<RunningModelServer> => Promise.reject(new Error('no worker may start in this test'));

  it('rejects a worker count below one before forking anything', async () => {
    await assert.rejects(startServerCluster({ workers: 0, startWorker: never }), {
      code: 'INVALID_ARGUMENT',
      message: 'workers must be an integer ≥ 1, got 0',
    });
  });

  it('refuses an admin API with more than one worker, saying why', async () => {
    await assert.rejects(startServerCluster({ workers: 2, startWorker: never, adminEnabled: true }), {
      code: 'FAILED_PRECONDITION',
      message: /admin API cannot be used with 2 workers: an admin call .* would reach one worker only/,
    });
  });

  describe('over workers that crash right after they listen', () => {
    let dir: string;
    let script: string;

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'inflow-cluster-unit-'));
      script = join(dir, 'crashing-cluster.mjs');
      const library = pathToFileURL(join(import.meta.dirname, 'server-cluster.ts')).href;
      const metrics = pathToFileURL(join(import.meta.dirname, '..', 'observability', 'metrics.ts')).href;
      // Primary and workers both run this script (cluster.fork re-runs it). A worker "serves" a
      // fake server, reports ready, then crashes: the primary must give up after 3 such crashes.
      await writeFile(
        script,
        `import cluster from 'node:cluster';
import { startServerCluster } from ${JSON.stringify(library)};
import { createInferenceMetrics } from ${JSON.stringify(metrics)};
const fake = () => ({
  inference: { repository: { models: () => ['m'] }, metrics: createInferenceMetrics() },
  restAddress: '127.0.0.1:1', grpcAddress: undefined, close: async () => {},
});
let forks = 0;
if (cluster.isPrimary) cluster.on('fork', () => forks++);
const started = await startServerCluster({
  workers: 1,
  startWorker: async () => fake(),
  restart: { fastCrashMs: 60000, maxFastCrashes: 3, initialDelayMs: 0 },
});
if (started.role === 'worker') {
  // After the ready message is on its way: a crash of a worker that was serving.
  setImmediate(() => process.exit(3));
} else {
  const code = await started.done;
  console.log(JSON.stringify({ code, failure: started.failure, forks }));
}
`,
      );
    });
    after(() => rm(dir, { recursive: true, force: true }));

    it('replaces each crashed worker, then gives up after maxFastCrashes fast crashes and ends with code 1', async () => {
      const { stdout } = await promisify(execFile)(process.execPath, [script], { timeout: 60_000 });
      const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { code: number; failure: string; forks: number };
      assert.deepEqual(result, {
        code: 1,
        failure: 'gave up restarting cluster workers: 3 workers in a row exited less than 60000 ms after they started',
        forks: 3,
      });
    });
  });
});
