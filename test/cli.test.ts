/** The `inflow` command as a user runs it: a real process, real output, real exit codes. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { brokerOrSkip } from './setup/broker.ts';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', 'bin', 'inflow.js');

async function inflow(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('inflow CLI', () => {
  it('runs the demo on the in-process log and processes every record exactly once', async () => {
    const { code, stdout } = await inflow(['demo', '--records', '3000']);
    assert.equal(code, 0);
    assert.match(stdout, /on the in-process log: 3000 records/);
    assert.match(stdout, /transformed 3000 readings exactly-once/);
    assert.match(stdout, /consumer lag after commit: 0;/);
  });

  it('answers a bad argument with one line and exit code 2', async () => {
    const bad = await inflow(['demo', '--records', 'many']);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr.trim(), 'inflow: --records must be a positive integer, got "many"');
    const unknown = await inflow(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
  });

  it('prints help with examples', async () => {
    const { code, stdout } = await inflow(['kafka', '--help']);
    assert.equal(code, 0);
    assert.match(stdout, /Examples:\n {2}inflow kafka up/);
  });

  it('starts, reports and stops a detached local broker (inflow kafka up|status|down)', {
    skip: brokerOrSkip() === undefined && 'no Java: see the global setup message',
  }, async () => {
    const env = { INFLOW_BROKER_HOME: await mkdtemp(join(tmpdir(), 'inflow-broker-home-')) };
    assert.deepEqual(JSON.parse((await inflow(['kafka', 'status', '--json'], env)).stdout), { running: false });
    const up = await inflow(['kafka', 'up', '--json'], env);
    assert.equal(up.code, 0, up.stderr);
    const state = JSON.parse(up.stdout.trim().split('\n').at(-1) ?? '{}') as { running: boolean; bootstrapServers: string; pid: number };
    assert.equal(state.running, true);
    assert.match(state.bootstrapServers, /^127\.0\.0\.1:\d+$/);
    const status = JSON.parse((await inflow(['kafka', 'status', '--json'], env)).stdout) as { running: boolean; pid: number };
    assert.deepEqual([status.running, status.pid], [true, state.pid]);
    const down = JSON.parse((await inflow(['kafka', 'down', '--json'], env)).stdout) as { running: boolean; result: string };
    assert.deepEqual(down, { running: false, result: 'stopped' });
    assert.deepEqual(JSON.parse((await inflow(['kafka', 'status', '--json'], env)).stdout), { running: false });
  });

  it('rejects an unknown kafka action', async () => {
    const { code, stderr } = await inflow(['kafka', 'sideways']);
    assert.equal(code, 2);
    assert.match(stderr, /expected up, down or status/);
  });
});
