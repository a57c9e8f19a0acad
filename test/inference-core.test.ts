/**
 * The inference core end to end on the example models: the real runtime (onnxruntime-node in
 * worker threads), the real repository on disk, the router and the batcher. Reference outputs
 * come from Python onnxruntime (models/build.py).
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadServable } from '../src/runtime/index.ts';
import { createLocalInference, type LocalInference } from '../src/serving/local-inference.ts';
import { arrayTypeOf, type DType } from '../src/tensor/dtype.ts';
import { createTensor, type Tensor, tensorStrings } from '../src/tensor/tensor.ts';

const MODELS = join(import.meta.dirname, '..', 'models');

interface SampleTensor {
  datatype: string;
  shape: number[];
  data: unknown[];
}
interface Sample {
  inputs: Record<string, SampleTensor>;
  outputs: Record<string, SampleTensor>;
}

function toTensor(t: SampleTensor): Tensor {
  const dtype = t.datatype as DType;
  if (dtype === 'BYTES')
    return createTensor(
      'BYTES',
      t.shape,
      t.data.map((s) => new TextEncoder().encode(String(s))),
    );
  const Ctor = arrayTypeOf[dtype];
  const values = dtype === 'INT64' || dtype === 'UINT64' ? t.data.map((v) => BigInt(v as number)) : t.data;
  return createTensor(dtype, t.shape, (Ctor as unknown as { from(a: unknown[]): Tensor['data'] }).from(values));
}

async function sample(name: string): Promise<Sample> {
  return JSON.parse(await readFile(join(MODELS, 'samples', `${name}.json`), 'utf8')) as Sample;
}

function assertClose(actual: Tensor | undefined, expected: SampleTensor, what: string): void {
  assert.ok(actual, `${what} is present`);
  assert.deepEqual(actual.shape, expected.shape, `${what} shape`);
  if (actual.dtype === 'BYTES') return assert.deepEqual(tensorStrings(actual), expected.data, what);
  const got = Array.from(actual.data as ArrayLike<number | bigint>, Number);
  const want = expected.data.map(Number);
  assert.equal(got.length, want.length, `${what}: element count`);
  for (const [i, w] of want.entries()) {
    const g = got[i] as number;
    assert.ok(Math.abs(g - w) <= 1e-5 * Math.max(1, Math.abs(w)), `${what}[${i}]: got ${g}, Python onnxruntime gave ${w}`);
  }
}

describe('inference core on the example models', () => {
  let svc: LocalInference;
  before(async () => {
    svc = await createLocalInference({ modelRepository: join(MODELS, 'repository'), load: loadServable, watch: false, settleMs: 0 });
  });
  after(async () => svc?.close());

  for (const [model, sampleName] of [
    ['digits-mlp', 'digits-mlp'],
    ['mlp-784', 'mlp-784'],
    ['breast-cancer-gbt', 'breast-cancer-gbt'],
    ['cnn-mobilenet', 'cnn-mobilenet'],
  ] as const) {
    it(`${model} matches Python onnxruntime on the reference rows`, async () => {
      const s = await sample(sampleName);
      const inputs = Object.fromEntries(Object.entries(s.inputs).map(([k, v]) => [k, toTensor(v)]));
      const response = await svc.infer({ model, inputs });
      for (const [name, expected] of Object.entries(s.outputs)) assertClose(response.outputs[name], expected, `${model}.${name}`);
    });
  }

  it('serves the transform → GBT → label lookup pipeline from raw features', async () => {
    const s = await sample('breast-cancer-gbt-pipeline');
    const inputs = Object.fromEntries(Object.entries(s.inputs).map(([k, v]) => [k, toTensor(v)]));
    const response = await svc.infer({ model: 'breast-cancer-pipeline', inputs });
    const labels = (s.outputs.label?.data ?? []).map((v) => (Number(v) === 0 ? 'malignant' : 'benign'));
    const names = Object.values(response.outputs).find((t) => t.dtype === 'BYTES');
    assert.ok(names, `the pipeline answers class names; outputs: ${Object.keys(response.outputs).join(', ')}`);
    assert.deepEqual(tensorStrings(names), labels);
  });

  it('answers one-row requests from many callers with the same values as a batch (dynamic batching is exact)', async () => {
    const s = await sample('digits-mlp');
    const input = s.inputs.input as SampleTensor;
    const rows = input.shape[0] as number;
    const answers = await Promise.all(
      Array.from({ length: rows }, (_, r) =>
        svc.infer({
          model: 'digits-mlp',
          inputs: { input: toTensor({ datatype: 'FP32', shape: [1, 64], data: input.data.slice(r * 64, (r + 1) * 64) }) },
        }),
      ),
    );
    const labels = answers.map((a) => Number((a.outputs.label?.data as BigInt64Array)[0]));
    assert.deepEqual(labels, (s.outputs.label?.data ?? []).map(Number));
    // The reference is the whole batch run at once (Python onnxruntime): each one-row answer's
    // probabilities equal its row of the batch's, within float tolerance.
    const batch = s.outputs.probabilities as SampleTensor;
    const classes = batch.shape[1] as number;
    assert.equal(batch.data.length, rows * classes);
    for (const [r, a] of answers.entries()) {
      const want = { datatype: 'FP32', shape: [1, classes], data: batch.data.slice(r * classes, (r + 1) * classes) };
      assertClose(a.outputs.probabilities, want, `row ${r} alone: probabilities`);
    }
  });

  it('reports metadata with the signature, and readiness', async () => {
    const meta = await svc.metadata('digits-mlp');
    assert.deepEqual(meta.inputs, [{ name: 'input', dtype: 'FP32', shape: [-1, 64] }]);
    assert.deepEqual(meta.versions, [1]);
    assert.equal(await svc.ready('digits-mlp'), true);
    await assert.rejects(svc.metadata('nope'), { code: 'NOT_FOUND' });
  });
});

describe('hot swap of a real ONNX model under load', () => {
  it('hands traffic to each new version with zero failed requests, the new version answering with its own outputs', async () => {
    const root = await mkdtemp(join(tmpdir(), 'inflow-swap-'));
    // Two trainings with the same signature that answer differently (models/build.py).
    const files = {
      v1: join(MODELS, 'repository', 'digits-mlp', '1', 'model.onnx'),
      v2: join(MODELS, 'variants', 'digits-mlp', '2', 'model.onnx'),
    };
    const references = { v1: await sample('digits-mlp'), v2: await sample('digits-mlp-v2') };
    // The reference row on which the two trainings differ most.
    const p1 = references.v1.outputs.probabilities as SampleTensor;
    const p2 = references.v2.outputs.probabilities as SampleTensor;
    const classes = p1.shape[1] as number;
    const rowsOf = (t: SampleTensor, r: number): number[] => t.data.slice(r * classes, (r + 1) * classes).map(Number);
    const gap = (r: number): number => Math.max(...rowsOf(p1, r).map((v, c) => Math.abs(v - (rowsOf(p2, r)[c] as number))));
    const row = Array.from({ length: p1.shape[0] as number }, (_, r) => r).sort((a, b) => gap(b) - gap(a))[0] as number;
    assert.ok(gap(row) > 0.05, `the two trainings differ by only ${gap(row)} on their most different reference row`);
    const expected = { v1: rowsOf(p1, row), v2: rowsOf(p2, row) };
    const input = references.v1.inputs.input as SampleTensor;
    const tensor = createTensor('FP32', [1, 64], new Float32Array(input.data.slice(row * 64, (row + 1) * 64).map(Number)));
    /** Which training answered, from the probabilities alone. */
    const trainingOf = (t: Tensor | undefined): 'v1' | 'v2' | 'neither' => {
      const got = Array.from((t?.data ?? []) as Float32Array);
      if (got.length !== classes) return 'neither';
      for (const k of ['v1', 'v2'] as const) if (got.every((v, c) => Math.abs(v - (expected[k][c] as number)) <= 1e-5)) return k;
      return 'neither';
    };

    await cp(files.v1, join(root, 'digits', '1', 'model.onnx'));
    await writeFile(join(root, 'digits', 'config.yaml'), 'platform: onnx\nbatching: { maxBatchSize: 32 }\nruntime: { file: model.onnx }\n');
    const svc = await createLocalInference({ modelRepository: root, load: loadServable, watch: false, settleMs: 0 });
    // Version → the training its folder holds: 2 and 4 are the other training, 3 the first one again.
    const trainingOfVersion: Record<number, 'v1' | 'v2'> = { 1: 'v1', 2: 'v2', 3: 'v1', 4: 'v2' };
    let stop = false;
    const answeredBy = new Map<number, number>();
    const failures: unknown[] = [];
    const mismatches: string[] = [];
    const callers = Array.from({ length: 8 }, async () => {
      while (!stop) {
        try {
          const response = await svc.infer({ model: 'digits', inputs: { input: tensor } });
          answeredBy.set(response.version, (answeredBy.get(response.version) ?? 0) + 1);
          const training = trainingOf(response.outputs.probabilities);
          if (training !== trainingOfVersion[response.version]) mismatches.push(`version ${response.version} answered like ${training}`);
        } catch (error) {
          failures.push(error);
        }
      }
    });
    try {
      for (let version = 2; version <= 4; version++) {
        const training = trainingOfVersion[version] as 'v1' | 'v2';
        await cp(files[training], join(root, 'digits', String(version), 'model.onnx'));
        await svc.repository.refresh();
        assert.deepEqual(svc.repository.available('digits'), [version]);
        const response = await svc.infer({ model: 'digits', inputs: { input: tensor } });
        assert.equal(response.version, version, 'the new version answers once the swap is done');
        assert.equal(trainingOf(response.outputs.probabilities), training, `version ${version} answers with its own model's outputs`);
      }
    } finally {
      stop = true;
      await Promise.all(callers);
      await svc.close();
    }
    assert.deepEqual(failures, []);
    assert.deepEqual(mismatches, [], 'every answer came from the model of the version it names');
    assert.ok((answeredBy.get(1) ?? 0) > 0, 'callers were answered before the first swap');
  });
});
