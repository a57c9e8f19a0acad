/**
 * tensorflow.TensorProto ↔ Tensor, for TF Serving gRPC (and PredictionLog records).
 *
 * Message objects are those protobufjs / @grpc/proto-loader produce and accept with
 * {@link PROTO_LOAD_OPTIONS}: `keepCase: true` field names, `enums: String` (`"DT_FLOAT"`),
 * `longs: String` (int64 as decimal strings), `bytes: Buffer`. Decoding is lenient about the
 * options actually used: enums as numbers, int64 as numbers, bigints or Long objects, bytes as
 * base64 strings, and missing or empty repeated fields are all read.
 *
 * Decoding reads `tensor_content` (what Python's `make_tensor_proto` sends; a zero-copy view when
 * aligned) or the typed `*_val` field of the dtype (what Java/Go/grpcurl clients send; one copy),
 * broadcasting a single value over the whole shape (TF's version-0 semantics). Encoding writes the
 * typed field (TF Serving's default, readable by every client; one JS number per element) or,
 * when asked, `tensor_content` (a view over the typed array: no copy, much cheaper).
 */
import { Buffer } from 'node:buffer';
import type protobuf from 'protobufjs';
import { InflowError } from '../../errors.ts';
import { loadProtoRoot } from '../../protocol/proto-files.ts';
import type { DType, NumericArray } from '../dtype.ts';
import { elementCount, type Tensor, type TensorGate } from '../tensor.ts';
import { numericBytes, numericFromBytes } from './raw-tensor.ts';

/** int64 as the options may present it: decimal string, number, bigint or a protobufjs Long. */
export type LongLike = string | number | bigint | { low: number; high: number; unsigned?: boolean };

/** A tensorflow.TensorProto message object (fields the codec reads or writes; others ignored). */
export interface TensorProtoObject {
  dtype?: string | number;
  tensor_shape?: { dim?: { size?: LongLike; name?: string }[] | null; unknown_rank?: boolean } | null;
  version_number?: number;
  tensor_content?: Uint8Array | string;
  half_val?: number[];
  float_val?: number[];
  double_val?: number[];
  int_val?: number[];
  string_val?: (Uint8Array | string)[];
  int64_val?: LongLike[];
  bool_val?: boolean[];
  uint32_val?: number[];
  uint64_val?: LongLike[];
}

/** TensorFlow DataType name of each inflow dtype. */
export const tfDataTypeOf: Record<DType, string> = {
  BOOL: 'DT_BOOL',
  UINT8: 'DT_UINT8',
  UINT16: 'DT_UINT16',
  UINT32: 'DT_UINT32',
  UINT64: 'DT_UINT64',
  INT8: 'DT_INT8',
  INT16: 'DT_INT16',
  INT32: 'DT_INT32',
  INT64: 'DT_INT64',
  FP16: 'DT_HALF',
  FP32: 'DT_FLOAT',
  FP64: 'DT_DOUBLE',
  BYTES: 'DT_STRING',
};

/** Wire numbers of the DataType values inflow maps (types.proto; stable). */
const tfDataTypeNumber: Record<DType, number> = {
  FP32: 1,
  FP64: 2,
  INT32: 3,
  UINT8: 4,
  INT16: 5,
  INT8: 6,
  BYTES: 7,
  INT64: 9,
  BOOL: 10,
  UINT16: 17,
  FP16: 19,
  UINT32: 22,
  UINT64: 23,
};

const dtypeByTf = new Map<string | number, DType>();
for (const [dtype, tf] of Object.entries(tfDataTypeOf) as [DType, string][]) {
  dtypeByTf.set(tf, dtype);
  dtypeByTf.set(tfDataTypeNumber[dtype], dtype);
}

/** The inflow dtype of a TensorFlow DataType (name or number); INVALID_ARGUMENT for unsupported ones. */
export function dtypeOfTfDataType(value: unknown, name = 'tensor'): DType {
  const dtype = typeof value === 'string' || typeof value === 'number' ? dtypeByTf.get(value) : undefined;
  if (dtype) return dtype;
  throw new InflowError(
    'INVALID_ARGUMENT',
    `tensor "${name}": unsupported dtype ${JSON.stringify(value ?? 'DT_INVALID')}; expected one of ${Object.values(tfDataTypeOf).join(', ')}`,
  );
}

/** The .proto file of TensorProto, relative to PROTO_DIR. */
export const TENSOR_PROTO_FILE = 'tensorflow/core/framework/tensor.proto';

let tensorProtoType: protobuf.Type | undefined;

/** The protobufjs type of tensorflow.TensorProto (loaded from src/protocol on first use). */
export function getTensorProtoType(): protobuf.Type {
  tensorProtoType ??= loadProtoRoot([TENSOR_PROTO_FILE]).lookupType('tensorflow.TensorProto');
  return tensorProtoType;
}

/** Options of {@link tensorToProto}. */
export interface TensorProtoEncodeOptions {
  /** `typed` (default): the dtype's `*_val` field; `tensor_content`: raw little-endian bytes (not for BYTES). */
  content?: 'typed' | 'tensor_content';
}

function bufferView(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A TensorProto message object for a tensor (see the module comment for the options assumed). */
export function tensorToProto(tensor: Tensor, options: TensorProtoEncodeOptions = {}): TensorProtoObject {
  const proto: TensorProtoObject = {
    dtype: tfDataTypeOf[tensor.dtype],
    tensor_shape: { dim: tensor.shape.map((d) => ({ size: String(d) })) },
  };
  if (tensor.dtype === 'BYTES') {
    proto.string_val = (tensor.data as Uint8Array[]).map(bufferView);
    return proto;
  }
  const data = tensor.data as NumericArray;
  if (options.content === 'tensor_content') {
    proto.tensor_content = bufferView(numericBytes(data));
    return proto;
  }
  switch (tensor.dtype) {
    case 'FP32':
      proto.float_val = Array.from(data as Float32Array);
      break;
    case 'FP64':
      proto.double_val = Array.from(data as Float64Array);
      break;
    case 'FP16':
      proto.half_val = Array.from(data as Uint16Array);
      break;
    case 'BOOL':
      proto.bool_val = Array.from(data as Uint8Array, (v) => v !== 0);
      break;
    case 'UINT32':
      proto.uint32_val = Array.from(data as Uint32Array);
      break;
    case 'INT64':
      proto.int64_val = Array.from(data as BigInt64Array, String);
      break;
    case 'UINT64':
      proto.uint64_val = Array.from(data as BigUint64Array, String);
      break;
    default:
      // INT32, INT16, INT8, UINT8, UINT16 all travel in int_val (tensor.proto).
      proto.int_val = Array.from(data as Int32Array);
  }
  return proto;
}

function toBigInt(value: LongLike, unsigned: boolean): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'string') return BigInt(value);
  if (typeof value === 'number') return BigInt(Math.trunc(value));
  const big = (BigInt(value.high >>> 0) << 32n) | BigInt(value.low >>> 0);
  return unsigned ? big : BigInt.asIntN(64, big);
}

function dimSize(value: LongLike | undefined): number {
  if (value === undefined) return 0;
  if (typeof value === 'number') return value;
  return Number(toBigInt(value, false));
}

function toBytes(value: Uint8Array | string): Uint8Array {
  if (typeof value !== 'string')
    return value.constructor === Uint8Array ? value : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  const bytes = Buffer.from(value, 'base64');
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const intRange: Partial<Record<DType, readonly [number, number]>> = {
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  UINT8: [0, 255],
  UINT16: [0, 65535],
};

/** Most elements a single broadcast `*_val` value may fill (2^24): bounds what a tiny message can allocate. */
export const MAX_BROADCAST_ELEMENTS = 1 << 24;

/** Typed field that carries each dtype, for error messages. */
const fieldOf: Record<DType, keyof TensorProtoObject> = {
  FP32: 'float_val',
  FP64: 'double_val',
  FP16: 'half_val',
  BOOL: 'bool_val',
  UINT32: 'uint32_val',
  INT64: 'int64_val',
  UINT64: 'uint64_val',
  INT32: 'int_val',
  INT16: 'int_val',
  INT8: 'int_val',
  UINT8: 'int_val',
  UINT16: 'int_val',
  BYTES: 'string_val',
};

/**
 * A tensor from a TensorProto message object. INVALID_ARGUMENT (naming `name`) for an
 * unsupported dtype, unknown rank, bad dims, or a value count that is neither the element
 * count nor 1 (broadcast). `gate` sees the name, dtype and shape before any value is decoded.
 */
export function tensorFromProto(proto: TensorProtoObject, name = 'tensor', gate?: TensorGate): Tensor {
  const dtype = dtypeOfTfDataType(proto.dtype ?? 0, name);
  const tensorShape = proto.tensor_shape ?? undefined;
  if (tensorShape?.unknown_rank === true) {
    throw new InflowError('INVALID_ARGUMENT', `tensor "${name}": shape has unknown rank; expected known dims`);
  }
  const shape = (tensorShape?.dim ?? []).map((d) => dimSize(d.size));
  let count: number;
  try {
    count = elementCount(shape);
  } catch (error) {
    throw new InflowError('INVALID_ARGUMENT', `tensor "${name}": ${(error as Error).message}`, { cause: error });
  }
  gate?.(name, dtype, shape);
  const content = proto.tensor_content;
  if (content !== undefined && content.length > 0) {
    if (dtype === 'BYTES') throw new InflowError('INVALID_ARGUMENT', `tensor "${name}": DT_STRING must use string_val, not tensor_content`);
    const bytes = toBytes(content);
    const size = numericBytesPerElement(dtype);
    if (bytes.byteLength !== count * size) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `tensor "${name}": ${tfDataTypeOf[dtype]} shape [${shape.join(', ')}] needs ${count * size} bytes of tensor_content, got ${bytes.byteLength}`,
      );
    }
    return { dtype, shape, data: numericFromBytes(dtype, bytes, count) };
  }
  const field = fieldOf[dtype];
  const values = (proto[field] ?? []) as ArrayLike<unknown>;
  const n = values.length;
  if (n === 1 && count > MAX_BROADCAST_ELEMENTS) {
    // A few bytes on the wire must not allocate gigabytes: request size limits cannot see this.
    throw new InflowError(
      'INVALID_ARGUMENT',
      `tensor "${name}": broadcasting 1 value of ${field} to ${count} elements exceeds the limit of ${MAX_BROADCAST_ELEMENTS}; send every value`,
    );
  }
  if (n !== count && !(n === 1 && count > 1)) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      `tensor "${name}": ${tfDataTypeOf[dtype]} shape [${shape.join(', ')}] needs ${count} values in ${field}${count > 1 ? ' (or 1 to broadcast)' : ''}, got ${n}`,
    );
  }
  return { dtype, shape, data: fromTypedField(dtype, values, count, name) };
}

function numericBytesPerElement(dtype: Exclude<DType, 'BYTES'>): number {
  switch (dtype) {
    case 'BOOL':
    case 'UINT8':
    case 'INT8':
      return 1;
    case 'UINT16':
    case 'INT16':
    case 'FP16':
      return 2;
    case 'UINT32':
    case 'INT32':
    case 'FP32':
      return 4;
    default:
      return 8;
  }
}

/** Converts `values` (length `count`, or 1 to broadcast) of the dtype's typed field. One copy. */
function fromTypedField(dtype: DType, values: ArrayLike<unknown>, count: number, name: string): Tensor['data'] {
  const broadcast = values.length === 1 && count > 1;
  switch (dtype) {
    case 'BYTES': {
      const list = values as ArrayLike<Uint8Array | string>;
      if (broadcast) return new Array<Uint8Array>(count).fill(toBytes(list[0] as Uint8Array | string));
      return Array.from(list, toBytes);
    }
    case 'BOOL': {
      const out = new Uint8Array(count);
      const list = values as ArrayLike<boolean>;
      if (broadcast) return out.fill(list[0] ? 1 : 0);
      for (let i = 0; i < count; i++) out[i] = list[i] ? 1 : 0;
      return out;
    }
    case 'INT64':
    case 'UINT64': {
      const unsigned = dtype === 'UINT64';
      const out = unsigned ? new BigUint64Array(count) : new BigInt64Array(count);
      const list = values as ArrayLike<LongLike>;
      if (broadcast) return out.fill(toBigInt(list[0] as LongLike, unsigned));
      for (let i = 0; i < count; i++) out[i] = toBigInt(list[i] as LongLike, unsigned);
      return out;
    }
    default: {
      const out = newNumeric(dtype, count);
      const list = values as ArrayLike<number>;
      const range = intRange[dtype];
      if (range) {
        for (let i = 0; i < values.length; i++) {
          const v = list[i] as number;
          if (v < range[0] || v > range[1]) {
            throw new InflowError('INVALID_ARGUMENT', `tensor "${name}": int_val[${i}] = ${v} is out of range for ${tfDataTypeOf[dtype]}`);
          }
        }
      }
      if (broadcast) return out.fill(list[0] as number);
      // half_val holds the 16-bit pattern in an int32: Uint16Array keeps the low 16 bits.
      out.set(list);
      return out;
    }
  }
}

function newNumeric(
  dtype: Exclude<DType, 'BYTES' | 'BOOL' | 'INT64' | 'UINT64'>,
  count: number,
): Exclude<NumericArray, BigInt64Array | BigUint64Array> {
  switch (dtype) {
    case 'FP32':
      return new Float32Array(count);
    case 'FP64':
      return new Float64Array(count);
    case 'INT32':
      return new Int32Array(count);
    case 'INT16':
      return new Int16Array(count);
    case 'INT8':
      return new Int8Array(count);
    case 'UINT8':
      return new Uint8Array(count);
    case 'UINT32':
      return new Uint32Array(count);
    default:
      // UINT16 and FP16 (half bits)
      return new Uint16Array(count);
  }
}

/** Serializes a tensor as TensorProto wire bytes (protobufjs). */
export function encodeTensorProtoBytes(tensor: Tensor, options: TensorProtoEncodeOptions = {}): Uint8Array {
  const type = getTensorProtoType();
  return type.encode(type.fromObject(tensorToProto(tensor, options))).finish();
}

/**
 * Parses TensorProto wire bytes (packed or unpacked repeated fields) into a tensor.
 * `tensor_content` and `string_val` elements stay views over `bytes` where alignment allows.
 */
export function decodeTensorProtoBytes(bytes: Uint8Array, name = 'tensor'): Tensor {
  let message: protobuf.Message;
  try {
    message = getTensorProtoType().decode(bytes);
  } catch (error) {
    throw new InflowError('INVALID_ARGUMENT', `tensor "${name}": malformed TensorProto bytes: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return tensorFromProto(message as unknown as TensorProtoObject, name);
}
