/**
 * A new user's first hour with the `inflow` command (issue 21): a real process, real output, real
 * exit codes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'inflow.js');

/** Runs `inflow …` (node flags first) and answers its exit code and output. */
async function inflow(args: string[], nodeFlags: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [...nodeFlags, BIN, ...args], { cwd: ROOT, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('inflow on a fresh machine', () => {
  it('says in one line which Node to install when the running one is too old', async () => {
    // Node 20 reports itself as 20.x before inflow's entry runs (it would otherwise fail with ERR_UNKNOWN_FILE_EXTENSION).
    const old = await inflow(
      ['demo'],
      ['--import', 'data:text/javascript,Object.defineProperty(process.versions,"node",{value:"20.20.2"})'],
    );
    assert.equal(old.code, 3);
    assert.equal(old.stdout, '');
    assert.match(old.stderr, /^inflow: needs Node\.js >= 22\.22, this is v20\.20\.2; .*npm i -g --prefix "\$HOME\/\.node24" node@24.*\n$/);
  });
});
