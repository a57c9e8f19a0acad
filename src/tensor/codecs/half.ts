/**
 * IEEE 754 binary16 ("half", FP16 / DT_HALF) conversions. inflow keeps FP16 tensors as raw
 * uint16 bit patterns; JSON codecs need numbers.
 */

/** Rounds to the nearest integer, ties to even (IEEE default rounding). */
function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const rest = x - floor;
  if (rest > 0.5) return floor + 1;
  if (rest < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * The binary16 bit pattern nearest to `value` (round to nearest, ties to even; overflow to
 * ±Infinity; NaN becomes the canonical quiet NaN 0x7e00). Rounds once, straight from the double.
 */
export function floatToHalfBits(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const v = Math.abs(value);
  // 65520 is halfway between the largest half (65504) and 2^16; ties-to-even rounds it up to Infinity.
  if (v >= 65520) return sign | 0x7c00;
  if (v < 2 ** -14) {
    // Subnormal range: the value in units of 2^-24 (exact: scaling by a power of two). 1024 is the
    // smallest normal, whose bit pattern is exactly 0x0400.
    return sign | roundHalfEven(v * 2 ** 24);
  }
  let exp = Math.floor(Math.log2(v));
  // log2 may be off by one near powers of two; fix it so that v / 2^exp is in [1, 2).
  if (v / 2 ** exp >= 2) exp += 1;
  else if (v / 2 ** exp < 1) exp -= 1;
  let frac = roundHalfEven((v / 2 ** exp - 1) * 1024);
  if (frac === 1024) {
    frac = 0;
    exp += 1;
  }
  if (exp > 15) return sign | 0x7c00;
  return sign | ((exp + 15) << 10) | frac;
}

/** The number a binary16 bit pattern stands for (exact: every half is a double). */
export function halfBitsToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac === 0 ? sign * Infinity : Number.NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}
