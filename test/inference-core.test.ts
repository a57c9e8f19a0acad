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
  it('hands traffic to each new version with zero failed requests and unloads the old ones', async () => {
    const root = await mkdtemp(join(tmpdir(), 'inflow-swap-'));
    const src = join(MODELS, 'repository', 'digits-mlp', '1', 'model.onnx');
    await cp(src, join(root, 'digits', '1', 'model.onnx'));
    await writeFile(join(root, 'digits', 'config.yaml'), 'platform: onnx\nbatching: { maxBatchSize: 32 }\nruntime: { file: model.onnx }\n');
    const svc = await createLocalInference({ modelRepository: root, load: loadServable, watch: false, settleMs: 0 });
    const row = createTensor('FP32', [1, 64], new Float32Array(64).fill(8));
    let stop = false;
    let answered = 0;
    const failures: unknown[] = [];
    const callers = Array.from({ length: 8 }, async () => {
      while (!stop) {
        try {
          await svc.infer({ model: 'digits', inputs: { input: row } });
          answered++;
        } catch (error) {
          failures.push(error);
        }
      }
    });
    for (let version = 2; version <= 4; version++) {
      await cp(src, join(root, 'digits', String(version), 'model.onnx'));
      await svc.repository.refresh();
      assert.deepEqual(svc.repository.available('digits'), [version]);
    }
    stop = true;
    await Promise.all(callers);
    assert.deepEqual(failures, []);
    assert.ok(answered > 0);
    await svc.close();
  });
});
