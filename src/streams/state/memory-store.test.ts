import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createKeyValueStore } from './key-value-store.ts';
import { createMemoryStore } from './memory-store.ts';

const b = (...bytes: number[]): Buffer => Buffer.from(bytes);

describe('in-memory store', () => {
  it('gets, puts, deletes with a null put, and counts', () => {
    const s = createMemoryStore();
    s.put(b(2), b(20));
    s.put(b(1), b(10));
    s.put(b(2), b(21));
    assert.deepEqual(s.get(b(2)), b(21));
    assert.equal(s.approximateCount(), 2);
    s.put(b(1), null);
    assert.equal(s.get(b(1)), undefined);
    assert.equal(s.approximateCount(), 1);
    s.clear();
    assert.equal(s.approximateCount(), 0);
  });

  it('copies keys and values on put, so a caller reusing its buffers cannot change the store', () => {
    const s = createMemoryStore();
    const k = b(1);
    const v = b(9);
    s.put(k, v);
    k[0] = 7;
    v[0] = 7;
    assert.deepEqual(s.get(b(1)), b(9));
  });

  it('scans ranges inclusively in unsigned byte order, forwards and in reverse', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.uint8Array({ minLength: 0, maxLength: 3 }), { selector: (u) => Buffer.from(u).toString('hex'), maxLength: 40 }),
        fc.option(fc.uint8Array({ maxLength: 3 }), { nil: undefined }),
        fc.option(fc.uint8Array({ maxLength: 3 }), { nil: undefined }),
        (keys, fromU, toU) => {
          const s = createMemoryStore();
          for (const k of keys) s.put(Buffer.from(k), Buffer.from(k));
          const from = fromU && Buffer.from(fromU);
          const to = toU && Buffer.from(toU);
          const expected = keys
            .map((k) => Buffer.from(k))
            .filter((k) => (!from || Buffer.compare(k, from) >= 0) && (!to || Buffer.compare(k, to) <= 0))
            .sort((x, y) => Buffer.compare(x, y))
            .map((k) => k.toString('hex'));
          assert.deepEqual(
            [...s.range(from, to)].map(([k]) => k.toString('hex')),
            expected,
          );
          assert.deepEqual(
            [...s.range(from, to, { reverse: true })].map(([k]) => k.toString('hex')),
            [...expected].reverse(),
          );
        },
      ),
    );
  });

  it('as a typed store keeps string and number keys in natural order and JSON values', () => {
    const s = createKeyValueStore<string | number, { n: number }>('counts', createMemoryStore());
    for (const k of ['b', 'a', 10, 9, -1, 'ab']) s.put(k, { n: String(k).length });
    assert.deepEqual(
      [...s.all()].map((e) => e.key),
      [-1, 9, 10, 'a', 'ab', 'b'],
    );
    assert.deepEqual(
      [...s.range('a', 'ab')].map((e) => e.key),
      ['a', 'ab'],
    );
    assert.deepEqual(s.get('ab'), { n: 2 });
    s.delete('ab');
    assert.equal(s.get('ab'), undefined);
    assert.throws(() => s.put('x', undefined as never), { code: 'INVALID_ARGUMENT', message: /use delete/ });
    assert.throws(() => s.put({ x: 1 } as never, { n: 1 }), { code: 'SERIALIZATION' });
  });
});
