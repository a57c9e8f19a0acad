/**
 * Byte keys of window stores. A window store is a key-value bytes store with three key spaces,
 * told apart by the first byte:
 * - windows: `0x01 ++ serializedKey ++ start [++ end]` — start and end in ms as 8 bytes
 *   big-endian with the sign bit flipped (so negative times order too); sessions carry their
 *   end, fixed windows (tumbling, hopping, sliding) do not (their end is start + size). So the
 *   windows of one key are adjacent, in start order: `fetch(key, from, to)` is a range scan.
 * - expiry index: `0x02 ++ end ++ start [++ end] ++ serializedKey` — the same windows in end
 *   order, so closing windows (emit-final) and dropping those past retention are range scans
 *   from the start instead of scans of every key.
 * - meta: `0x00 ++ name` — per-store bookkeeping (the operator's stream time), written with the
 *   windows so a restored store resumes with the time it had.
 *
 * The serialized key need not be prefix-free: a window entry of `key` is exactly
 * `key.length + 9` (or `+ 17`) bytes long, which {@link isWindowOf} checks, so a longer key
 * sharing the prefix is skipped, never taken for this key's window.
 */
import { InflowError } from '../../errors.ts';

/** First byte of each key space. */
export const WindowKeySpace = { META: 0x00, WINDOW: 0x01, EXPIRY: 0x02 } as const;

const TIME_BYTES = 8;
const TWO_32 = 2 ** 32;

function checkTime(ms: number, what: string): void {
  if (!Number.isSafeInteger(ms)) throw new InflowError('INVALID_ARGUMENT', `window ${what} must be an integer of ms; got ${ms}`);
}

/**
 * Writes `ms` (a safe integer) at `at` as 8 bytes big-endian two's complement, sign bit flipped.
 * Two 32-bit halves, not a BigInt: window keys are built on every record, and the BigInt
 * conversions were most of building one (bench/streams/stateful-hops.ts). The high half is
 * `floor(ms / 2^32)` (negative for negative times: its 32-bit two's complement), the low half
 * what is left, in [0, 2^32).
 */
export function writeTime(into: Buffer, at: number, ms: number): void {
  const hi = Math.floor(ms / TWO_32);
  into.writeUInt32BE((hi ^ 0x80000000) >>> 0, at);
  into.writeUInt32BE(ms - hi * TWO_32, at + 4);
}

/** Reads a time written by {@link writeTime}. */
export function readTime(from: Buffer, at: number): number {
  // `| 0` reads the flipped high half back as a signed 32-bit number.
  return ((from.readUInt32BE(at) ^ 0x80000000) | 0) * TWO_32 + from.readUInt32BE(at + 4);
}

/** The window of `key` (serialized) starting at `start`; sessions also pass their `end`. */
export function windowKey(key: Buffer, start: number, end?: number): Buffer {
  checkTime(start, 'start');
  const out = Buffer.allocUnsafe(1 + key.length + TIME_BYTES * (end === undefined ? 1 : 2));
  out[0] = WindowKeySpace.WINDOW;
  key.copy(out, 1);
  writeTime(out, 1 + key.length, start);
  if (end !== undefined) {
    checkTime(end, 'end');
    writeTime(out, 1 + key.length + TIME_BYTES, end);
  }
  return out;
}

/** A window key split into its parts. */
export interface WindowKeyParts {
  readonly key: Buffer;
  readonly start: number;
  /** Sessions only. */
  readonly end?: number;
}

/** Splits a window key; `session` says whether it carries an end. */
export function parseWindowKey(bytes: Buffer, session = false): WindowKeyParts {
  const times = TIME_BYTES * (session ? 2 : 1);
  if (bytes[0] !== WindowKeySpace.WINDOW || bytes.length < 1 + times) {
    throw new InflowError('SERIALIZATION', `not a ${session ? 'session' : 'window'} key: ${bytes.toString('hex')}`);
  }
  const keyEnd = bytes.length - times;
  const key = bytes.subarray(1, keyEnd);
  const start = readTime(bytes, keyEnd);
  return session ? { key, start, end: readTime(bytes, keyEnd + TIME_BYTES) } : { key, start };
}

/** Whether window key `bytes` belongs to serialized key `key` (its length matches exactly). */
export function isWindowOf(bytes: Buffer, key: Buffer, session = false): boolean {
  return bytes.length === 1 + key.length + TIME_BYTES * (session ? 2 : 1) && bytes.subarray(1, 1 + key.length).equals(key);
}

/** Bounds of a range scan over the windows of `key` whose start lies in [startFrom, startTo]. */
export function windowRange(key: Buffer, startFrom: number, startTo: number, session = false): [Buffer, Buffer] {
  if (!session) return [windowKey(key, startFrom), windowKey(key, startTo)];
  return [windowKey(key, startFrom, Number.MIN_SAFE_INTEGER), windowKey(key, startTo, Number.MAX_SAFE_INTEGER)];
}

/** Bounds of the whole window key space. */
export function allWindowsRange(): [Buffer, Buffer] {
  return [Buffer.from([WindowKeySpace.WINDOW]), Buffer.from([WindowKeySpace.WINDOW + 1])];
}

/** The expiry-index entry of a window that ends at `end` (the window key's bytes after its space byte follow). */
export function expiryKey(end: number, window: Buffer): Buffer {
  checkTime(end, 'end');
  const out = Buffer.allocUnsafe(1 + TIME_BYTES + window.length - 1);
  out[0] = WindowKeySpace.EXPIRY;
  writeTime(out, 1, end);
  window.copy(out, 1 + TIME_BYTES, 1);
  return out;
}

/** Splits an expiry-index entry into the window's end and its window key. */
export function parseExpiryKey(bytes: Buffer): { readonly end: number; readonly window: Buffer } {
  if (bytes[0] !== WindowKeySpace.EXPIRY || bytes.length < 1 + TIME_BYTES) {
    throw new InflowError('SERIALIZATION', `not a window expiry key: ${bytes.toString('hex')}`);
  }
  const window = Buffer.allocUnsafe(bytes.length - TIME_BYTES);
  window[0] = WindowKeySpace.WINDOW;
  bytes.copy(window, 1, 1 + TIME_BYTES);
  return { end: readTime(bytes, 1), window };
}

/** Bounds of a scan over the expiry index for windows ending at or before `end` (inclusive). */
export function expiryRange(end: number): [Buffer, Buffer] {
  const hi = Buffer.alloc(1 + TIME_BYTES + 1, 0xff);
  hi[0] = WindowKeySpace.EXPIRY;
  writeTime(hi, 1, end);
  return [Buffer.from([WindowKeySpace.EXPIRY]), hi];
}

/** A meta entry's key. */
export function metaKey(name: string): Buffer {
  return Buffer.concat([Buffer.from([WindowKeySpace.META]), Buffer.from(name, 'utf8')]);
}
