import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileInputMapping } from './field-mapping.ts';

describe('typed-array fields as model inputs', () => {
  it('takes a Float32Array field as an FP32 input data itself, without a copy', () => {
    const pixels = new Float32Array([1, 2, 3, 4]);
    const inputs = compileInputMapping({ input: { field: 'pixels', dtype: 'FP32', shape: [4] } })({ pixels });
    assert.equal(inputs.input?.data, pixels);
    assert.deepEqual(inputs.input?.shape, [1, 4]);
  });

  it('converts a Float64Array field to the input dtype, and reports a wrong length or a NaN like a list', () => {
    const map = compileInputMapping({ input: { field: 'x', dtype: 'FP32', shape: [2] } });
    const t = map({ x: new Float64Array([0.5, 1.5]) }).input;
    assert.ok(t?.data instanceof Float32Array);
    assert.deepEqual(Array.from(t.data), [0.5, 1.5]);
    assert.throws(() => map({ x: new Float32Array([1, 2, 3]) }), { code: 'INVALID_ARGUMENT', message: /has 3 elements; expected 2/ });
    assert.throws(() => map({ x: new Float32Array([1, Number.NaN]) }), { code: 'INVALID_ARGUMENT', message: /element 1 .* is NaN/ });
  });
});
