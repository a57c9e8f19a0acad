/**
 * Hashing of routing keys: sticky routing hashes a key to a bucket; different seeds give
 * independent buckets (the weighted split and the shadow fraction use different seeds).
 */
import { murmur3, murmur3Utf16 } from '../runtime/murmur3.ts';

export { murmur3 };

/** MurmurHash3 of the key's UTF-16LE bytes without encoding it (see {@link murmur3Utf16}). */
export const hashKey: (key: string, seed?: number) => number = murmur3Utf16;

/** Buckets of {@link keyBucket}: weights resolve to 0.01 % steps. */
export const BUCKETS = 10_000;

/** The key's bucket in [0, 10000): the hash scaled (multiply, not modulo) to the range. */
export function keyBucket(key: string, seed = 0): number {
  return Math.floor((hashKey(key, seed) * BUCKETS) / 0x1_0000_0000);
}
