/**
 * Nested JSON lists ↔ tensors, shared by the TF Serving and Open Inference Protocol JSON codecs:
 * shape inference from nesting, ragged-list detection, per-dtype value coercion straight into a
 * pre-sized typed array (no intermediate flat JS array), and nested-list text output.
 */
import { Buffer } from 'node:buffer';
import { InflowError } from '../../errors.ts';
import { arrayTypeOf, type DType, type NumericArray } from '../dtype.ts';
import { elementCount, MAX_RANK, type Tensor, type TensorGate } from '../tensor.ts';
import { floatToHalfBits, halfBitsToFloat } from './half.ts';
import { formatFloat32, formatFloat64 } from './json-text.ts';

/** How a wire format names things in its error messages and spells byte strings. */
export interface JsonDialect {
  /** Element type name in type errors (`float` for TF, `FP32` for OIP). */
  typeName(dtype: DType): string;
  /** Whether `{"b64": "…"}` objects are BYTES values (TF Serving). */
  readonly b64: boolean;
}

const utf8Decoder = new TextDecoder();
/** Every empty string shares one (it has no bytes to change). */
const EMPTY = new Uint8Array(0);

/** rapidjson's names of JSON value types, as TF Serving prints them. */
function jsonTypeName(value: unknown): string {
  if (value === null) return 'Null';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (Array.isArray(value)) return 'Array';
  if (typeof value === 'string') return 'String';
  if (typeof value === 'number' || typeof value === 'bigint') return 'Number';
  return 'Object';
}

/** At most 256 characters of a value's JSON text, for error messages. */
export function jsonSnippet(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'bigint' ? value.toString() : (JSON.stringify(value) ?? String(value));
  } catch {
    // Too deep for JSON.stringify (it recurses; String() of a nested list too) or not serializable.
    try {
      text = String(value);
    } catch {
      text = `(${jsonTypeName(value)} nested too deeply to print)`;
    }
  }
  return text.length > 256 ? `${text.slice(0, 256)}…` : text;
}

function typeError(name: string, value: unknown, dtype: DType, dialect: JsonDialect, detail = ''): InflowError {
  return new InflowError(
    'INVALID_ARGUMENT',
    `input "${name}": JSON Value: ${jsonSnippet(value)} Type: ${jsonTypeName(value)} is not of expected type: ${dialect.typeName(dtype)}${detail}`,
  );
}

/** Whether `value` is TF Serving's `{"b64": "<base64>"}` byte-string object. */
export function isB64Object(value: unknown): value is { b64: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === 'b64';
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;

/** Strict base64 decode (standard alphabet, padding optional); copies into a new buffer. */
export function decodeBase64(text: string, name: string): Uint8Array {
  if (!BASE64.test(text)) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      `input "${name}": invalid base64 in {"b64": ${jsonSnippet(text)}}; expected standard base64 text`,
    );
  }
  const bytes = Buffer.from(text, 'base64');
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Integer ranges of the dtypes coerced from JSON numbers into 32-bit-or-smaller typed arrays. */
const intRange: Partial<Record<DType, readonly [number, number]>> = {
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  INT32: [-2147483648, 2147483647],
  UINT8: [0, 255],
  UINT16: [0, 65535],
  UINT32: [0, 4294967295],
};

const int64Range = [-(2n ** 63n), 2n ** 63n - 1n] as const;
const uint64Range = [0n, 2n ** 64n - 1n] as const;

/** Writes one JSON value into element `index` of the target; throws a type error naming the input. */
export type JsonSink = (value: unknown, index: number) => void;

/**
 * A pre-sized container for `count` elements of `dtype` and the function that coerces JSON values
 * into it. JSON.parse cannot tell `1` from `1.0`, so integer dtypes accept any integral number
 * (TF Serving rejects `1.0`); fractions, out-of-range values and non-numbers are rejected.
 */
export function createJsonSink(dtype: DType, count: number, name: string, dialect: JsonDialect): { data: Tensor['data']; put: JsonSink } {
  switch (dtype) {
    case 'BYTES': {
      const data: Uint8Array[] = new Array<Uint8Array>(count);
      const put: JsonSink = (v, i) => {
        // Buffer.from copies small strings into a shared pool: no ArrayBuffer of its own per element.
        if (typeof v === 'string') data[i] = v.length === 0 ? EMPTY : Buffer.from(v, 'utf8');
        else if (dialect.b64 && isB64Object(v) && typeof v.b64 === 'string') data[i] = decodeBase64(v.b64, name);
        else throw typeError(name, v, dtype, dialect);
      };
      return { data, put };
    }
    case 'BOOL': {
      const data = new Uint8Array(count);
      const put: JsonSink = (v, i) => {
        if (typeof v !== 'boolean') throw typeError(name, v, dtype, dialect);
        data[i] = v ? 1 : 0;
      };
      return { data, put };
    }
    case 'FP32':
    case 'FP64': {
      const data = new arrayTypeOf[dtype](count) as Float32Array | Float64Array;
      const put: JsonSink = (v, i) => {
        if (typeof v !== 'number') throw typeError(name, v, dtype, dialect);
        data[i] = v;
      };
      return { data, put };
    }
    case 'FP16': {
      const data = new Uint16Array(count);
      const put: JsonSink = (v, i) => {
        if (typeof v !== 'number') throw typeError(name, v, dtype, dialect);
        data[i] = floatToHalfBits(v);
      };
      return { data, put };
    }
    case 'INT64':
    case 'UINT64': {
      const data = new arrayTypeOf[dtype](count) as BigInt64Array | BigUint64Array;
      const [min, max] = dtype === 'INT64' ? int64Range : uint64Range;
      const put: JsonSink = (v, i) => {
        let big: bigint;
        if (typeof v === 'bigint') big = v;
        else if (typeof v === 'number' && Number.isInteger(v)) big = BigInt(v);
        else throw typeError(name, v, dtype, dialect);
        if (big < min || big > max) throw typeError(name, v, dtype, dialect, ' (out of range)');
        data[i] = big;
      };
      return { data, put };
    }
    default: {
      const data = new arrayTypeOf[dtype](count) as Exclude<NumericArray, BigInt64Array | BigUint64Array>;
      const [min, max] = intRange[dtype] ?? [0, 0];
      const put: JsonSink = (v, i) => {
        if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError(name, v, dtype, dialect);
        if (v < min || v > max) throw typeError(name, v, dtype, dialect, ` (out of range ${min}..${max})`);
        data[i] = v;
      };
      return { data, put };
    }
  }
}

/** Whether a JSON value is a list level (an array; `{"b64"}` objects and scalars are leaves). */
function isList(value: unknown): value is unknown[] {
  return Array.isArray(value);
}

/**
 * Shape of a nested list, read along the first element of each level (a leaf gives `[]`).
 * INVALID_ARGUMENT past {@link MAX_RANK} levels (`name` is the input, for the message).
 */
export function inferJsonShape(value: unknown, name = 'tensor'): number[] {
  const shape: number[] = [];
  let v = value;
  while (isList(v)) {
    if (shape.length === MAX_RANK) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `input "${name}": lists nested more than ${MAX_RANK} deep; a tensor has at most ${MAX_RANK} dimensions`,
      );
    }
    shape.push(v.length);
    if (v.length === 0) break;
    v = v[0];
  }
  return shape;
}

function raggedError(name: string, found: unknown, shape: readonly number[], dim: number): InflowError {
  const got = isList(found) ? `a list of ${found.length}` : `${jsonSnippet(found)} (${jsonTypeName(found)})`;
  return new InflowError(
    'INVALID_ARGUMENT',
    `input "${name}": Encountered list at unexpected size: got ${got} at dimension ${dim}, expected ${
      dim < shape.length ? `a list of ${shape[dim]}` : 'a value'
    } for shape [${shape.join(', ')}]; lists must not be ragged`,
  );
}

/**
 * Writes the elements of nested list `value` (which must have exactly `shape`, from `dim` on)
 * into `put` starting at `offset`; returns the offset after the last element.
 */
export function fillFromJson(value: unknown, shape: readonly number[], dim: number, offset: number, put: JsonSink, name: string): number {
  if (dim === shape.length) {
    if (isList(value)) throw raggedError(name, value, shape, dim);
    put(value, offset);
    return offset + 1;
  }
  if (!isList(value) || value.length !== shape[dim]) throw raggedError(name, value, shape, dim);
  if (dim === shape.length - 1) {
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      if (isList(v)) throw raggedError(name, v, shape, dim + 1);
      put(v, offset + i);
    }
    return offset + value.length;
  }
  let next = offset;
  for (const v of value) next = fillFromJson(v, shape, dim + 1, next, put, name);
  return next;
}

/**
 * A tensor from one nested JSON list (or scalar) whose shape is inferred from its nesting;
 * `gate` sees the dtype and shape before any element is converted.
 */
export function tensorFromNestedJson(value: unknown, dtype: DType, name: string, dialect: JsonDialect, gate?: TensorGate): Tensor {
  const shape = inferJsonShape(value, name);
  gate?.(name, dtype, shape);
  const { data, put } = createJsonSink(dtype, elementCount(shape), name, dialect);
  fillFromJson(value, shape, 0, 0, put, name);
  return { dtype, shape, data };
}

/** Writes element `i` of a tensor as JSON text. */
export type ElementWriter = (index: number) => string;

/** The element writer of a tensor; BYTES are JSON strings (lossy for invalid UTF-8) or `{"b64"}` objects. */
export function elementWriter(tensor: Tensor, bytesAsB64 = false): ElementWriter {
  const { data } = tensor;
  switch (tensor.dtype) {
    case 'BYTES': {
      const bytes = data as Uint8Array[];
      if (bytesAsB64) {
        return (i) =>
          `{"b64":"${Buffer.from((bytes[i] as Uint8Array).buffer, (bytes[i] as Uint8Array).byteOffset, (bytes[i] as Uint8Array).byteLength).toString('base64')}"}`;
      }
      return (i) => JSON.stringify(utf8Decoder.decode(bytes[i]));
    }
    case 'BOOL': {
      const bools = data as Uint8Array;
      return (i) => (bools[i] ? 'true' : 'false');
    }
    case 'FP32': {
      const floats = data as Float32Array;
      return (i) => formatFloat32(floats[i] as number);
    }
    case 'FP64': {
      const doubles = data as Float64Array;
      return (i) => formatFloat64(doubles[i] as number);
    }
    case 'FP16': {
      const halves = data as Uint16Array;
      return (i) => formatFloat64(halfBitsToFloat(halves[i] as number));
    }
    default: {
      const ints = data as NumericArray;
      return (i) => String(ints[i]);
    }
  }
}

/**
 * Appends the text of the nested list of `shape` whose elements start at `offset` (row-major) to
 * `out`; a rank-0 shape writes the bare element. Returns the offset after the last element.
 */
export function writeNestedJson(out: string[], write: ElementWriter, shape: readonly number[], dim: number, offset: number): number {
  if (dim === shape.length) {
    out.push(write(offset));
    return offset + 1;
  }
  const size = shape[dim] as number;
  if (dim === shape.length - 1) {
    // Innermost level: one string per row keeps the parts array short.
    let row = '[';
    for (let i = 0; i < size; i++) row += i === 0 ? write(offset + i) : `,${write(offset + i)}`;
    out.push(`${row}]`);
    return offset + size;
  }
  out.push('[');
  let next = offset;
  for (let i = 0; i < size; i++) {
    if (i > 0) out.push(',');
    next = writeNestedJson(out, write, shape, dim + 1, next);
  }
  out.push(']');
  return next;
}
