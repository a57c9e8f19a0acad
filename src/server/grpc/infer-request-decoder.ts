/**
 * The server's request deserializer for OIP ModelInfer: the object proto-loader's deserializer
 * gives (field names as in the .proto, int64 as decimal strings, bytes as Buffer, every repeated
 * field present), except that the 32- and 64-bit numeric typed contents (`fp32_contents`,
 * `fp64_contents`, `int_contents`, `uint_contents`) arrive as Float32Array / Float64Array /
 * Int32Array / Uint32Array, read from the wire in one pass: no JS array of numbers first, no
 * `toObject` copy of it, and the tensor then adopts the array as it is ({@link tensorFromContents}).
 * For digits-mlp's 64-float request that is the largest cost of inflow's own ModelInfer path
 * (bench/server/grpc-modelinfer-cost.ts). Everything else (names, shapes, parameters, raw
 * contents, bool/int64/uint64/bytes contents) is decoded by protobufjs's generated code as before.
 */
import { endianness } from 'node:os';
import type protobuf from 'protobufjs';
import { loadProtoRoot, PROTO_LOAD_OPTIONS } from '../../protocol/proto-files.ts';

/** Typed contents as {@link createInferRequestDeserializer} gives them. */
export interface DecodedContents {
  bool_contents: boolean[];
  int_contents: Int32Array;
  int64_contents: string[];
  uint_contents: Uint32Array;
  uint64_contents: string[];
  fp32_contents: Float32Array;
  fp64_contents: Float64Array;
  bytes_contents: Buffer[];
}

const LITTLE_ENDIAN = endianness() === 'LE';

// The fields not sent share these (a typed array is an allocation of its own even when empty).
// Nothing writes to an empty array, and tensors never adopt one (tensorFromContents copies empty data).
const EMPTY_INT32 = new Int32Array(0);
const EMPTY_UINT32 = new Uint32Array(0);
const EMPTY_FP32 = new Float32Array(0);
const EMPTY_FP64 = new Float64Array(0);

type Numeric = Float32Array | Float64Array | Int32Array | Uint32Array;
type NumericCtor = new (length: number) => Numeric;

/**
 * An int64 as proto-loader gives it with `longs: String`: the reader returns a Long (signed or
 * unsigned as the field), whose toString is its decimal value; a number where no Long class is installed.
 */
function decimal(value: protobuf.Long | number): string {
  return typeof value === 'number' ? String(value) : (value as unknown as { toString(): string }).toString();
}

/** Appends `more` to `list` (a field may come in several chunks, packed or not: proto3 §Encoding). */
function append(list: Numeric, more: ArrayLike<number>, Ctor: NumericCtor): Numeric {
  if (list.length === 0 && more instanceof Ctor) return more;
  const out = new Ctor(list.length + more.length);
  out.set(list);
  out.set(more, list.length);
  return out;
}

/** A packed fixed-width field (float, double) straight from the wire into a typed array. */
function readFixed(reader: protobuf.Reader, Ctor: typeof Float32Array | typeof Float64Array): Float32Array | Float64Array {
  const bytes = reader.uint32();
  const end = reader.pos + bytes;
  if (end > reader.len) throw new RangeError(`index out of range: ${reader.pos} + ${bytes} > ${reader.len}`);
  const width = Ctor.BYTES_PER_ELEMENT;
  if (bytes % width !== 0) throw new Error(`a packed ${width * 8}-bit float field of ${bytes} bytes is not a whole number of values`);
  const buf = reader.buf;
  let out: Float32Array | Float64Array;
  if (LITTLE_ENDIAN) {
    // The wire is little-endian (protobuf encoding): a copy of the bytes is the decode.
    out = new Ctor((buf.buffer as ArrayBuffer).slice(buf.byteOffset + reader.pos, buf.byteOffset + end));
  } else {
    out = new Ctor(bytes / width);
    const view = new DataView(buf.buffer, buf.byteOffset + reader.pos, bytes);
    for (let i = 0; i < out.length; i++) out[i] = width === 4 ? view.getFloat32(i * 4, true) : view.getFloat64(i * 8, true);
  }
  reader.pos = end;
  return out;
}

/** A packed varint field (int32, uint32): counts the values (bytes without the continuation bit), then reads them. */
function readVarints(reader: protobuf.Reader, signed: boolean): Int32Array | Uint32Array {
  const bytes = reader.uint32();
  const end = reader.pos + bytes;
  if (end > reader.len) throw new RangeError(`index out of range: ${reader.pos} + ${bytes} > ${reader.len}`);
  let count = 0;
  for (let i = reader.pos; i < end; i++) if ((reader.buf[i] as number) < 0x80) count++;
  const out = signed ? new Int32Array(count) : new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = signed ? reader.int32() : reader.uint32();
  if (reader.pos !== end) throw new Error('a packed varint field ends inside a value');
  return out;
}

/** Decodes one inference.InferTensorContents message (`length` bytes from the reader's position). */
function decodeContents(reader: protobuf.Reader, length?: number): DecodedContents {
  const end = length === undefined ? reader.len : reader.pos + length;
  const out: DecodedContents = {
    bool_contents: [],
    int_contents: EMPTY_INT32,
    int64_contents: [],
    uint_contents: EMPTY_UINT32,
    uint64_contents: [],
    fp32_contents: EMPTY_FP32,
    fp64_contents: EMPTY_FP64,
    bytes_contents: [],
  };
  while (reader.pos < end) {
    const tag = reader.uint32();
    const wire = tag & 7;
    const packed = wire === 2;
    switch (tag >>> 3) {
      case 1:
        if (packed) for (const stop = reader.uint32() + reader.pos; reader.pos < stop; ) out.bool_contents.push(reader.bool());
        else out.bool_contents.push(reader.bool());
        break;
      case 2:
        out.int_contents = append(out.int_contents, packed ? readVarints(reader, true) : [reader.int32()], Int32Array) as Int32Array;
        break;
      case 3:
        if (packed) for (const stop = reader.uint32() + reader.pos; reader.pos < stop; ) out.int64_contents.push(decimal(reader.int64()));
        else out.int64_contents.push(decimal(reader.int64()));
        break;
      case 4:
        out.uint_contents = append(out.uint_contents, packed ? readVarints(reader, false) : [reader.uint32()], Uint32Array) as Uint32Array;
        break;
      case 5:
        if (packed) for (const stop = reader.uint32() + reader.pos; reader.pos < stop; ) out.uint64_contents.push(decimal(reader.uint64()));
        else out.uint64_contents.push(decimal(reader.uint64()));
        break;
      case 6:
        out.fp32_contents = append(
          out.fp32_contents,
          packed ? readFixed(reader, Float32Array) : [reader.float()],
          Float32Array,
        ) as Float32Array;
        break;
      case 7:
        out.fp64_contents = append(
          out.fp64_contents,
          packed ? readFixed(reader, Float64Array) : [reader.double()],
          Float64Array,
        ) as Float64Array;
        break;
      case 8:
        out.bytes_contents.push(reader.bytes() as Buffer);
        break;
      default:
        reader.skipType(wire);
    }
  }
  if (reader.pos !== end) throw new RangeError('an InferTensorContents message ends inside a field');
  return out;
}

/**
 * A deserializer of ModelInferRequest bytes (throws on bytes that are not a valid message, as
 * proto-loader's does). Uses a protobufjs Root of its own: the contents type's decode and toObject
 * are replaced there, so no other codec sees them.
 */
export function createInferRequestDeserializer(): (bytes: Buffer) => unknown {
  const root = loadProtoRoot(['inference/grpc_service.proto']);
  const request = root.lookupType('inference.ModelInferRequest');
  const contents = root.lookupType('inference.InferTensorContents');
  // setup() generates the type's codec functions onto the instance; the overrides go on after it
  // (a later setup() would put the generated ones back, and nothing here calls it again).
  contents.setup();
  contents.decode = decodeContents as unknown as typeof contents.decode;
  contents.toObject = ((message: DecodedContents) => message) as unknown as typeof contents.toObject;
  const options: protobuf.IConversionOptions = {
    longs: PROTO_LOAD_OPTIONS.longs,
    enums: PROTO_LOAD_OPTIONS.enums,
    bytes: PROTO_LOAD_OPTIONS.bytes,
    defaults: PROTO_LOAD_OPTIONS.defaults,
    arrays: PROTO_LOAD_OPTIONS.arrays,
    oneofs: PROTO_LOAD_OPTIONS.oneofs,
  };
  return (bytes) => request.toObject(request.decode(bytes), options);
}
