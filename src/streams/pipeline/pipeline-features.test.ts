import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TensorSpec } from '../../runtime/servable.ts';
import { fitInputsToSignature } from './pipeline-features.ts';

const cnn: TensorSpec[] = [{ name: 'input', dtype: 'FP32', shape: [-1, 1, 784] }];
const fit = (inputs: Parameters<typeof fitInputsToSignature>[0], signature = cnn) =>
  fitInputsToSignature(inputs, signature, 'm', 'p.yaml: pipeline.1.predict');

describe('fitting a predict mapping to the model signature', () => {
  it('gives a mapping without shape the model row shape, so rows of 784 feed a model declaring [-1, 1, 784]', () => {
    assert.deepEqual(fit({ input: { field: 'pixels', delimiter: ',' } }).input, { field: 'pixels', delimiter: ',', shape: [1, 784] });
    // [-1, n] and [-1] need nothing: the flat list and a number are already those rows.
    const flat = { input: { field: 'x' } };
    assert.equal(fit(flat, [{ name: 'input', dtype: 'FP32', shape: [-1, 64] }]).input, flat.input);
    // The tensor serde's whole value carries its own shape; an unknown signature is left alone.
    assert.equal(fit({ input: { field: '.' } }).input?.shape, undefined);
    const any = { input: { field: 'x' } };
    assert.equal(fit(any, []), any);
  });

  it('refuses at build time an input the model lacks, a missing input and a shape of the wrong rank, with what to write', () => {
    assert.throws(() => fit({ pixels: { field: 'p' } }), {
      code: 'INVALID_CONFIG',
      message: 'p.yaml: pipeline.1.predict.inputs.pixels: model "m" has no input "pixels"; its inputs: "input" FP32 [-1, 1, 784]',
    });
    assert.throws(() => fit({}), {
      message: 'p.yaml: pipeline.1.predict.inputs: model "m" also needs "input" FP32 [-1, 1, 784]; map every input to a field',
    });
    assert.throws(() => fit({ input: { field: 'p', shape: [-1, 1, 784] } }), {
      message:
        'p.yaml: pipeline.1.predict.inputs.input.shape: [-1, 1, 784] does not fit (shape is the row shape, without the batch dimension): model "m" declares FP32 [-1, 1, 784] (dim 0 the batch); expected shape: [1, 784]',
    });
    assert.throws(() => fit({ input: { field: 'p', shape: [784, 1] } }), {
      message: /\[784, 1\] does not fit: .*expected shape: \[1, 784\]/,
    });
    assert.deepEqual(fit({ input: { field: 'p', shape: [1, -1] } }).input?.shape, [1, -1]);
  });
});
