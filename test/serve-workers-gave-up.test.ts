/**
 * `inflow serve --workers n` when its workers keep dying: after five fast crashes in a row the
 * primary stops and the command exits with code 3 (a dependency unavailable), saying why
 * (src/server/README.md "One process per core"). The crashes are real: the test SIGKILLs each
 * worker process as soon as it appears.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = join(import.meta.dirname, '..');

/** Child pids of `pid` (Linux /proc). */
async function childrenOf(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const out: number[] = [];
  for (const t of tasks) {
    const text = await readFile(`/proc/${pid}/task/${t}/children`, 'utf8').catch(() => '');
    for (const p of text.split(' ').filter(Boolean)) out.push(Number(p));
  }
  return out;
}

describe('inflow serve --workers', { skip: process.platform === 'linux' ? false : 'reads /proc to find the workers' }, () => {
  it('exits with code 3 and says why when its workers keep crashing', async () => {
    const repository = await mkdtemp(join(tmpdir(), 'inflow-gave-up-'));
    await cp(join(ROOT, 'models', 'repository', 'digits-mlp'), join(repository, 'digits-mlp'), { recursive: true });
    const child = spawn(
      process.execPath,
      [join(ROOT, 'bin', 'inflow.js'), 'serve', '--model-repository', repository, '--workers', '2', '--rest-port', '0', '--grpc-port', '0'],
      { env: { ...process.env, INFLOW_LOG_LEVEL: 'silent', INFLOW_ADMIN_TOKEN: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let killed = 0;
    let done = false;
    void exited.then(() => (done = true));
    try {
      const deadline = Date.now() + 90_000;
      // Up first: a worker failing before the cluster is up is another path (its error, at once).
      while (!/with 2 workers/.test(stdout) && !done && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.match(stdout, /with 2 workers/, `the cluster came up:\n${stdout}\n${stderr}`);
      while (!done && Date.now() < deadline) {
        for (const pid of await childrenOf(child.pid as number)) {
          try {
            process.kill(pid, 'SIGKILL');
            killed++;
          } catch {
            // Already gone.
          }
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      const code = await exited;
      assert.equal(code, 3, `exit code; stdout:\n${stdout}\nstderr:\n${stderr}`);
      assert.match(stderr + stdout, /gave up restarting cluster workers: 5 workers in a row exited less than 10000 ms after they started/);
      assert.ok(killed >= 5, `${killed} workers killed`);
    } finally {
      if (!done) child.kill('SIGKILL');
      await rm(repository, { recursive: true, force: true });
    }
  });
});
