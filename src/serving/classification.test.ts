import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createTensor, tensorStrings } from '../tensor/tensor.ts';
import { classificationCount, topKClassification } from './classification.ts';

describe("Triton's classification extension", () => {
  it('answers each batch row with its top k classes as "score:index", scores with six decimals as Triton prints them', () => {
    const scores = createTensor('FP32', [2, 4], Float32Array.of(0.1, 0.6, 0.25, 0.05, 0.5, 0.2, 0.2, 0.1));
    const top = topKClassification(scores, 2, 'probabilities', true);
    assert.equal(top.dtype, 'BYTES');
    assert.deepEqual(top.shape, [2, 2]);
    // Ties (0.2 at 1 and 2) go to the lower index; FP32 0.6 prints as its float value rounded to 6 places.
    assert.deepEqual(tensorStrings(top), ['0.600000:1', '0.250000:2', '0.500000:0', '0.200000:1']);
  });

  it('caps k at the number of classes, treats an unbatched output as one row, prints integers as integers', () => {
    const logits = createTensor('INT64', [3], BigInt64Array.of(-4n, 9n, 2n));
    const top = topKClassification(logits, 10, 'logits', false);
    assert.deepEqual(top.shape, [3]);
    assert.deepEqual(tensorStrings(top), ['9:1', '2:2', '-4:0']);
    // A batched [batch] output (a predicted label per row): one class per row, index 0.
    assert.deepEqual(tensorStrings(topKClassification(logits, 2, 'label', true)), ['-4:0', '9:0', '2:0']);
    assert.deepEqual(topKClassification(logits, 2, 'label', true).shape, [3, 1]);
    const half = topKClassification(createTensor('FP16', [1, 2], Uint16Array.of(0x3800, 0x3c00)), 1, 'h', true);
    assert.deepEqual(tensorStrings(half), ['1.000000:1']);
  });

  it('reads the count from REST numbers and gRPC int64 strings, and refuses anything else naming the output', () => {
    assert.equal(classificationCount(3, 'p'), 3);
    assert.equal(classificationCount('3', 'p'), 3);
    assert.equal(classificationCount(undefined, 'p'), undefined);
    for (const bad of [0, -1, 1.5, 'two', true]) {
      assert.throws(() => classificationCount(bad, 'p'), {
        code: 'INVALID_ARGUMENT',
        message: /output "p": parameter 'classification' must be an integer ≥ 1/,
      });
    }
    assert.throws(() => topKClassification(createTensor('BYTES', [1], [new Uint8Array()]), 1, 's', true), {
      code: 'INVALID_ARGUMENT',
      message: /output "s" is BYTES: classification needs numeric scores/,
    });
  });
});
