import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createTensor, type Tensor } from '../tensor/tensor.ts';
import { compareOutputs } from './shadow-compare.ts';

const fp32 = (shape: number[], data: number[]): Tensor => createTensor('FP32', shape, new Float32Array(data));
const int64 = (data: number[]): Tensor => createTensor('INT64', [data.length], BigInt64Array.from(data.map(BigInt)));
const bytes = (...s: string[]): Tensor =>
  createTensor(
    'BYTES',
    [s.length],
    s.map((x) => new TextEncoder().encode(x)),
  );

describe('shadow comparison', () => {
  it('agrees with an identical copy, with no difference', () => {
    const out = { label: int64([3, 1]), probabilities: fp32([2, 3], [0.1, 0.2, 0.7, 0.6, 0.3, 0.1]) };
    assert.deepEqual(compareOutputs(out, structuredClone(out)), { agree: true, meanAbsDiff: 0 });
  });

  it('agrees on score matrices with the same class per row even when the scores moved, and reports how far', () => {
    const primary = { probabilities: fp32([2, 3], [0.1, 0.2, 0.7, 0.6, 0.3, 0.1]) };
    const shadow = { probabilities: fp32([2, 3], [0.2, 0.2, 0.6, 0.5, 0.4, 0.1]) };
    const r = compareOutputs(primary, shadow);
    assert.equal(r.agree, true);
    // |Δ| = 0.1, 0, 0.1, 0.1, 0.1, 0 over 6 elements.
    assert.ok(Math.abs((r.meanAbsDiff ?? Number.NaN) - 0.4 / 6) < 1e-6, `meanAbsDiff ${r.meanAbsDiff}`);
  });

  it('disagrees when one row of a score matrix changes class', () => {
    const primary = { probabilities: fp32([3, 2], [0.9, 0.1, 0.2, 0.8, 0.6, 0.4]) };
    const shadow = { probabilities: fp32([3, 2], [0.9, 0.1, 0.2, 0.8, 0.4, 0.6]) };
    const r = compareOutputs(primary, shadow);
    assert.equal(r.agree, false);
    assert.ok(Math.abs((r.meanAbsDiff ?? Number.NaN) - 0.4 / 6) < 1e-6, `meanAbsDiff ${r.meanAbsDiff}`);
  });

  it('compares other numeric outputs by value, within a relative tolerance of 1e-6', () => {
    assert.equal(compareOutputs({ label: int64([3, 1, 4]) }, { label: int64([3, 1, 5]) }).agree, false);
    assert.deepEqual(compareOutputs({ label: int64([3, 1, 4]) }, { label: int64([3, 1, 5]) }).meanAbsDiff, 1 / 3);
    // One column is a value per row, not a score matrix: no argmax, values compared.
    assert.equal(compareOutputs({ y: fp32([2, 1], [1.5, 2]) }, { y: fp32([2, 1], [1.5, 2.1]) }).agree, false);
    assert.equal(
      compareOutputs({ y: fp32([2], [1e6, 0.25]) }, { y: fp32([2], [1e6 + 0.5, 0.25]) }).agree,
      true,
      '0.5 on 1e6 is within 1e-6 relative',
    );
    assert.equal(compareOutputs({ y: fp32([2], [1e6, 0.25]) }, { y: fp32([2], [1e6 + 2, 0.25]) }).agree, false, '2 on 1e6 is not');
    assert.equal(
      compareOutputs({ y: fp32([1], [0.25]) }, { y: fp32([1], [0.2500005]) }).agree,
      true,
      'below 1 the tolerance is absolute 1e-6',
    );
    assert.equal(compareOutputs({ y: fp32([1], [0.25]) }, { y: fp32([1], [0.2501]) }).agree, false);
  });

  it('disagrees on a different dtype or shape', () => {
    assert.equal(compareOutputs({ y: fp32([2], [1, 2]) }, { y: createTensor('FP64', [2], new Float64Array([1, 2])) }).agree, false);
    assert.equal(compareOutputs({ y: fp32([2, 1], [1, 2]) }, { y: fp32([1, 2], [1, 2]) }).agree, false);
    // A mismatched output still lets the others count towards the difference.
    const r = compareOutputs({ a: fp32([1], [1]), b: int64([1, 2]) }, { a: fp32([2], [1, 1]), b: int64([1, 4]) });
    assert.deepEqual(r, { agree: false, meanAbsDiff: 1 });
  });

  it('compares byte strings exactly and reports no numeric difference for them', () => {
    assert.deepEqual(compareOutputs({ s: bytes('cat', 'dog') }, { s: bytes('cat', 'dog') }), { agree: true, meanAbsDiff: undefined });
    assert.deepEqual(compareOutputs({ s: bytes('cat', 'dog') }, { s: bytes('cat', 'dot') }), { agree: false, meanAbsDiff: undefined });
    assert.equal(compareOutputs({ s: bytes('cat', 'dog') }, { s: bytes('cat', 'dogs') }).agree, false);
  });

  it('ignores outputs only one side has, and one disagreeing output makes the whole comparison disagree', () => {
    const primary = { label: int64([1, 2]), probabilities: fp32([2, 2], [0.9, 0.1, 0.2, 0.8]) };
    assert.equal(compareOutputs(primary, { label: int64([1, 2]), extra: int64([7]) }).agree, true);
    assert.equal(compareOutputs(primary, { label: int64([1, 2]), probabilities: fp32([2, 2], [0.1, 0.9, 0.2, 0.8]) }).agree, false);
    assert.equal(compareOutputs(primary, { label: int64([2, 2]), probabilities: fp32([2, 2], [0.9, 0.1, 0.2, 0.8]) }).agree, false);
  });
});
