/**
 * The commands with flags of their own (kafka, registry, models, models rollout, monitor) report
 * a user's mistake as every command does (./cli-errors.ts): one line saying what was wrong and
 * what is expected, exit code 2, no stack; under --json one object with the exit code.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { describe, it, mock } from 'node:test';
import { createMemoryClient } from '../kafka/memory/memory-client.ts';
import { cliError, exitCodeFor } from './cli-errors.ts';
import { kafkaMain } from './kafka-command.ts';
import { main } from './main.ts';
import { modelsMain } from './models-command.ts';
import { registryMain } from './registry-command.ts';

type Run = (argv: string[], out: (line: string) => void, err: (line: string) => void) => Promise<number>;

/** Runs a command, capturing what it writes to stderr (through `err`, or process.stderr for those that take none). */
async function run(command: Run, ...argv: string[]): Promise<{ code: number; err: string }> {
  const lines: string[] = [];
  const stderr = mock.method(process.stderr, 'write', (chunk: string | Uint8Array) => {
    lines.push(String(chunk).replace(/\n$/, ''));
    return true;
  });
  try {
    const code = await command(
      argv,
      () => undefined,
      (l) => lines.push(l),
    );
    return { code, err: lines.join('\n') };
  } finally {
    stderr.mock.restore();
  }
}

const viaMain: Run = (argv) => main(argv, () => undefined);
const client = createMemoryClient();
const models: Run = (argv, out, err) => modelsMain(argv, out, { client, err });

/** One line, `inflow: ` and the message, no stack frames. */
function assertOneLine(err: string, message: RegExp): void {
  assert.equal(err.split('\n').length, 1, `one line expected:\n${err}`);
  assert.doesNotMatch(err, /\n\s+at /);
  assert.match(err, /^inflow: /);
  assert.match(err, message);
}

describe('errors of the commands with flags of their own', () => {
  it('says which flag is unknown and where the options are listed, for kafka, registry, models, rollout and monitor', async () => {
    for (const [command, argv] of [
      [kafkaMain, ['status', '--bogus']],
      [registryMain, ['status', '--bogus']],
      [models, ['list', '--bogus']],
      [models, ['rollout', '--bogus']],
      [models, ['backtest', '--bogus']],
      [viaMain, ['monitor', '--bogus']],
    ] as const) {
      const r = await run(command, ...argv);
      assert.equal(r.code, 2, `${argv.join(' ')}: ${r.err}`);
      assertOneLine(r.err, /^inflow: Unknown option '--bogus'; run the command with --help for its options$/);
    }
  });

  it('says what a flag value must be and which action a flag goes with', async () => {
    const port = await run(registryMain, 'up', '--port', '70000');
    assert.equal(port.code, 2);
    assertOneLine(port.err, /--port must be a port number 1-65535, got "70000"$/);
    const misplaced = await run(kafkaMain, 'status', '--keep-data');
    assert.equal(misplaced.code, 2);
    assertOneLine(misplaced.err, /--keep-data goes with "down" only$/);
    const action = await run(registryMain, 'launch');
    assert.equal(action.code, 2);
    assertOneLine(action.err, /unknown action "launch" for inflow registry; expected up, down or status$/);
  });

  it('turns a file error Node throws into the caller’s mistake naming the path (exit 2), not an internal error', async () => {
    const missing = join(tmpdir(), 'inflow-no-such-folder', 'model.onnx');
    const e = cliError(await readFile(missing).catch((error: unknown) => error));
    assert.deepEqual([e.code, exitCodeFor(e), e.message], ['NOT_FOUND', 2, `${missing}: no such file or folder; check the path`]);
    const underFile = join(import.meta.filename, 'x');
    const notDir = cliError(await readFile(underFile).catch((error: unknown) => error));
    assert.deepEqual(
      [notDir.code, exitCodeFor(notDir), notDir.message],
      ['INVALID_ARGUMENT', 2, `${underFile}: a part of the path is a file; expected a folder`],
    );
  });

  it('prints one JSON object with the code, the message and the exit code under --json', async () => {
    for (const command of [kafkaMain, registryMain] as const) {
      const r = await run(command, 'launch', '--json');
      assert.equal(r.code, 2);
      const parsed = JSON.parse(r.err) as { error: { code: string; message: string; exitCode: number } };
      assert.equal(parsed.error.code, 'INVALID_ARGUMENT');
      assert.equal(parsed.error.exitCode, 2);
      assert.match(parsed.error.message, /^unknown action "launch"/);
    }
  });
});
