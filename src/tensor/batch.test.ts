import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { batchKey, concatBatch, splitBatch } from './batch.ts';
import { createTensor, stringTensor, tensorStrings } from './tensor.ts';

describe('batch operations', () => {
  it('concatenates along dim 0 and splits back exactly', () => {
    const a = createTensor('FP32', [1, 2], new Float32Array([1, 2]));
    const b = createTensor('FP32', [2, 2], new Float32Array([3, 4, 5, 6]));
    const batch = concatBatch([a, b]);
    assert.deepEqual(batch.shape, [3, 2]);
    assert.deepEqual([...batch.data], [1, 2, 3, 4, 5, 6]);
    const [x, y] = splitBatch(batch, [1, 2]);
    assert.deepEqual(
      [x?.shape, [...(x?.data ?? [])]],
      [
        [1, 2],
        [1, 2],
      ],
    );
    assert.deepEqual(
      [y?.shape, [...(y?.data ?? [])]],
      [
        [2, 2],
        [3, 4, 5, 6],
      ],
    );
  });

  it('batches BYTES tensors', () => {
    const batch = concatBatch([stringTensor([1], ['a']), stringTensor([2], ['b', 'c'])]);
    assert.deepEqual(tensorStrings(batch), ['a', 'b', 'c']);
    assert.deepEqual(splitBatch(batch, [2, 1]).map(tensorStrings), [['a', 'b'], ['c']]);
  });

  it('refuses to batch tensors whose non-batch dims or dtypes differ', () => {
    const a = createTensor('FP32', [1, 2], new Float32Array(2));
    const b = createTensor('FP32', [1, 3], new Float32Array(3));
    assert.notEqual(batchKey(a), batchKey(b));
    assert.throws(() => concatBatch([a, b]), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => concatBatch([a, createTensor('FP64', [1, 2], new Float64Array(2))]), { code: 'INVALID_ARGUMENT' });
  });

  it('validates tensors on creation', () => {
    assert.throws(() => createTensor('FP32', [2, 2], new Float32Array(3)), { message: /holds 4 elements but 3/ });
    assert.throws(() => createTensor('INT32', [2], new Float32Array(2)), { message: /must be Int32Array/ });
    assert.throws(() => createTensor('FP32', [-1], new Float32Array(0)), { message: /dimension 0 is -1/ });
    assert.throws(() => createTensor('FP32', [1 << 20, 1 << 20], new Float32Array(0)), { message: /more than/ });
  });
});
