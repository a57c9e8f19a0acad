import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeOrderedKey, encodeOrderedKey, type OrderedKey, orderedKeyLength } from './ordered-key.ts';

/** The natural order the encoding must keep: null < false < true < numbers < strings < Buffers < arrays. */
function rank(k: OrderedKey): number {
  if (k === null) return 0;
  if (k === false) return 1;
  if (k === true) return 2;
  if (typeof k === 'number') return 3;
  if (typeof k === 'string') return 4;
  if (Buffer.isBuffer(k)) return 5;
  return 6;
}

function naturalCompare(a: OrderedKey, b: OrderedKey): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'string' && typeof b === 'string') return Buffer.compare(Buffer.from(a), Buffer.from(b));
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return Buffer.compare(a, b);
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const c = naturalCompare(a[i] as OrderedKey, b[i] as OrderedKey);
      if (c !== 0) return c;
    }
    return a.length - b.length;
  }
  return 0;
}

const scalar = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.double({ noNaN: true }).map((d) => (d === 0 ? 0 : d)),
  fc.integer(),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: fc.constantFrom('a', 'b', '\u0000', '\u00ff', 'é') }),
  fc.uint8Array({ maxLength: 6 }).map((u) => Buffer.from(u)),
);
const key: fc.Arbitrary<OrderedKey> = fc.oneof(
  scalar,
  fc.array(scalar, { maxLength: 4 }),
  fc.array(fc.array(scalar, { maxLength: 2 }), { maxLength: 2 }),
);

describe('ordered key encoding', () => {
  it('round-trips every key it accepts', () => {
    fc.assert(
      fc.property(key, (k) => {
        assert.deepEqual(decodeOrderedKey(encodeOrderedKey(k)), k);
      }),
    );
  });

  it('orders encodings by unsigned bytes exactly as the keys order naturally', () => {
    fc.assert(
      fc.property(key, key, (a, b) => {
        assert.equal(Math.sign(Buffer.compare(encodeOrderedKey(a), encodeOrderedKey(b))), Math.sign(naturalCompare(a, b)));
      }),
      { numRuns: 2000 },
    );
  });

  it('is prefix-free: no encoding is a proper prefix of another, and its length is readable from its start', () => {
    fc.assert(
      fc.property(key, key, (a, b) => {
        const ea = encodeOrderedKey(a);
        const eb = encodeOrderedKey(b);
        if (ea.length < eb.length) assert.notDeepEqual(eb.subarray(0, ea.length), ea);
        assert.equal(orderedKeyLength(Buffer.concat([ea, Buffer.from([0, 1, 2])])), ea.length);
      }),
    );
  });

  it('orders numbers numerically across signs, zero and infinities', () => {
    const xs = [Number.NEGATIVE_INFINITY, -1e300, -2, -1.5, -0, 0, 1e-300, 1, 2, 10, 1e300, Number.POSITIVE_INFINITY];
    const sorted = [...xs]
      .map((x) => encodeOrderedKey(x))
      .sort((x, y) => Buffer.compare(x, y))
      .map((b) => decodeOrderedKey(b));
    assert.deepEqual(sorted, [Number.NEGATIVE_INFINITY, -1e300, -2, -1.5, 0, 0, 1e-300, 1, 2, 10, 1e300, Number.POSITIVE_INFINITY]);
  });

  it('refuses keys that do not serialize with SERIALIZATION and says what keys may be', () => {
    assert.throws(() => encodeOrderedKey({ a: 1 }), {
      code: 'SERIALIZATION',
      message: /must be a string, number, boolean, null, Buffer or an array of them; got an object/,
    });
    assert.throws(() => encodeOrderedKey(Number.NaN), { code: 'SERIALIZATION', message: /NaN/ });
    assert.throws(() => encodeOrderedKey(undefined), { code: 'SERIALIZATION', message: /got undefined/ });
    assert.throws(() => encodeOrderedKey([1, () => 1]), { code: 'SERIALIZATION' });
    assert.throws(() => decodeOrderedKey(Buffer.from([0x20, 0x61])), { code: 'SERIALIZATION' });
    assert.throws(() => decodeOrderedKey(Buffer.from([0x7f])), { code: 'SERIALIZATION' });
  });
});
