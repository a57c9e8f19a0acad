/**
 * Tensor element types, named as in the Open Inference Protocol (v2) datatypes, with their
 * byte sizes and typed-array constructors. BYTES (strings / raw bytes) has no fixed size.
 */

export const DType = {
  BOOL: 'BOOL',
  UINT8: 'UINT8',
  UINT16: 'UINT16',
  UINT32: 'UINT32',
  UINT64: 'UINT64',
  INT8: 'INT8',
  INT16: 'INT16',
  INT32: 'INT32',
  INT64: 'INT64',
  FP16: 'FP16',
  FP32: 'FP32',
  FP64: 'FP64',
  BYTES: 'BYTES',
} as const;
export type DType = (typeof DType)[keyof typeof DType];

/** Typed arrays that hold fixed-size tensor data (FP16 is carried as raw Uint16 bits). */
export type NumericArray =
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Float32Array
  | Float64Array;

type ArrayCtor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): NumericArray;
  new (length: number): NumericArray;
  readonly BYTES_PER_ELEMENT: number;
};

/** Typed-array constructor of each fixed-size dtype. */
export const arrayTypeOf: Record<Exclude<DType, 'BYTES'>, ArrayCtor> = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
  UINT64: BigUint64Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  FP16: Uint16Array,
  FP32: Float32Array,
  FP64: Float64Array,
};

/** Wire codes of dtypes in inflow's binary tensor format (stable: never renumber). */
export const dtypeCode: Record<DType, number> = {
  BOOL: 1,
  UINT8: 2,
  UINT16: 3,
  UINT32: 4,
  UINT64: 5,
  INT8: 6,
  INT16: 7,
  INT32: 8,
  INT64: 9,
  FP16: 10,
  FP32: 11,
  FP64: 12,
  BYTES: 13,
};

export const dtypeByCode: ReadonlyMap<number, DType> = new Map(Object.entries(dtypeCode).map(([k, v]) => [v, k as DType]));

/** Whether a string names a dtype. */
export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && Object.hasOwn(DType, value);
}
