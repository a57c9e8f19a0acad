import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileInputMapping } from './field-mapping.ts';
import { inferRowShape, parseDelimited } from './feature-assembly.ts';

const data = (t: { data: unknown } | undefined): number[] => [...(t?.data as Float32Array)];

describe('declarative features', () => {
  it('parses a delimited string of numbers into a tensor row', () => {
    const map = compileInputMapping({ x: { field: 'pixels', delimiter: ',' } });
    const t = map({ pixels: '0.12, 0.98,-1e-3,4' }).x;
    assert.deepEqual(t?.shape, [1, 4]);
    assert.deepEqual(data(t), [0.12, 0.98, -1e-3, 4].map(Math.fround));
    assert.deepEqual(parseDelimited('1  2\t3\n', ' ', 'x'), [1, 2, 3]);
    assert.deepEqual(parseDelimited('1;2', ';', 'x'), [1, 2]);
  });

  it('names the element of a delimited string that is not a number, and the missing delimiter of a string field', () => {
    const map = compileInputMapping({ x: { field: 'pixels', delimiter: ',' } });
    assert.throws(() => map({ pixels: '1,2,,4' }), {
      code: 'INVALID_ARGUMENT',
      message: 'input "x": field "pixels": element 2 of the ","-delimited string is ""; expected a number',
    });
    assert.throws(() => map({ pixels: '1,0x1f' }), { message: /element 1 of the ","-delimited string is "0x1f"; expected a number/ });
    assert.throws(() => map({ pixels: '1,NaN' }), { message: 'input "x": element 1 of field "pixels" is NaN; expected a finite number' });
    const plain = compileInputMapping({ x: { field: 'pixels' } });
    assert.throws(() => plain({ pixels: '1,2,3' }), {
      code: 'INVALID_ARGUMENT',
      message:
        'input "x": field "pixels" is a string ("1,2,3"); expected a number or an array of numbers (for a delimited string of numbers give delimiter, e.g. ",")',
    });
  });

  it('reshapes a flat row to the declared row shape, adding dimensions and inferring one -1', () => {
    const flat = Array.from({ length: 784 }, (_, i) => i / 784);
    const withDim = compileInputMapping({ x: { field: 'p', shape: [1, 784] } })({ p: flat }).x;
    assert.deepEqual(withDim?.shape, [1, 1, 784]);
    const inferred = compileInputMapping({ x: { field: 'p', shape: [-1, 28] } })({ p: flat }).x;
    assert.deepEqual(inferred?.shape, [1, 28, 28]);
    assert.throws(() => compileInputMapping({ x: { field: 'p', shape: [-1, 5] } })({ p: flat }), {
      code: 'INVALID_ARGUMENT',
      message: 'input "x": field "p" has 784 elements; expected a multiple of the known dimensions (row shape [-1, 5])',
    });
    assert.throws(() => compileInputMapping({ x: { field: 'p', shape: [-1, -1] } }), { code: 'INVALID_CONFIG' });
    assert.deepEqual(inferRowShape([2, -1, 3], 12), [2, 2, 3]);
    assert.equal(inferRowShape([0, -1], 0), undefined);
  });

  it('assembles one input from several fields in the declared order: numbers, lists, delimited strings, one-hot categories, defaults', () => {
    const map = compileInputMapping({
      features: {
        fields: [
          'amount',
          'stats.count',
          { field: 'stats.recent', delimiter: ';' },
          'history',
          { field: 'customer.segment', oneHot: ['gold', 'silver', 'bronze'] },
          { field: 'customer.age', default: -1 },
        ],
      },
    });
    const t = map({ amount: 12.5, stats: { count: 3, recent: '1;2' }, history: [[4], [5]], customer: { segment: 'silver' } }).features;
    assert.deepEqual(t?.shape, [1, 10]);
    assert.deepEqual(data(t), [12.5, 3, 1, 2, 4, 5, 0, 1, 0, -1]);
    // A category not listed is all zeros; a left join without a row takes the defaults.
    const unknown = map({ amount: 1, stats: { count: 0, recent: '0;0' }, history: [0, 0], customer: { segment: 'tin', age: 30 } });
    assert.deepEqual(data(unknown.features).slice(6), [0, 0, 0, 30]);
  });

  it('says which assembled field is missing or of the wrong kind', () => {
    const map = compileInputMapping({ f: { fields: ['a', { field: 'b', oneHot: ['x'] }] } });
    assert.throws(() => map({ b: 'x' }), {
      code: 'INVALID_ARGUMENT',
      message: 'input "f": field "a" is missing from the record; expected a value (or give the field a default)',
    });
    assert.throws(() => map({ a: 'seven', b: 'x' }), {
      message: 'input "f": field "a" is the string "seven"; expected a number (or give a delimiter)',
    });
    assert.throws(() => map({ a: 1, b: { x: 1 } }), {
      message: 'input "f": field "b" is {"x":1}; expected a category (a string, number or boolean)',
    });
    assert.throws(() => compileInputMapping({ f: { fields: ['a'], shape: [3] } })({ a: [1, 2] }), {
      message: 'input "f": the assembled fields has 2 elements; expected 3 (row shape [3])',
    });
    assert.throws(() => compileInputMapping({ f: { field: 'a', fields: ['b'] } }), { code: 'INVALID_CONFIG' });
    assert.throws(() => compileInputMapping({ f: {} }), { code: 'INVALID_CONFIG' });
    assert.throws(() => compileInputMapping({ f: { fields: [{ field: 'a', oneHot: [] }] } }), { code: 'INVALID_CONFIG' });
  });

  it('keeps strings as elements of a BYTES input', () => {
    const t = compileInputMapping({ s: { fields: ['a', 'b'], dtype: 'BYTES' } })({ a: 'x', b: ['y'] }).s;
    assert.deepEqual(
      (t?.data as Uint8Array[]).map((b) => Buffer.from(b).toString()),
      ['x', 'y'],
    );
    const one = compileInputMapping({ s: { field: 'a', dtype: 'BYTES' } })({ a: 'text' }).s;
    assert.deepEqual(one?.shape, [1]);
  });
});
