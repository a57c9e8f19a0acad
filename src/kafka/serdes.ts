/**
 * Serdes: turn record keys and values into bytes and back. Bytes, UTF-8 strings, JSON, and
 * inflow's compact binary tensor format. Avro, Protobuf and JSON Schema in the Confluent wire
 * format, with a Schema Registry, are in ./schema-registry/ (asynchronous serdes).
 *
 * Binary tensor format (little-endian, version 1):
 *   0  "IT"        magic (2 bytes)
 *   2  u8          version (1)
 *   3  u8          dtype code (src/tensor/dtype.ts dtypeCode)
 *   4  u32         ndim
 *   8  i64 × ndim  shape
 *   8+8·ndim       data: the elements, little-endian, row-major (header is 8-byte aligned, so
 *                  data can be viewed in place when the record buffer is aligned)
 */
import { InflowError } from '../errors.ts';
import { arrayTypeOf, type DType, dtypeByCode, dtypeCode, type NumericArray } from '../tensor/dtype.ts';
import { MAX_ELEMENTS, type Tensor } from '../tensor/tensor.ts';

/** Converts values of type T to record bytes and back. `null` is Kafka's null (a tombstone). */
export interface Serde<T> {
  readonly name: string;
  serialize(value: T): Buffer | null;
  /** @throws InflowError SERIALIZATION when the bytes are not a valid T. */
  deserialize(data: Buffer | null): T;
}

/**
 * A serde whose work may wait on I/O: a Schema Registry serde fetches a schema the first time
 * it meets its id, so the result is then a promise (later calls are synchronous). Every
 * {@link Serde} is one.
 */
export interface AsyncSerde<T> {
  readonly name: string;
  serialize(value: T): Buffer | null | Promise<Buffer | null>;
  /** @throws (or rejects with) InflowError SERIALIZATION when the bytes are not a valid T. */
  deserialize(data: Buffer | null): T | Promise<T>;
}

/** Bytes as they are. */
export const bytesSerde: Serde<Buffer | null> = {
  name: 'bytes',
  serialize: (value) => value,
  deserialize: (data) => data,
};

/** UTF-8 text; null stays null. Invalid UTF-8 is an error, not U+FFFD. */
export const stringSerde: Serde<string | null> = {
  name: 'string',
  serialize: (value) => (value === null ? null : Buffer.from(value, 'utf8')),
  deserialize: (data) => {
    if (data === null) return null;
    try {
      return utf8.decode(data);
    } catch (error) {
      throw new InflowError('SERIALIZATION', `record is not valid UTF-8 text (${data.length} bytes); expected a UTF-8 string`, {
        cause: error,
      });
    }
  },
};

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** JSON in UTF-8; null is Kafka null. Parse errors name the position and show the start of the text. */
export function jsonSerde<T = unknown>(): Serde<T | null> {
  return {
    name: 'json',
    serialize: (value) => (value === null ? null : Buffer.from(JSON.stringify(value), 'utf8')),
    deserialize: (data) => {
      if (data === null) return null;
      const text = stringSerde.deserialize(data) ?? '';
      try {
        return JSON.parse(text) as T;
      } catch (error) {
        const preview = text.length > 80 ? `${text.slice(0, 80)}…` : text;
        throw new InflowError('SERIALIZATION', `record is not valid JSON: ${(error as Error).message}; got ${JSON.stringify(preview)}`, {
          cause: error,
        });
      }
    },
  };
}

/** The tensors the binary serde carries: src/tensor's Tensor with a fixed-size dtype. */
export type NumericTensor = Tensor & { readonly dtype: Exclude<DType, 'BYTES'>; readonly data: NumericArray };

const MAGIC = 0x5449; // "IT" read as little-endian u16
const HEADER = 8;

function serializationError(message: string): InflowError {
  return new InflowError('SERIALIZATION', `invalid binary tensor: ${message}`);
}

/** inflow's compact binary tensor serde (see the format above). */
export const tensorSerde: Serde<NumericTensor | null> = {
  name: 'tensor',
  serialize(value) {
    if (value === null) return null;
    const count = value.shape.reduce((a, b) => a * b, 1);
    if (count !== value.data.length) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `tensor shape [${value.shape.join(', ')}] holds ${count} elements but data has ${value.data.length}`,
      );
    }
    const head = HEADER + 8 * value.shape.length;
    const out = Buffer.allocUnsafe(head + value.data.byteLength);
    out.writeUInt16LE(MAGIC, 0);
    out.writeUInt8(1, 2);
    out.writeUInt8(dtypeCode[value.dtype], 3);
    out.writeUInt32LE(value.shape.length, 4);
    value.shape.forEach((dim, i) => out.writeBigInt64LE(BigInt(dim), HEADER + 8 * i));
    // Typed arrays are little-endian on every platform Node supports (x64, arm64).
    Buffer.from(value.data.buffer, value.data.byteOffset, value.data.byteLength).copy(out, head);
    return out;
  },
  deserialize(data) {
    if (data === null) return null;
    if (data.length < HEADER || data.readUInt16LE(0) !== MAGIC) throw serializationError('missing "IT" header (is this a JSON record?)');
    const version = data.readUInt8(2);
    if (version !== 1) throw serializationError(`version ${version} is not supported; expected 1`);
    const dtype = dtypeByCode.get(data.readUInt8(3));
    if (dtype === undefined || dtype === 'BYTES') throw serializationError(`dtype code ${data.readUInt8(3)} is not a fixed-size dtype`);
    const ndim = data.readUInt32LE(4);
    const head = HEADER + 8 * ndim;
    if (ndim > 32 || data.length < head)
      throw serializationError(`header claims ${ndim} dimensions; at most 32 fit and the record has ${data.length} bytes`);
    const shape: number[] = [];
    let count = 1;
    for (let i = 0; i < ndim; i++) {
      const dim = data.readBigInt64LE(HEADER + 8 * i);
      if (dim < 0n || dim > BigInt(MAX_ELEMENTS)) throw serializationError(`dimension ${i} is ${dim}; expected 0..${MAX_ELEMENTS}`);
      shape.push(Number(dim));
      count *= Number(dim);
      if (count > MAX_ELEMENTS) throw serializationError(`shape [${shape.join(', ')}…] has more than ${MAX_ELEMENTS} elements`);
    }
    const Ctor = arrayTypeOf[dtype];
    const bytes = count * Ctor.BYTES_PER_ELEMENT;
    if (data.length - head !== bytes) {
      throw serializationError(`shape [${shape.join(', ')}] of ${dtype} needs ${bytes} data bytes, the record has ${data.length - head}`);
    }
    const offset = data.byteOffset + head;
    // View in place when aligned (zero-copy); copy otherwise.
    const array =
      offset % Ctor.BYTES_PER_ELEMENT === 0
        ? new Ctor(data.buffer, offset, count)
        : new Ctor(new Uint8Array(data.subarray(head)).buffer, 0, count);
    return { dtype, shape, data: array };
  },
};
