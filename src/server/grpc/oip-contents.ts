/**
 * OIP gRPC `InferTensorContents` (typed repeated fields) ↔ Tensor. Raw contents
 * (`raw_input_contents` / `raw_output_contents`) go through the shared raw codec instead.
 * FP16 (and BF16, which inflow does not know) have no typed field: they travel raw only.
 */
import { InflowError } from '../../errors.ts';
import type { InferTensorContents, InferTensorContents__Output } from '../../protocol/generated/inference/InferTensorContents.ts';
import type { DType, NumericArray } from '../../tensor/dtype.ts';
import { arrayTypeOf } from '../../tensor/dtype.ts';
import type { Tensor } from '../../tensor/tensor.ts';

/** A typed contents field (each is a repeated field of one element type). */
type ContentsField = keyof InferTensorContents__Output;

/** The typed field of each dtype (none for FP16). */
export const contentsFieldOf: Record<DType, ContentsField | undefined> = {
  BOOL: 'bool_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
  FP16: undefined,
};

const FIELDS: readonly ContentsField[] = [
  'bool_contents',
  'int_contents',
  'int64_contents',
  'uint_contents',
  'uint64_contents',
  'fp32_contents',
  'fp64_contents',
  'bytes_contents',
];

/**
 * Typed contents as a deserializer gives them: proto-loader's arrays, or the typed arrays of the
 * server's one-pass ModelInfer decoder (infer-request-decoder.ts).
 */
export type ContentsLike = { readonly [F in ContentsField]: ArrayLike<unknown> };

/** Values set in any typed field (0 when `contents` is unset). */
export function contentsCount(contents: ContentsLike | null | undefined): number {
  if (!contents) return 0;
  let n = 0;
  // The deserializer fills every repeated field (`arrays`), empty when not sent.
  for (const field of FIELDS) n += contents[field].length;
  return n;
}

const intRange: Partial<Record<DType, readonly [number, number]>> = {
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  UINT8: [0, 255],
  UINT16: [0, 65535],
};

/**
 * The tensor of input `name` from its typed contents. INVALID_ARGUMENT when the dtype has no
 * typed field, values sit in another dtype's field, the count differs from the shape's, or an
 * integer is out of the dtype's range.
 */
export function tensorFromContents(
  name: string,
  dtype: DType,
  shape: readonly number[],
  count: number,
  contents: ContentsLike | null | undefined,
): Tensor {
  const field = contentsFieldOf[dtype];
  if (field === undefined) {
    throw new InflowError('INVALID_ARGUMENT', `input "${name}": ${dtype} has no typed contents field; send it in raw_input_contents`);
  }
  const values: ArrayLike<unknown> = contents?.[field] ?? [];
  if (values.length !== contentsCount(contents)) {
    const other = FIELDS.filter((f) => f !== field && (contents?.[f].length ?? 0) > 0);
    throw new InflowError(
      'INVALID_ARGUMENT',
      `input "${name}": ${dtype} values belong in contents.${field}, got values in ${other.join(', ')}`,
    );
  }
  if (values.length !== count) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      `input "${name}": ${dtype} shape [${shape.join(', ')}] needs ${count} values in contents.${field}, got ${values.length}`,
    );
  }
  return { dtype, shape: [...shape], data: fromValues(name, dtype, values, count) };
}

function fromValues(name: string, dtype: DType, values: ArrayLike<unknown>, count: number): Tensor['data'] {
  switch (dtype) {
    case 'BYTES':
      return Array.from(values as ArrayLike<Uint8Array>);
    case 'BOOL':
      return Uint8Array.from(values as ArrayLike<boolean>, (v) => (v ? 1 : 0));
    case 'INT64':
      return BigInt64Array.from(values as ArrayLike<string>, (v) => BigInt(v));
    case 'UINT64':
      return BigUint64Array.from(values as ArrayLike<string>, (v) => BigInt(v));
    default: {
      const list = values as ArrayLike<number>;
      const range = intRange[dtype];
      if (range) {
        for (let i = 0; i < count; i++) {
          const v = list[i] as number;
          if (v < range[0] || v > range[1])
            throw new InflowError('INVALID_ARGUMENT', `input "${name}": value ${v} at ${i} is out of range for ${dtype}`);
        }
      }
      const Ctor = arrayTypeOf[dtype] as unknown as new (length: number) => Exclude<NumericArray, BigInt64Array | BigUint64Array>;
      // The one-pass decoder's arrays are the request's own (a fresh buffer per field): the tensor
      // adopts them. Not an empty one: those are shared by every request that leaves the field out.
      if (values instanceof Ctor && count > 0) return values;
      const out = new Ctor(count);
      out.set(list);
      return out;
    }
  }
}

/**
 * Typed contents of an output tensor; undefined for FP16 (raw only). Numeric data other than
 * 64-bit stays in its typed array and 64-bit integers become numbers where they are safe
 * integers: the ModelInfer response serializer (`directSerializer` in grpc-protos.ts, protobufjs's
 * `Type.encode`) reads any array-like by index and writes int64 from numbers without parsing a
 * decimal string, where proto-loader's `fromObject` would need arrays. 1.1 µs of the 10.6 µs of
 * inflow's own path per digits-mlp call went to `Array.from` here before
 * (bench/server/grpc-modelinfer-cost.ts).
 */
export function tensorToContents(tensor: Tensor): InferTensorContents | undefined {
  const field = contentsFieldOf[tensor.dtype];
  if (field === undefined) return undefined;
  switch (tensor.dtype) {
    case 'BYTES':
      return { bytes_contents: (tensor.data as Uint8Array[]).map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)) };
    case 'BOOL':
      return { bool_contents: Array.from(tensor.data as Uint8Array, (v) => v !== 0) };
    case 'INT64':
    case 'UINT64':
      return { [field]: Array.from(tensor.data as BigInt64Array | BigUint64Array, int64Value) };
    default:
      // A typed array where the generated type says number[]: see above.
      return { [field]: tensor.data as unknown as number[] };
  }
}

/** An int64 value for the encoder: a number when exact, else its decimal string. */
function int64Value(v: bigint): number | string {
  return v <= MAX_SAFE && v >= MIN_SAFE ? Number(v) : String(v);
}
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
