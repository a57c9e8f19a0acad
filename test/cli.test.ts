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
  it('runs the demo on the in-process log: both modes score every event against the labels', async () => {
    // The 450 held-out digits once each: every row scored, without a backlog a loaded machine
    // needs many seconds to drain. Warnings reach stderr, so a failure says why (a dead-lettered
    // prediction, a stall) rather than only the exit code.
    const { code, stdout, stderr } = await inflow(['demo', '--records', '450', '--rate', '3000', '--rest-port', '0', '--grpc-port', '0'], {
      INFLOW_LOG_LEVEL: 'warn',
    });
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^inflow demo on the in-process log \(no cluster, no Java\): 450 events at 3000\/s$/m);
    assert.match(stdout, /^dashboard: http:\/\/127\.0\.0\.1:\d+\/dashboard\/#admin=[0-9a-f]{24}$/m);
    assert.match(stdout, /^MODE {6}MODEL RUNS {8}RECORDS {2}RECORDS\/S {2}P50 .* ACCURACY$/m);
    assert.match(stdout, /^embedded {2}in the pipeline {7}450 /m);
    assert.match(stdout, /^remote {4}server, oip-grpc {6}450 /m);
    // The same model on the same events: the same accuracy in both modes (digits-mlp: 97.3 % held out).
    const accuracy = [...stdout.matchAll(/ (\d+\.\d\d)%$/gm)].map((m) => Number(m[1]));
    assert.equal(accuracy.length, 2, stdout);
    assert.equal(accuracy[0], accuracy[1]);
    assert.ok((accuracy[0] ?? 0) > 95, `accuracy ${accuracy[0]}`);
  });

  it('answers a bad argument with one line and exit code 2', async () => {
    const bad = await inflow(['demo', '--records', 'many']);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr, 'inflow: --records must be an integer 1-10000000, got "many"\n');
    const flag = await inflow(['demo', '--recrods', '5']);
    assert.equal(flag.code, 2);
    assert.equal(flag.stderr, "inflow: Unknown option '--recrods'; run the command with --help for its options\n");
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
    assert.match(stderr, /expected up, down, restart or status/);
  });
});
