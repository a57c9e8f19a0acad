/**
 * An order-preserving, prefix-free byte encoding of store keys (the idea of FoundationDB's
 * tuple layer): unsigned byte order of the encodings is the keys' natural order — null <
 * false < true < numbers (numeric order) < strings (code point order) < Buffers (byte order) <
 * arrays (element-wise) — and no encoding is a prefix of another's, so a window start appended
 * to an encoded key cannot collide with a longer key.
 *
 * Layout: one tag byte, then the payload. Numbers: float64 big-endian with the sign bit flipped
 * (negatives: every bit flipped). Strings (UTF-8) and Buffers: the bytes with each 0x00 written
 * as 0x00 0xFF, then a 0x00 terminator. Arrays: the elements' encodings, then 0x00.
 */
import { InflowError } from '../../errors.ts';

/** A key the encoding orders: a scalar or an array of keys (a composite key). */
export type OrderedKey = string | number | boolean | null | Buffer | readonly OrderedKey[];

const Tag = {
  END: 0x00,
  NULL: 0x01,
  FALSE: 0x02,
  TRUE: 0x03,
  NUMBER: 0x10,
  STRING: 0x20,
  BYTES: 0x21,
  ARRAY: 0x30,
} as const;

const ESCAPE = 0xff;

function describe(key: unknown): string {
  if (key === undefined) return 'undefined';
  if (typeof key === 'number') return `the number ${key}`;
  if (typeof key === 'object') return 'an object';
  return `a ${typeof key}`;
}

/** Writes `bytes` with each 0x00 escaped, then the terminator. */
function pushEscaped(out: number[], bytes: Uint8Array): void {
  for (const b of bytes) {
    out.push(b);
    if (b === 0) out.push(ESCAPE);
  }
  out.push(Tag.END);
}

const f64 = new DataView(new ArrayBuffer(8));

function encodeInto(out: number[], key: unknown, depth: number): void {
  if (key === null) out.push(Tag.NULL);
  else if (key === false) out.push(Tag.FALSE);
  else if (key === true) out.push(Tag.TRUE);
  else if (typeof key === 'number') {
    if (Number.isNaN(key)) throw new InflowError('SERIALIZATION', 'a store key cannot be NaN (it has no order)');
    // -0 and 0 are one key.
    f64.setFloat64(0, key === 0 ? 0 : key);
    const negative = (f64.getUint8(0) & 0x80) !== 0;
    out.push(Tag.NUMBER);
    for (let i = 0; i < 8; i++) {
      const b = f64.getUint8(i);
      out.push(negative ? ~b & 0xff : i === 0 ? b ^ 0x80 : b);
    }
  } else if (typeof key === 'string') {
    out.push(Tag.STRING);
    pushEscaped(out, Buffer.from(key, 'utf8'));
  } else if (Buffer.isBuffer(key)) {
    out.push(Tag.BYTES);
    pushEscaped(out, key);
  } else if (Array.isArray(key)) {
    if (depth > 16) throw new InflowError('SERIALIZATION', 'a store key nests arrays deeper than 16 levels');
    out.push(Tag.ARRAY);
    for (const k of key as unknown[]) encodeInto(out, k, depth + 1);
    out.push(Tag.END);
  } else {
    throw new InflowError(
      'SERIALIZATION',
      `a store key must be a string, number, boolean, null, Buffer or an array of them; got ${describe(key)}`,
    );
  }
}

/** Encodes `key`; throws `SERIALIZATION` for a value that is not an {@link OrderedKey}. */
export function encodeOrderedKey(key: unknown): Buffer {
  const out: number[] = [];
  encodeInto(out, key, 0);
  return Buffer.from(out);
}

function readEscaped(bytes: Buffer, at: number): [Buffer, number] {
  const out: number[] = [];
  let i = at;
  for (;;) {
    if (i >= bytes.length) throw new InflowError('SERIALIZATION', 'encoded store key ends inside a string or Buffer');
    const b = bytes[i] as number;
    if (b !== 0) {
      out.push(b);
      i++;
    } else if (bytes[i + 1] === ESCAPE) {
      out.push(0);
      i += 2;
    } else return [Buffer.from(out), i + 1];
  }
}

function decodeAt(bytes: Buffer, at: number): [OrderedKey, number] {
  const tag = bytes[at];
  switch (tag) {
    case Tag.NULL:
      return [null, at + 1];
    case Tag.FALSE:
      return [false, at + 1];
    case Tag.TRUE:
      return [true, at + 1];
    case Tag.NUMBER: {
      if (at + 9 > bytes.length) throw new InflowError('SERIALIZATION', 'encoded store key ends inside a number');
      const negative = ((bytes[at + 1] as number) & 0x80) === 0;
      for (let i = 0; i < 8; i++) {
        const b = bytes[at + 1 + i] as number;
        f64.setUint8(i, negative ? ~b & 0xff : i === 0 ? b ^ 0x80 : b);
      }
      return [f64.getFloat64(0), at + 9];
    }
    case Tag.STRING: {
      const [b, next] = readEscaped(bytes, at + 1);
      return [b.toString('utf8'), next];
    }
    case Tag.BYTES:
      return readEscaped(bytes, at + 1);
    case Tag.ARRAY: {
      const items: OrderedKey[] = [];
      let i = at + 1;
      while (bytes[i] !== Tag.END) {
        if (i >= bytes.length) throw new InflowError('SERIALIZATION', 'encoded store key ends inside an array');
        const [item, next] = decodeAt(bytes, i);
        items.push(item);
        i = next;
      }
      return [items, i + 1];
    }
    default:
      throw new InflowError('SERIALIZATION', `encoded store key has an unknown tag byte ${tag ?? '(none)'} at ${at}`);
  }
}

/** Decodes one key that fills `bytes`. */
export function decodeOrderedKey(bytes: Buffer): OrderedKey {
  const [key, end] = decodeAt(bytes, 0);
  if (end !== bytes.length) throw new InflowError('SERIALIZATION', `encoded store key has ${bytes.length - end} bytes after its end`);
  return key;
}

/** Length of the key encoded at the start of `bytes` (what a window key appends to). */
export function orderedKeyLength(bytes: Buffer): number {
  return decodeAt(bytes, 0)[1];
}
