import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileInputMapping, compileOutputMapping, readField } from './field-mapping.ts';

describe('field mapping', () => {
  it('turns a nested field into a batch-of-one tensor with the row shape', () => {
    const map = compileInputMapping({ img: { field: 'reading.pixels', shape: [2, 2] }, n: { field: 'n', dtype: 'INT64' } });
    const t = map({
      reading: {
        pixels: [
          [1, 2],
          [3, 4],
        ],
      },
      n: 7,
    });
    assert.deepEqual(t.img?.shape, [1, 2, 2]);
    assert.deepEqual([...(t.img?.data as Float32Array)], [1, 2, 3, 4]);
    assert.deepEqual(t.n?.shape, [1]);
    assert.equal((t.n?.data as BigInt64Array)[0], 7n);
    assert.equal(readField({ a: 1 }, '.') instanceof Object, true);
  });

  it('says which field and element is wrong and what was expected', () => {
    const map = compileInputMapping({ x: { field: 'x', shape: [3] } });
    assert.throws(() => map({}), {
      code: 'INVALID_ARGUMENT',
      message: 'input "x": field "x" is missing from the record; expected a number or an array of numbers',
    });
    assert.throws(() => map({ x: [1, 2] }), {
      code: 'INVALID_ARGUMENT',
      message: 'input "x": field "x" has 2 elements; expected 3 (row shape [3])',
    });
    assert.throws(() => map({ x: [1, 'a', 3] }), {
      code: 'INVALID_ARGUMENT',
      message: 'input "x": element 1 of field "x" is "a"; expected a finite number',
    });
    assert.throws(() => map({ x: [1, null, 3] }), { message: /element 1 of field "x" is null/ });
    assert.throws(() => map({ x: [1, Number.NaN, 3] }), { message: /element 1 of field "x" is NaN; expected a finite number/ });
    const lenient = compileInputMapping({ x: { field: 'x', allowNonFinite: true } });
    assert.ok(Number.isNaN((lenient({ x: [Number.NaN] }).x?.data as Float32Array)[0]));
  });

  it('flattens nested lists without recursion and refuses nesting deeper than a tensor can have', () => {
    const map = compileInputMapping({ x: { field: 'x', shape: [2, 2] } });
    assert.deepEqual(
      [
        ...(map({
          x: [
            [1, 2],
            [3, [4]],
          ],
        }).x?.data as Float32Array),
      ],
      [1, 2, 3, 4],
    );
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    assert.throws(() => compileInputMapping({ x: { field: 'x' } })({ x: deep }), {
      code: 'INVALID_ARGUMENT',
      message: /input "x": field "x" has lists nested more than 254 deep/,
    });
  });

  it('writes outputs as numbers, nested arrays or argmax and keeps the input fields', () => {
    const map = compileOutputMapping({
      label: { tensor: 'label' },
      p: { tensor: 'p' },
      best: { tensor: 'p', as: 'argmax' },
      grid: { tensor: 'g' },
    });
    const out = map(
      { id: 1 },
      {
        label: { dtype: 'INT64', shape: [1], data: new BigInt64Array([4n]) },
        p: { dtype: 'FP32', shape: [1, 3], data: new Float32Array([0.25, 0.5, 0.25]) },
        g: { dtype: 'INT32', shape: [1, 2, 2], data: new Int32Array([1, 2, 3, 4]) },
      },
    );
    assert.deepEqual(out, {
      id: 1,
      label: 4,
      p: [0.25, 0.5, 0.25],
      best: 1,
      grid: [
        [1, 2],
        [3, 4],
      ],
    });
    assert.throws(() => map({}, {}), { code: 'INVALID_ARGUMENT', message: /returned no tensor "label"/ });
  });
});
