import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { floatToHalfBits, halfBitsToFloat } from './half.ts';

describe('binary16 conversions', () => {
  it('maps known values to their IEEE bit patterns', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [0.5, 0x3800],
      [65504, 0x7bff],
      [2 ** -14, 0x0400],
      [2 ** -24, 0x0001],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [0.1, 0x2e66],
    ];
    for (const [value, bits] of cases) assert.equal(floatToHalfBits(value), bits, `value ${value}`);
    assert.ok(Number.isNaN(halfBitsToFloat(floatToHalfBits(Number.NaN))));
  });

  it('rounds to nearest with ties to even, and overflows to infinity at 65520', () => {
    assert.equal(floatToHalfBits(1 + 2 ** -11), 0x3c00); // tie between 1 and 1+2^-10: even is 1
    assert.equal(floatToHalfBits(1 + 3 * 2 ** -11), 0x3c02); // tie: rounds up to the even mantissa 2
    assert.equal(floatToHalfBits(65519), 0x7bff);
    assert.equal(floatToHalfBits(65520), 0x7c00);
    assert.equal(floatToHalfBits(2 ** -25), 0x0000); // tie between 0 and the smallest subnormal
    assert.equal(floatToHalfBits(1.5 * 2 ** -25), 0x0001);
  });

  it('round-trips every non-NaN bit pattern exactly', () => {
    for (let bits = 0; bits <= 0xffff; bits++) {
      const value = halfBitsToFloat(bits);
      if (Number.isNaN(value)) continue;
      assert.equal(floatToHalfBits(value), bits, `bits ${bits.toString(16)}`);
    }
  });
});
