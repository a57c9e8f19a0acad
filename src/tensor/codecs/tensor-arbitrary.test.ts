/**
 * fast-check arbitraries of tensors and a strict tensor equality, shared by the codec property
 * tests (a *.test.ts file so that it stays out of the package; its own tests check the helpers).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DType } from '../dtype.ts';
import { createTensor, elementCount, type Tensor } from '../tensor.ts';
import { halfBitsToFloat } from './half.ts';

export const ALL_DTYPES: readonly DType[] = Object.values(DType);

export interface TensorArbitraryOptions {
  dtypes?: readonly DType[];
  minRank?: number;
  maxRank?: number;
  minDim?: number;
  maxDim?: number;
  /** `utf8`: BYTES elements are UTF-8 text (what JSON strings can carry); `binary`: any bytes. */
  bytes?: 'utf8' | 'binary';
  /** Keep INT64/UINT64 within ±2^53 (JSON numbers cannot carry more). */
  safeInt64?: boolean;
}

const utf8 = new TextEncoder();

function dataArbitrary(dtype: DType, count: number, options: TensorArbitraryOptions): fc.Arbitrary<Tensor['data']> {
  const n = { minLength: count, maxLength: count };
  const ints = (min: number, max: number) => fc.array(fc.integer({ min, max }), n);
  const maxSafe = BigInt(Number.MAX_SAFE_INTEGER);
  switch (dtype) {
    case 'BYTES':
      return options.bytes === 'binary'
        ? fc.array(fc.uint8Array({ maxLength: 6 }), n)
        : fc.array(fc.string({ unit: 'grapheme', maxLength: 4 }), n).map((s) => s.map((x) => utf8.encode(x)));
    case 'BOOL':
      return ints(0, 1).map((a) => Uint8Array.from(a));
    case 'UINT8':
      return ints(0, 255).map((a) => Uint8Array.from(a));
    case 'INT8':
      return ints(-128, 127).map((a) => Int8Array.from(a));
    case 'UINT16':
      return ints(0, 65535).map((a) => Uint16Array.from(a));
    case 'FP16':
      return ints(0, 65535).map((a) => Uint16Array.from(a));
    case 'INT16':
      return ints(-32768, 32767).map((a) => Int16Array.from(a));
    case 'UINT32':
      return fc.array(fc.nat({ max: 0xffffffff }), n).map((a) => Uint32Array.from(a));
    case 'INT32':
      return fc.array(fc.integer(), n).map((a) => Int32Array.from(a));
    case 'INT64':
      return fc
        .array(options.safeInt64 ? fc.bigInt({ min: -maxSafe, max: maxSafe }) : fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), n)
        .map((a) => BigInt64Array.from(a));
    case 'UINT64':
      return fc.array(fc.bigInt({ min: 0n, max: options.safeInt64 ? maxSafe : 2n ** 64n - 1n }), n).map((a) => BigUint64Array.from(a));
    case 'FP32':
      return fc.array(fc.float(), n).map((a) => Float32Array.from(a));
    case 'FP64':
      return fc.array(fc.double(), n).map((a) => Float64Array.from(a));
  }
}

/** Random small tensors (rank ≤ 3, dims ≤ 3 by default) of the given dtypes. */
export function tensorArbitrary(options: TensorArbitraryOptions = {}): fc.Arbitrary<Tensor> {
  const dims = fc.integer({ min: options.minDim ?? 0, max: options.maxDim ?? 3 });
  const shapes = fc.array(dims, { minLength: options.minRank ?? 0, maxLength: options.maxRank ?? 3 });
  return fc
    .tuple(fc.constantFrom(...(options.dtypes ?? ALL_DTYPES)), shapes)
    .chain(([dtype, shape]) => dataArbitrary(dtype, elementCount(shape), options).map((data) => createTensor(dtype, shape, data)));
}

/** Asserts equal dtype, shape and elements: floats by Object.is (NaN equals NaN, 0 differs from -0), FP16 by value. */
export function assertTensorEqual(actual: Tensor | undefined, expected: Tensor, label = 'tensor'): void {
  assert.ok(actual, `${label}: missing`);
  assert.equal(actual.dtype, expected.dtype, `${label}: dtype`);
  assert.deepEqual([...actual.shape], [...expected.shape], `${label}: shape`);
  assert.equal(actual.data.length, expected.data.length, `${label}: element count`);
  for (let i = 0; i < expected.data.length; i++) {
    let a: unknown = actual.data[i];
    let e: unknown = expected.data[i];
    if (expected.dtype === 'BYTES') {
      assert.deepEqual([...(a as Uint8Array)], [...(e as Uint8Array)], `${label}: element ${i}`);
      continue;
    }
    if (expected.dtype === 'FP16') {
      a = halfBitsToFloat(a as number);
      e = halfBitsToFloat(e as number);
    }
    assert.ok(Object.is(a, e), `${label}: element ${i} is ${String(a)}, expected ${String(e)}`);
  }
}

// Only when run as a test file itself, not each time a codec test imports the helpers.
if (import.meta.main) {
  describe('tensor arbitraries for codec tests', () => {
    it('produce valid tensors of every dtype within the size limits', () => {
      const seen = new Set<DType>();
      fc.assert(
        fc.property(tensorArbitrary(), (t) => {
          seen.add(t.dtype);
          assert.ok(t.shape.length <= 3 && t.shape.every((d) => d <= 3));
          assert.equal(t.data.length, elementCount(t.shape));
        }),
        { numRuns: 300 },
      );
      assert.equal(seen.size, ALL_DTYPES.length);
    });

    it('equality tells NaN from a number and 0 from -0', () => {
      const t = (v: number) => createTensor('FP32', [1], Float32Array.of(v));
      assertTensorEqual(t(Number.NaN), t(Number.NaN));
      assert.throws(() => assertTensorEqual(t(0), t(-0)));
      assert.throws(() => assertTensorEqual(t(1), t(Number.NaN)));
    });
  });
}
