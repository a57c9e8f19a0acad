/**
 * MurmurHash3 x86 32-bit (Austin Appleby's reference `MurmurHash3_x86_32`, public domain): the
 * transform platform's hash-bucket op and the router's sticky keys. Stable across platforms and
 * releases; the same as Python's `mmh3.hash(data, seed, signed=False)`. Not TensorFlow's FarmHash
 * Fingerprint64, so buckets differ from tf.strings.to_hash_bucket_fast.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

function mixK(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

function mixH(h: number, k: number): number {
  h ^= mixK(k);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** MurmurHash3's finalizer (fmix32): every input bit affects every output bit. */
function fmix32(h: number, byteLength: number): number {
  h ^= byteLength;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** MurmurHash3 x86 32-bit of bytes, as an unsigned 32-bit integer. */
export function murmur3(bytes: Uint8Array, seed = 0): number {
  let h = seed | 0;
  const blocks = bytes.length & ~3;
  for (let i = 0; i < blocks; i += 4) {
    h = mixH(
      h,
      (bytes[i] as number) | ((bytes[i + 1] as number) << 8) | ((bytes[i + 2] as number) << 16) | ((bytes[i + 3] as number) << 24),
    );
  }
  const tail = bytes.length & 3;
  if (tail > 0) {
    let k = bytes[blocks] as number;
    if (tail > 1) k |= (bytes[blocks + 1] as number) << 8;
    if (tail > 2) k |= (bytes[blocks + 2] as number) << 16;
    h ^= mixK(k);
  }
  return fmix32(h, bytes.length);
}

/**
 * MurmurHash3 x86 32-bit of a string's UTF-16LE bytes, without encoding it: two UTF-16 code
 * units make one 32-bit block. Equal to `murmur3(Buffer.from(key, 'utf16le'), seed)`.
 */
export function murmur3Utf16(key: string, seed = 0): number {
  let h = seed | 0;
  const units = key.length;
  const pairs = units & ~1;
  for (let i = 0; i < pairs; i += 2) h = mixH(h, key.charCodeAt(i) | (key.charCodeAt(i + 1) << 16));
  if (units & 1) h ^= mixK(key.charCodeAt(pairs));
  return fmix32(h, units * 2);
}
