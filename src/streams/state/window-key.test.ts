import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeOrderedKey } from './ordered-key.ts';
import { createMemoryStore } from './memory-store.ts';
import {
  allWindowsRange,
  expiryKey,
  expiryRange,
  isWindowOf,
  metaKey,
  parseExpiryKey,
  parseWindowKey,
  readTime,
  windowKey,
  windowRange,
  writeTime,
} from './window-key.ts';

describe('window keys', () => {
  it('round-trips key, start and (for sessions) end, negative times included', () => {
    const k = encodeOrderedKey('card-1');
    assert.deepEqual(parseWindowKey(windowKey(k, 1_700_000_000_000)), { key: k, start: 1_700_000_000_000 });
    assert.deepEqual(parseWindowKey(windowKey(k, -5, 10), true), { key: k, start: -5, end: 10 });
    const t = Buffer.alloc(8);
    for (const ms of [Number.MIN_SAFE_INTEGER, -1, 0, 1, Number.MAX_SAFE_INTEGER]) {
      writeTime(t, 0, ms);
      assert.equal(readTime(t, 0), ms);
    }
    assert.throws(() => windowKey(k, 1.5), { code: 'INVALID_ARGUMENT' });
  });

  it('writes every safe integer time as the 64-bit two’s complement with the sign bit flipped, so stored keys keep their bytes and order', () => {
    const reference = (ms: number): Buffer => {
      const out = Buffer.alloc(8);
      out.writeBigUInt64BE(BigInt.asUintN(64, BigInt(ms)) ^ (1n << 63n));
      return out;
    };
    const t = Buffer.alloc(8);
    fc.assert(
      fc.property(fc.oneof(fc.integer(), fc.maxSafeInteger(), fc.constantFrom(-(2 ** 32), 2 ** 32 - 1, 2 ** 32, -1, 0)), (ms) => {
        writeTime(t, 0, ms);
        assert.deepEqual(t, reference(ms));
        assert.equal(readTime(t, 0), ms);
      }),
    );
  });

  it('orders one key’s windows by start, so fetch(key, from, to) is a range scan that skips longer keys sharing the prefix', () => {
    const s = createMemoryStore();
    // Raw (not prefix-free) keys: "a" and "a\x00" share a prefix; the length check tells them apart.
    const a = Buffer.from('a');
    const a0 = Buffer.from('a\x00');
    for (const start of [-1000, 0, 1000, 2000, 3000]) {
      s.put(windowKey(a, start), Buffer.from(`a@${start}`));
      s.put(windowKey(a0, start), Buffer.from(`a0@${start}`));
    }
    const [lo, hi] = windowRange(a, -1000, 2000);
    const found = [...s.range(lo, hi)].filter(([k]) => isWindowOf(k, a)).map(([, v]) => v.toString());
    assert.deepEqual(found, ['a@-1000', 'a@0', 'a@1000', 'a@2000']);
    assert.equal([...s.range(...allWindowsRange())].length, 10);
  });

  it('session windows of a key scan by start with any end', () => {
    const s = createMemoryStore();
    const k = Buffer.from('u');
    s.put(windowKey(k, 100, 500), Buffer.from('1'));
    s.put(windowKey(k, 600, 600), Buffer.from('2'));
    s.put(windowKey(k, 900, 1200), Buffer.from('3'));
    const [lo, hi] = windowRange(k, 100, 600, true);
    assert.deepEqual(
      [...s.range(lo, hi)].map(([key]) => parseWindowKey(key, true)).map((w) => [w.start, w.end]),
      [
        [100, 500],
        [600, 600],
      ],
    );
  });

  it('indexes windows by end so the ones that closed are a scan from the start, apart from windows and meta', () => {
    const s = createMemoryStore();
    const keys = ['x', 'y'].map((x) => encodeOrderedKey(x));
    for (const [i, k] of keys.entries()) {
      for (const start of [0, 1000, 2000]) {
        const w = windowKey(k, start + i);
        s.put(w, Buffer.from('v'));
        s.put(expiryKey(start + i + 1000, w), Buffer.alloc(0));
      }
    }
    s.put(metaKey('streamTime'), Buffer.from('5'));
    const closed = [...s.range(...expiryRange(2000))].map(([k]) => parseExpiryKey(k));
    assert.deepEqual(
      closed.map((c) => c.end),
      [1000, 1001, 2000],
    );
    assert.deepEqual(parseWindowKey(closed[1]?.window as Buffer), { key: keys[1], start: 1 });
    assert.ok(s.get(closed[2]?.window as Buffer));
    assert.equal([...s.range(...allWindowsRange())].length, 6);
  });
});
