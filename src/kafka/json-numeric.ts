/**
 * JSON records whose large numeric arrays go straight into typed arrays: the value serde of a
 * pipeline source whose predict steps read top-level numeric fields (`pixels` of
 * `{"id": 7, "pixels": [0.0, 0.016, …]}`). `JSON.parse` builds one heap number per element and
 * the predict step then copies them into a Float32Array; for 784 floats that parse was the
 * largest cost of the embedded pipeline (~55 µs of ~250 µs per record, plus the garbage it left:
 * bench/streams/pipeline-hops.ts). Here the named fields' arrays are parsed from the bytes into
 * a {@link JsonFloat32Array} (the tensor data an FP32 input takes as it is) or a
 * {@link JsonFloat64Array}, and the rest of the record is parsed by `JSON.parse` as usual.
 *
 * Values are the ones `JSON.parse` gives (then rounded to float32 for FP32, as the predict step
 * would): each number is the correctly rounded double (the decimal fast path below is exact;
 * anything it cannot do exactly goes through `Number()`), and `JSON.stringify` writes the array
 * back as the plain serde would (`toJSON`: its original text parsed again). Anything outside
 * the fast path — nesting, non-numbers, a repeated field, bad JSON — falls back to the plain
 * JSON serde for the whole record, so errors read exactly as before.
 */
import type { Serde } from './serdes.ts';
import { jsonSerde } from './serdes.ts';

/**
 * A numeric array of a JSON record as a Float32Array or Float64Array, which `JSON.stringify`
 * writes as the plain JSON serde would have: its original text parsed again (only when written,
 * which a predict input seldom is), so the record's JSON is unchanged by the detour.
 */
export interface JsonNumericArray {
  toJSON(): unknown;
}

/** Float32 elements (what an FP32 model input takes without a copy); written back as the original text. */
export class JsonFloat32Array extends Float32Array implements JsonNumericArray {
  source: Uint8Array | undefined;
  toJSON(): unknown {
    return this.source ? rawJson(this.source) : Array.from(this);
  }
}

/** Float64 elements: exactly the numbers JSON.parse gives; written back as the original text. */
export class JsonFloat64Array extends Float64Array implements JsonNumericArray {
  source: Uint8Array | undefined;
  toJSON(): unknown {
    return this.source ? rawJson(this.source) : Array.from(this);
  }
}

/** The array as JSON.parse gives it from its text (ASCII: the parser accepted only numbers, commas and spaces). */
const rawJson = (source: Uint8Array): unknown =>
  JSON.parse(Buffer.from(source.buffer, source.byteOffset, source.byteLength).toString('latin1'));

/** The element type of each decoded field. */
export type NumericFieldType = 'FP32' | 'FP64';

// Byte values (RFC 8259 §2 whitespace and structure, §6 numbers).
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** Exact powers of ten as doubles: 10^0 … 10^22 (10^23 is the first that is not). */
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

/** Index after the string starting at `i` (a quote), or -1 when it does not close. */
function skipString(b: Uint8Array, i: number): number {
  for (let j = i + 1; j < b.length; j++) {
    const c = b[j] as number;
    if (c === BACKSLASH) j++;
    else if (c === QUOTE) return j + 1;
  }
  return -1;
}

/** Index after the value starting at `i` (any JSON value, not validated: JSON.parse does that later), or -1. */
function skipValue(b: Uint8Array, i: number): number {
  let depth = 0;
  for (let j = i; j < b.length; j++) {
    const c = b[j] as number;
    if (c === QUOTE) {
      j = skipString(b, j) - 1;
      if (j < 0) return -1;
      if (depth === 0) return j + 1;
    } else if (c === LBRACE || c === LBRACKET) depth++;
    else if (c === RBRACE || c === RBRACKET) {
      if (depth === 0) return j;
      if (--depth === 0) return j + 1;
    } else if (depth === 0 && (c === COMMA || isSpace(c))) return j;
  }
  return depth === 0 ? b.length : -1;
}

/** Growable scratch for the numbers of one array (reused across records: no garbage per record). */
let scratch = new Float64Array(1024);

type JsonArray = JsonFloat32Array | JsonFloat64Array;

/**
 * Parses the numeric array whose `[` is at `i` into a new array of `type`, its elements rounded
 * from the doubles JSON.parse gives. Undefined when it is not a flat array of JSON numbers (the
 * caller then falls back to JSON.parse).
 */
function parseNumbers(b: Uint8Array, i: number, type: NumericFieldType): { array: JsonArray; end: number } | undefined {
  // No bounds checks: a read past the end gives undefined, which no rule below accepts, and a
  // record that well-formed never reads there.
  let j = i + 1;
  let n = 0;
  let c = b[j] as number;
  while (isSpace(c)) c = b[++j] as number;
  if (c === RBRACKET) return { array: type === 'FP32' ? new JsonFloat32Array(0) : new JsonFloat64Array(0), end: j + 1 };
  for (;;) {
    while (isSpace(c)) c = b[++j] as number;
    // One number (RFC 8259 §6): -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
    const start = j;
    const negative = c === MINUS;
    if (negative) c = b[++j] as number;
    if (c < ZERO || c > NINE) return undefined;
    let mantissa = 0;
    if (c === ZERO) {
      c = b[++j] as number;
      if (c >= ZERO && c <= NINE) return undefined; // a leading zero: not JSON
    } else {
      while (c >= ZERO && c <= NINE) {
        mantissa = mantissa * 10 + (c - ZERO);
        c = b[++j] as number;
      }
    }
    let scale = 0;
    if (c === DOT) {
      c = b[++j] as number;
      if (c < ZERO || c > NINE) return undefined;
      while (c >= ZERO && c <= NINE) {
        mantissa = mantissa * 10 + (c - ZERO);
        scale++;
        c = b[++j] as number;
      }
    }
    let value: number;
    if (c === 0x65 || c === 0x45) {
      // An exponent: rare in these records; Number() parses the literal exactly as JSON.parse does.
      c = b[++j] as number;
      if (c === PLUS || c === MINUS) c = b[++j] as number;
      if (c < ZERO || c > NINE) return undefined;
      while (c >= ZERO && c <= NINE) c = b[++j] as number;
      value = Number(latin1(b, start, j));
    } else if (mantissa < 2 ** 53 && scale <= 22) {
      // Clinger's fast path: the digits as an integer below 2^53 (every step of mantissa·10 + d
      // was exact then: the steps only grow) and an exact power of ten, so the one IEEE division
      // is the correctly rounded double of the decimal, as JSON.parse gives it.
      value = scale === 0 ? mantissa : mantissa / (POW10[scale] as number);
      if (negative) value = -value;
    } else {
      value = Number(latin1(b, start, j));
    }
    if (n === scratch.length) {
      const bigger = new Float64Array(scratch.length * 2);
      bigger.set(scratch);
      scratch = bigger;
    }
    scratch[n++] = value;
    while (isSpace(c)) c = b[++j] as number;
    if (c === COMMA) {
      c = b[++j] as number;
      continue;
    }
    if (c !== RBRACKET) return undefined;
    const array = type === 'FP32' ? new JsonFloat32Array(n) : new JsonFloat64Array(n);
    array.set(scratch.subarray(0, n));
    array.source = b.subarray(i, j + 1);
    return { array, end: j + 1 };
  }
}

/** The ASCII bytes [from, to) as a string (a number literal). */
const latin1 = (b: Uint8Array, from: number, to: number): string =>
  Buffer.from(b.buffer, b.byteOffset + from, to - from).toString('latin1');

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes one JSON object record, its top-level `fields` that hold flat numeric arrays as typed
 * arrays of the field's type; undefined when the fast path does not apply (the caller parses it plainly).
 */
export function decodeWithNumericArrays(b: Uint8Array, fields: ReadonlyMap<string, NumericFieldType>): Record<string, unknown> | undefined {
  let i = 0;
  const len = b.length;
  while (i < len && isSpace(b[i] as number)) i++;
  if (b[i] !== LBRACE) return undefined;
  i++;
  const found: Array<{ key: string; from: number; to: number; array: JsonArray }> = [];
  const seen = new Set<string>();
  for (;;) {
    while (i < len && isSpace(b[i] as number)) i++;
    if (b[i] === RBRACE && seen.size === 0) break;
    if (b[i] !== QUOTE) return undefined;
    const keyEnd = skipString(b, i);
    if (keyEnd < 0) return undefined;
    // Keys with escapes are left to JSON.parse: compare the raw bytes only when there are none.
    const raw = b.subarray(i + 1, keyEnd - 1);
    const key = raw.includes(BACKSLASH) ? undefined : utf8.decode(raw);
    if (key === undefined || seen.has(key)) return undefined; // escaped or repeated keys: JSON.parse decides
    seen.add(key);
    i = keyEnd;
    while (i < len && isSpace(b[i] as number)) i++;
    if (b[i] !== COLON) return undefined;
    i++;
    while (i < len && isSpace(b[i] as number)) i++;
    const type = fields.get(key);
    if (type !== undefined && b[i] === LBRACKET) {
      const parsed = parseNumbers(b, i, type);
      if (!parsed) return undefined;
      found.push({ key, from: i, to: parsed.end, array: parsed.array });
      i = parsed.end;
    } else {
      i = skipValue(b, i);
      if (i < 0) return undefined;
    }
    while (i < len && isSpace(b[i] as number)) i++;
    if (b[i] === COMMA) {
      i++;
      continue;
    }
    if (b[i] !== RBRACE) return undefined;
    break;
  }
  for (let k = i + 1; k < len; k++) if (!isSpace(b[k] as number)) return undefined;
  if (found.length === 0) return undefined;
  // The rest of the record, each array replaced by 0, through JSON.parse (strings, escapes, nesting as usual).
  let text = '';
  let at = 0;
  for (const f of found) {
    text += `${utf8.decode(b.subarray(at, f.from))}0`;
    at = f.to;
  }
  text += utf8.decode(b.subarray(at));
  const value = JSON.parse(text) as Record<string, unknown>;
  for (const f of found) value[f.key] = f.array;
  return value;
}

/**
 * The JSON serde, with `fields` (top-level field name → element type) decoded into typed arrays
 * when they are flat numeric arrays. Serialising is the JSON serde's (the arrays write back as
 * the numbers of their original text).
 */
export function jsonSerdeWithNumericArrays(fields: ReadonlyMap<string, NumericFieldType>): Serde<unknown> {
  const plain = jsonSerde();
  const names = new Map(fields);
  return {
    name: 'json',
    serialize: (value) => plain.serialize(value),
    deserialize: (data) => {
      if (data === null) return null;
      try {
        const fast = decodeWithNumericArrays(data, names);
        if (fast !== undefined) return fast;
      } catch {
        // Invalid UTF-8 or JSON around the arrays: the plain serde says what is wrong.
      }
      return plain.deserialize(data);
    },
  };
}
