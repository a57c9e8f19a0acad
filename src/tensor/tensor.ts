/**
 * The in-memory tensor every codec, servable and transport shares: a dtype, a shape and the
 * elements in row-major order. Fixed-size dtypes hold a typed array (zero-copy views over wire
 * buffers where alignment allows); BYTES holds one Uint8Array per element (strings as UTF-8).
 */
import { InflowError } from '../errors.ts';
import { arrayTypeOf, type DType, type NumericArray } from './dtype.ts';

/** Elements of a tensor: a typed array, or byte strings for BYTES. */
export type TensorData = NumericArray | Uint8Array[];

/** A tensor. Treat as immutable: codecs and batchers may share its buffers. */
export interface Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

/** Largest element count a tensor may have (2^31 − 1): guards allocations against hostile shapes. */
export const MAX_ELEMENTS = 0x7fffffff;

/**
 * Most dimensions a tensor may have (TensorFlow's kMaxDims). Bounds the nesting depth the JSON
 * codecs walk: a `[[[[…` request 100 000 levels deep is the caller's mistake, answered
 * INVALID_ARGUMENT, not a stack overflow.
 */
export const MAX_RANK = 254;

/**
 * A gate a decoder calls with each tensor's name, dtype and shape once its header is read and
 * before any element is decoded (a server checks them against the model's signature and its
 * element limits there, so a hostile request is refused before it costs memory); it throws to
 * refuse the request.
 */
export type TensorGate = (name: string, dtype: DType, shape: readonly number[]) => void;

/** Number of elements of a shape (1 for a scalar); throws on negative, fractional or huge dims and more than {@link MAX_RANK} of them. */
export function elementCount(shape: readonly number[]): number {
  if (shape.length > MAX_RANK) {
    throw new InflowError('INVALID_ARGUMENT', `shape has ${shape.length} dimensions; expected at most ${MAX_RANK}`);
  }
  let count = 1;
  for (const [i, dim] of shape.entries()) {
    if (!Number.isInteger(dim) || dim < 0) {
      throw new InflowError('INVALID_ARGUMENT', `shape [${shape.join(', ')}]: dimension ${i} is ${dim}; expected a non-negative integer`);
    }
    count *= dim;
    if (count > MAX_ELEMENTS) {
      throw new InflowError('INVALID_ARGUMENT', `shape [${shape.join(', ')}] has more than ${MAX_ELEMENTS} elements`);
    }
  }
  return count;
}

/** Whether `data` is the right container for `dtype` (typed array kind, or byte strings for BYTES). */
export function dataFits(dtype: DType, data: TensorData): boolean {
  if (dtype === 'BYTES') return Array.isArray(data);
  return !Array.isArray(data) && data.constructor === arrayTypeOf[dtype];
}

/** Creates a tensor after checking the container and the element count against the shape. */
export function createTensor(dtype: DType, shape: readonly number[], data: TensorData): Tensor {
  const count = elementCount(shape);
  if (!dataFits(dtype, data)) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      `${dtype} tensor data must be ${dtype === 'BYTES' ? 'a list of byte strings' : arrayTypeOf[dtype].name}`,
    );
  }
  if (data.length !== count) {
    throw new InflowError('INVALID_ARGUMENT', `shape [${shape.join(', ')}] holds ${count} elements but ${data.length} were given`);
  }
  return { dtype, shape: [...shape], data };
}

/** A zero-filled tensor (empty byte strings for BYTES). */
export function zeros(dtype: DType, shape: readonly number[]): Tensor {
  const count = elementCount(shape);
  if (dtype === 'BYTES') return { dtype, shape: [...shape], data: Array.from({ length: count }, () => new Uint8Array(0)) };
  return { dtype, shape: [...shape], data: new arrayTypeOf[dtype](count) };
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** A BYTES tensor of UTF-8 strings. */
export function stringTensor(shape: readonly number[], values: readonly string[]): Tensor {
  return createTensor(
    'BYTES',
    shape,
    values.map((s) => utf8.encode(s)),
  );
}

/** The elements of a BYTES tensor as UTF-8 strings. */
export function tensorStrings(tensor: Tensor): string[] {
  if (tensor.dtype !== 'BYTES') throw new InflowError('INVALID_ARGUMENT', `expected a BYTES tensor, got ${tensor.dtype}`);
  return (tensor.data as Uint8Array[]).map((b) => utf8Decoder.decode(b));
}
