/**
 * Every reference sample of models/samples/ (outputs computed by Python onnxruntime) whose model
 * is in models/repository/<name>/1/model.onnx, run through the onnx servable: FP32 outputs must
 * agree within 1e-5 relative, everything else exactly.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../observability/logger.ts';
import { createTensor, type Tensor } from '../tensor/tensor.ts';
import { assertMatches, type Sample, type SampleTensor, sampleTensor } from './fixtures/samples.ts';
import { loadServable, type OnnxServable } from './index.ts';
import { setRuntimeLogger } from './runtime-logger.ts';

setRuntimeLogger(silentLogger);
const MODELS = fileURLToPath(new URL('../../models/', import.meta.url));
const SAMPLES = join(MODELS, 'samples');

/** A `seq(map(k, tensor(float)))` reference as FP32 [N, classes], columns in `labels` order. */
function zipMapMatrix(t: SampleTensor, labels: readonly (string | number)[]): Tensor {
  const rows = t.data as Record<string, number>[];
  return createTensor(
    'FP32',
    [rows.length, labels.length],
    Float32Array.from(rows.flatMap((row) => labels.map((label) => row[String(label)] ?? Number.NaN))),
  );
}

const samples = existsSync(SAMPLES)
  ? readdirSync(SAMPLES)
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -'.json'.length))
      .filter((name) => existsSync(join(MODELS, 'repository', name, '1', 'model.onnx')))
  : [];

describe('onnx servable against the Python onnxruntime reference samples', () => {
  it('finds samples with models to check', () => {
    // Guards the loop below from passing vacuously when the models are moved.
    assert.ok(samples.length >= 1, `no models/samples/*.json with models/repository/<name>/1/model.onnx under ${MODELS}`);
  });

  for (const name of samples) {
    it(`reproduces the reference outputs of ${name}`, async () => {
      const sample = JSON.parse(readFileSync(join(SAMPLES, `${name}.json`), 'utf8')) as Sample;
      const servable = (await loadServable('onnx', {
        dir: join(MODELS, 'repository', name, '1'),
        model: name,
        version: 1,
        options: { file: 'model.onnx' },
      })) as OnnxServable;
      try {
        const inputs = Object.fromEntries(Object.entries(sample.inputs).map(([k, v]) => [k, sampleTensor(v)]));
        const outputs = await servable.run(inputs);
        assert.deepEqual(Object.keys(outputs).sort(), Object.keys(sample.outputs).sort());
        for (const [output, reference] of Object.entries(sample.outputs)) {
          const labels = servable.classLabels[output];
          const expected = reference.datatype.startsWith('seq(map(') && labels ? zipMapMatrix(reference, labels) : sampleTensor(reference);
          assertMatches(outputs[output], expected, `${name} output "${output}"`);
        }
      } finally {
        await servable.close();
      }
    });
  }
});
