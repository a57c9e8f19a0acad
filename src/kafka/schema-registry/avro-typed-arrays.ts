/**
 * Avro arrays of `float` / `double` read straight into a Float32Array / Float64Array: an Avro
 * array is blocks of (count, items) and float/double items are 4/8-byte little-endian IEEE 754
 * values back to back (Avro 1.11 specification, "Binary Encoding"), so a block is one copy of
 * its bytes instead of one JS number per item. The field mapping (src/streams/api/field-mapping.ts)
 * then takes the array as the model input's data as it is. Plugged into avsc with its `typeHook`
 * (types.js calls each field type's `_read`/`_write`).
 *
 * The arrays are {@link JsonFloat32Array}/{@link JsonFloat64Array}: typed arrays whose JSON is a
 * list, so a record that goes on as JSON (keepInput, select, the JSON serde) reads as before.
 * Writing accepts plain arrays and typed arrays alike.
 */
import { endianness } from 'node:os';
import avro from 'avsc';

/** A Float32Array that serializes to JSON as a list of numbers (not `{"0": …}`). */
export class JsonFloat32Array extends Float32Array {
  toJSON(): number[] {
    return Array.from(this);
  }
}

/** A Float64Array that serializes to JSON as a list of numbers. */
export class JsonFloat64Array extends Float64Array {
  toJSON(): number[] {
    return Array.from(this);
  }
}

/** avsc's byte cursor (lib/utils.js Tap): a buffer and a position past which nothing was read. */
interface Tap {
  buf: Buffer;
  pos: number;
  readLong(): number;
  skipLong(): void;
}

type FloatArrayClass = typeof JsonFloat32Array | typeof JsonFloat64Array;

// Little-endian hosts only: elsewhere avsc's own per-item read (readFloatLE) stays.
const LITTLE_ENDIAN = endianness() === 'LE';

const BaseArrayType = (avro.types as unknown as { ArrayType: new (schema: unknown, opts: unknown) => avro.Type }).ArrayType;

function makeType(Out: FloatArrayClass, schema: unknown, opts: unknown): avro.Type {
  const size = Out.BYTES_PER_ELEMENT;
  const base = BaseArrayType.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const isNumbers = (val: unknown): boolean => val instanceof Float32Array || val instanceof Float64Array;
  class TypedFloatArrayType extends BaseArrayType {
    _read(tap: Tap): Float32Array | Float64Array {
      let out: Float32Array | Float64Array | undefined;
      let length = 0;
      for (let n = tap.readLong(); n !== 0; n = tap.readLong()) {
        if (n < 0) {
          // A negative count is followed by the block's size in bytes (skippable blocks).
          n = -n;
          tap.skipLong();
        }
        const bytes = n * size;
        const start = tap.pos;
        tap.pos += bytes;
        // Past the end: avsc's decode reports the short buffer (tap.isValid() is false).
        if (tap.pos > tap.buf.length) return new Out(0);
        const next = new Out(length + n);
        if (out) next.set(out);
        new Uint8Array(next.buffer, length * size, bytes).set(tap.buf.subarray(start, start + bytes));
        out = next;
        length += n;
      }
      return out ?? new Out(0);
    }
    _check(val: unknown, flags: unknown, hook: unknown, path: unknown): boolean {
      if (isNumbers(val)) return true;
      return base._check?.call(this, val, flags, hook, path) as boolean;
    }
    _write(tap: Tap, val: unknown): void {
      base._write?.call(this, tap, isNumbers(val) ? Array.from(val as Float32Array) : val);
    }
    _copy(val: unknown, opts: unknown): unknown {
      return isNumbers(val) ? new Out(val as Float32Array) : base._copy?.call(this, val, opts);
    }
  }
  return new TypedFloatArrayType(schema, opts);
}

function itemsName(items: unknown): string | undefined {
  if (typeof items === 'string') return items;
  if (items !== null && typeof items === 'object' && !('logicalType' in items)) return (items as { type?: unknown }).type as string;
  return undefined;
}

/**
 * avsc's `typeHook`: arrays of float or double become typed-array types; everything else is
 * avsc's own (returns undefined).
 */
export function typedArrayHook(schema: avro.Schema, opts: avro.ForSchemaOptions): avro.Type | undefined {
  if (!LITTLE_ENDIAN || schema === null || typeof schema !== 'object' || Array.isArray(schema)) return undefined;
  const s = schema as { type?: unknown; items?: unknown };
  if (s.type !== 'array') return undefined;
  const items = itemsName(s.items);
  if (items === 'float') return makeType(JsonFloat32Array, schema, opts);
  if (items === 'double') return makeType(JsonFloat64Array, schema, opts);
  return undefined;
}

/**
 * `value` with its Float32Array / Float64Array fields as lists of numbers (a copy only where one
 * was found): for writers that want JS arrays (protobufjs' verify/fromObject, ajv's `type:
 * array`) when a record read from Avro goes on in Protobuf or JSON Schema.
 */
export function withPlainArrays(value: unknown): unknown {
  if (value instanceof Float32Array || value instanceof Float64Array) return Array.from(value);
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return value;
  if (Array.isArray(value)) {
    const list: readonly unknown[] = value;
    let out: unknown[] | undefined;
    for (let i = 0; i < list.length; i++) {
      const v = list[i];
      const p = withPlainArrays(v);
      if (p !== v) (out ??= [...list])[i] = p;
    }
    return out ?? value;
  }
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(value)) {
    const p = withPlainArrays(v);
    if (p !== v) (out ??= { ...value })[k] = p;
  }
  return out ?? value;
}
