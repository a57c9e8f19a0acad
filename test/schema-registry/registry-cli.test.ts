/**
 * `inflow registry up|status|down` as a user runs it (a real process): a detached Apicurio of the
 * test's own (never the shared one) that answers the Confluent-compatible API, found by status
 * from another process, and stopped by down.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createSchemaRegistryClient } from '../../src/kafka/schema-registry/registry-client.ts';
import { registryOrSkip } from '../setup/schema-registry.ts';

const exec = promisify(execFile);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'inflow.js');

async function inflow(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

// The registry tests run where the setup has a registry, so Java and the Apicurio package are there.
describe('inflow registry', { skip: registryOrSkip() ? false : 'no Schema Registry (see the global setup message)' }, () => {
  const homes: string[] = [];
  after(async () => {
    for (const home of homes) {
      await inflow(['registry', 'down', '--json'], { INFLOW_REGISTRY_HOME: home });
      await rm(home, { recursive: true, force: true });
    }
  });

  it('starts a detached registry that answers the Confluent API, reports it from another process, and stops it', async () => {
    const home = await mkdtemp(join(tmpdir(), 'inflow-registry-home-'));
    homes.push(home);
    const env = { INFLOW_REGISTRY_HOME: home };
    const before = await inflow(['registry', 'status', '--json'], env);
    assert.equal(before.code, 1, 'status exits 1 when no registry runs');
    assert.deepEqual(JSON.parse(before.stdout), { running: false });

    const up = await inflow(['registry', 'up', '--json'], env);
    assert.equal(up.code, 0, up.stderr);
    const state = JSON.parse(up.stdout.trim().split('\n').at(-1) ?? '{}') as { running: boolean; url: string; pid: number };
    assert.equal(state.running, true);
    assert.match(state.url, /^http:\/\/127\.0\.0\.1:\d+\/apis\/ccompat\/v7$/);

    const client = createSchemaRegistryClient({ url: state.url, retry: { attempts: 1 } });
    const schema = {
      schemaType: 'AVRO' as const,
      schema: '{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}',
      references: [],
    };
    const id = await client.register('cli-test-value', schema);
    assert.equal((await client.latest('cli-test-value')).id, id);

    const again = await inflow(['registry', 'up', '--json'], env);
    assert.equal((JSON.parse(again.stdout) as { pid: number }).pid, state.pid, 'a second up finds the running registry');
    const status = await inflow(['registry', 'status', '--json'], env);
    assert.equal(status.code, 0);
    const seen = JSON.parse(status.stdout) as { url: string; pid: number };
    assert.deepEqual([seen.url, seen.pid], [state.url, state.pid]);

    const down = await inflow(['registry', 'down', '--json'], env);
    assert.deepEqual(JSON.parse(down.stdout), { running: false, result: 'stopped' });
    const after = await inflow(['registry', 'status', '--json'], env);
    assert.equal(after.code, 1);
    await assert.rejects(createSchemaRegistryClient({ url: state.url, retry: { attempts: 1 } }).latest('cli-test-value'), {
      code: 'UNAVAILABLE',
    });
  });

  it('answers an unknown action or a misplaced flag with one line and exit code 2', async () => {
    const env = { INFLOW_REGISTRY_HOME: join(tmpdir(), 'inflow-registry-none') };
    const bad = await inflow(['registry', 'sideways'], env);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr, 'inflow: unknown action "sideways" for inflow registry; expected up, down or status\n');
    const port = await inflow(['registry', 'status', '--port', '8081'], env);
    assert.equal(port.code, 2);
    assert.match(port.stderr, /--port goes with "up" only/);
    const help = await inflow(['help', 'registry'], env);
    assert.match(help.stdout, /Examples:\n {2}inflow registry up/);
  });
});
