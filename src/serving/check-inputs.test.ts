import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Signature } from '../runtime/servable.ts';
import { createInputGate } from './check-inputs.ts';

const v1: Signature = { inputs: [{ name: 'x', dtype: 'FP32', shape: [-1, 4] }], outputs: [{ name: 'y', dtype: 'FP32', shape: [-1, 1] }] };
const v2: Signature = { inputs: [{ name: 'x', dtype: 'FP32', shape: [-1, 8] }], outputs: [{ name: 'y', dtype: 'FP32', shape: [-1, 1] }] };

describe('input gate', () => {
  it('admits an input that fits any of the signatures and names the latest one when none fits', () => {
    const gate = createInputGate('m', [v2, v1]);
    gate('x', 'FP32', [3, 4]);
    gate('x', 'FP32', [3, 8]);
    assert.throws(() => gate('x', 'BYTES', [10_000_000]), {
      code: 'INVALID_ARGUMENT',
      message: 'input "x" of model "m": expected FP32 with shape [-1, 8], got BYTES [10000000]',
    });
    assert.throws(() => gate('z', 'FP32', [1, 4]), { code: 'INVALID_ARGUMENT', message: 'model "m" has no input "z"; its inputs are: x' });
  });

  it('bounds the elements and the BYTES elements of one request, all inputs together', () => {
    const gate = createInputGate('m', [], { maxElements: 100, maxBytesElements: 10 });
    gate('a', 'FP32', [60]);
    assert.throws(() => gate('b', 'FP32', [41]), {
      code: 'PAYLOAD_TOO_LARGE',
      message: /more than 100 tensor elements \(input "b": FP32 \[41\]\)/,
    });
    const bytes = createInputGate('m', [], { maxElements: 100, maxBytesElements: 10 });
    bytes('s', 'BYTES', [6]);
    assert.throws(() => bytes('t', 'BYTES', [5]), { code: 'PAYLOAD_TOO_LARGE', message: /more than 10 BYTES elements/ });
  });

  it('refuses a shape of more dimensions than a tensor can have', () => {
    assert.throws(
      () =>
        createInputGate('m', [])(
          'x',
          'FP32',
          Array.from({ length: 255 }, () => 1),
        ),
      {
        code: 'INVALID_ARGUMENT',
        message: 'shape has 255 dimensions; expected at most 254',
      },
    );
  });
});
