/**
 * The migration path from TF Serving (issue 21 item 11), through the real CLI: a Keras model
 * exported as a SavedModel is imported with `inflow models import --savedmodel` (tf2onnx in the
 * command's managed virtualenv; the command itself checks inflow's outputs against TensorFlow's),
 * served with `inflow serve`, and called with the official tensorflow-serving-api client exactly as
 * a TF Serving deployment is called — outputs compared with TensorFlow's own on other inputs.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { interopPython, ROOT, run, runClient, type ServeProcess, startServe } from './interop/interop-support.ts';

const BIN = join(ROOT, 'bin', 'inflow.js');

async function inflow(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], {
      env: { ...process.env, INFLOW_LOG_LEVEL: 'silent' },
      timeout: 1_200_000, // the first run builds the converter's virtualenv (TensorFlow, tf2onnx)
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('migrating from TF Serving: inflow models import --savedmodel, then the TF Serving client unchanged', () => {
  let py: string | undefined;
  let work: string;
  let serve: ServeProcess | undefined;
  const savedmodel = (): string => join(work, 'iris-savedmodel', '1');
  const repository = (): string => join(work, 'repository');

  before(async () => {
    py = await interopPython();
    work = await mkdtemp(join(tmpdir(), 'inflow-import-'));
    if (py) await run(py, [join(ROOT, 'test', 'interop', 'make_savedmodel.py'), savedmodel()], { timeout: 300_000 });
  });
  after(async () => {
    await serve?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('imports the SavedModel as version 1 with the signature names, verified against TensorFlow', { timeout: 1_500_000 }, async (t) => {
    if (!py) return t.skip('no client virtualenv');
    const r = await inflow([
      'models',
      'import',
      '--savedmodel',
      savedmodel(),
      '--model-repository',
      repository(),
      '--model',
      'iris',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const result = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as {
      model: string;
      version: number;
      inputs: Array<{ name: string; datatype: string; shape: number[] }>;
      outputs: Array<{ name: string; datatype: string; shape: number[] }>;
      verifiedRows: number;
      maxRelativeDifference: number;
    };
    assert.deepEqual([result.model, result.version], ['iris', 1]);
    assert.deepEqual(result.inputs, [{ name: 'features', datatype: 'FP32', shape: [-1, 4] }]);
    assert.deepEqual(
      result.outputs.map((o) => o.name),
      ['logits', 'probabilities'],
    );
    assert.ok(result.verifiedRows > 0 && result.maxRelativeDifference <= 1e-4, JSON.stringify(result));
    assert.deepEqual(await readdir(join(repository(), 'iris')), ['1', 'config.yaml']);
    assert.match(await readFile(join(repository(), 'iris', 'config.yaml'), 'utf8'), /^platform: onnx$/m);
    // A second import is the next version; the first is never overwritten.
    const again = await inflow(['models', 'import', '--savedmodel', savedmodel(), '--model-repository', repository(), '--model', 'iris']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(
      again.stdout,
      /^imported iris version 2 → .*\n {2}inputs: {2}features FP32 \[-1, 4\]\n {2}outputs: logits FP32 \[-1, 3\], probabilities FP32 \[-1, 3\]\n {2}matches TensorFlow on 4 sample rows/m,
    );
  });

  it('answers the official TF Serving client (gRPC Predict, GetModelMetadata, REST :predict) as TensorFlow does', async (t) => {
    if (!py) return t.skip('no client virtualenv');
    serve = await startServe(repository());
    const got = await runClient<{
      expected_outputs: string[];
      grpc_outputs: string[];
      grpc_max_diff: number;
      grpc_shapes: Record<string, number[]>;
      metadata: { inputs: string[]; outputs: string[] };
      rest_max_diff: number;
    }>(py, 'tfserving_savedmodel.py', { rest: serve.rest, grpc: serve.grpc, model: 'iris', savedmodel: savedmodel() });
    assert.deepEqual(got.grpc_outputs, got.expected_outputs);
    assert.deepEqual(got.metadata, { inputs: ['features'], outputs: ['logits', 'probabilities'] });
    assert.deepEqual(got.grpc_shapes, { logits: [5, 3], probabilities: [5, 3] });
    assert.ok(got.grpc_max_diff <= 1e-5, `gRPC Predict differs from TensorFlow by ${got.grpc_max_diff}`);
    assert.ok(got.rest_max_diff <= 1e-5, `REST :predict differs from TensorFlow by ${got.rest_max_diff}`);
  });

  it('says what is wrong with a folder that is not a SavedModel, and with an existing version', async () => {
    const notSaved = await inflow(['models', 'import', '--savedmodel', work, '--model-repository', repository(), '--model', 'x']);
    assert.equal(notSaved.code, 2);
    assert.match(notSaved.stderr, /^inflow: --savedmodel .*: no saved_model\.pb there; expected a SavedModel folder/);
    const taken = await inflow([
      'models',
      'import',
      '--savedmodel',
      savedmodel(),
      '--model-repository',
      repository(),
      '--model',
      'iris',
      '--version',
      '1',
    ]);
    assert.notEqual(taken.code, 0);
    assert.match(taken.stderr, /iris\/1 exists; choose another --version \(versions are never overwritten\)/);
    const missing = await inflow(['models', 'import', '--savedmodel', work]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--savedmodel <dir>, --model-repository <dir> and --model <name> are required/);
  });
});
