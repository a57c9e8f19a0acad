import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BUCKETS, hashKey, keyBucket, murmur3 } from './key-hash.ts';

const utf8 = new TextEncoder();

describe('key hash', () => {
  it('matches the published MurmurHash3 x86_32 test vectors', () => {
    const vectors: Array<[string, number, number]> = [
      ['', 0, 0],
      ['', 1, 0x514e28b7],
      ['a', 0, 0x3c2569b2],
      ['abc', 0, 0xb3dd93fa],
      ['test', 0, 0xba6bd213],
      ['Hello, world!', 1234, 0xfaf6cdb3],
      ['The quick brown fox jumps over the lazy dog', 0, 0x2e4ff723],
    ];
    for (const [text, seed, want] of vectors) assert.equal(murmur3(utf8.encode(text), seed), want, `${JSON.stringify(text)} seed ${seed}`);
  });

  it('hashes a string like MurmurHash3 of its UTF-16LE bytes, without encoding it', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.integer({ min: 0, max: 0xffffffff }), (key, seed) => {
        assert.equal(hashKey(key, seed), murmur3(Buffer.from(key, 'utf16le'), seed));
      }),
      { numRuns: 100 },
    );
  });

  it('spreads keys evenly over the buckets and gives independent buckets for different seeds', () => {
    const counts = new Array<number>(10).fill(0);
    let same = 0;
    for (let i = 0; i < 10_000; i++) {
      const b = keyBucket(`user-${i}`, 1);
      assert.ok(Number.isInteger(b) && b >= 0 && b < BUCKETS);
      counts[Math.floor(b / 1000)]!++;
      if (Math.floor(b / 5000) === Math.floor(keyBucket(`user-${i}`, 2) / 5000)) same++;
    }
    for (const n of counts) assert.ok(Math.abs(n - 1000) < 100, `decile holds ${n} of 10000`);
    assert.ok(Math.abs(same - 5000) < 200, `halves agree for ${same} of 10000 keys`);
  });
});
