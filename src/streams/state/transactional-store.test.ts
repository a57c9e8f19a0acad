import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { createLmdbEngine } from './lmdb-engine.ts';
import { createMemoryEngine, type StoreEngine } from './store-engine.ts';
import { createKeyValueStore } from './key-value-store.ts';
import { TransactionalStore } from './transactional-store.ts';

const b = (s: string): Buffer => Buffer.from(s);
const entries = (it: Iterable<[Buffer, Buffer]>): string[] => [...it].map(([k, v]) => `${k.toString()}=${v.toString()}`);
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const engines: [string, () => StoreEngine][] = [
  ['the in-memory engine', () => createMemoryEngine()],
  [
    'lmdb',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'inflow-txstore-'));
      dirs.push(dir);
      return createLmdbEngine({ dir, name: 'test' });
    },
  ],
];

for (const [label, make] of engines) {
  describe(`the transactional overlay over ${label}`, () => {
    it('shows unfolded writes to reads, keeps them out of the engine until a commit folds the released ones', () => {
      const engine = make();
      engine.write([[b('a'), b('0')]]);
      const store = new TransactionalStore('s', engine, { topic: 'app-s-changelog', partition: 3 });
      store.view('r1').put(b('a'), b('1'));
      store.view('r2').put(b('b'), b('2'));
      assert.equal(store.get(b('a'))?.toString(), '1');
      assert.equal(engine.get(b('a'))?.toString(), '0', 'the engine is untouched before a commit');
      store.released('r1');
      const prepared = store.prepareCommit();
      assert.deepEqual(
        prepared.changelog.map((r) => [r.topic, r.partition, r.key?.toString(), r.value?.toString()]),
        [['app-s-changelog', 3, 'a', '1']],
        'the commit covers the released r1 only',
      );
      assert.equal(store.fold(prepared), 1);
      assert.equal(engine.get(b('a'))?.toString(), '1');
      assert.equal(engine.get(b('b')), undefined, 'r2 was not released: not folded');
      assert.equal(store.get(b('b'))?.toString(), '2');
      assert.equal(store.pendingWriters, 1);
    });

    it('discards every unfolded write on abort, and a failed record’s writes on drop', () => {
      const engine = make();
      const store = new TransactionalStore('s', engine, undefined);
      store.view('r1').put(b('k'), b('1'));
      store.view('r2').put(b('k'), b('2'));
      store.drop('r2');
      assert.equal(store.get(b('k'))?.toString(), '1', 'r2 failed: its write is gone, r1’s shows again');
      store.abort();
      assert.equal(store.get(b('k')), undefined);
      store.released('r1');
      assert.equal(store.fold(), 0, 'nothing left to fold');
      assert.equal(engine.get(b('k')), undefined);
      store.view('r3').put(b('k'), b('3'));
      store.released('r3');
      assert.deepEqual(store.prepareCommit().changelog, [], 'no changelog: no records');
    });

    it('merges the overlay into range scans in key order, both ways, with deletes hiding engine entries', () => {
      const engine = make();
      engine.write(['a', 'c', 'e', 'g'].map((k) => [b(k), b(`e${k}`)] as const));
      const store = new TransactionalStore('s', engine, { topic: 't', partition: 0 });
      const w = store.view('r');
      w.put(b('b'), b('ob'));
      w.put(b('c'), b('oc'));
      w.put(b('e'), null);
      w.put(b('h'), b('oh'));
      assert.deepEqual(entries(store.range()), ['a=ea', 'b=ob', 'c=oc', 'g=eg', 'h=oh']);
      assert.deepEqual(entries(store.range(b('b'), b('g'))), ['b=ob', 'c=oc', 'g=eg']);
      assert.deepEqual(entries(store.range(undefined, undefined, { reverse: true })), ['h=oh', 'g=eg', 'c=oc', 'b=ob', 'a=ea']);
      assert.deepEqual(entries(store.range(b('a'), b('c'), { reverse: true })), ['c=oc', 'b=ob', 'a=ea']);
      store.released('r');
      const prepared = store.prepareCommit();
      assert.deepEqual(
        prepared.changelog.map((r) => `${r.key?.toString()}=${r.value?.toString() ?? 'null'}`),
        ['b=ob', 'c=oc', 'e=null', 'h=oh'],
        'a delete is a tombstone in the changelog',
      );
      store.fold(prepared);
      assert.deepEqual(entries(engine.range()), ['a=ea', 'b=ob', 'c=oc', 'g=eg', 'h=oh']);
    });

    it('scans in unsigned byte order whatever the key bytes (high bytes, prefixes), as a model of the merged store says', () => {
      const key = fc.uint8Array({ minLength: 1, maxLength: 3, max: 255 }).map((a) => Buffer.from(a));
      fc.assert(
        fc.property(
          fc.array(key, { maxLength: 12 }),
          fc.array(fc.tuple(key, fc.boolean()), { maxLength: 12 }),
          fc.option(key, { nil: undefined }),
          fc.option(key, { nil: undefined }),
          fc.boolean(),
          (engineKeys, writes, from, to, reverse) => {
            const engine = make();
            const model = new Map<string, string>();
            engine.write(engineKeys.map((k) => [k, b('e')] as const));
            for (const k of engineKeys) model.set(k.toString('hex'), 'e');
            const store = new TransactionalStore('s', engine, undefined);
            const w = store.view('r');
            for (const [k, keep] of writes) {
              w.put(k, keep ? b('o') : null);
              if (keep) model.set(k.toString('hex'), 'o');
              else model.delete(k.toString('hex'));
            }
            const inRange = (k: Buffer): boolean =>
              (from === undefined || Buffer.compare(k, from) >= 0) && (to === undefined || Buffer.compare(k, to) <= 0);
            const expected = [...model.entries()]
              .map(([hex, v]) => [Buffer.from(hex, 'hex'), v] as const)
              .filter(([k]) => inRange(k))
              .sort(([x], [y]) => (reverse ? Buffer.compare(y, x) : Buffer.compare(x, y)))
              .map(([k, v]) => `${k.toString('hex')}=${v}`);
            const actual = [...store.range(from, to, { reverse })].map(([k, v]) => `${k.toString('hex')}=${v.toString()}`);
            assert.deepEqual(actual, expected);
          },
        ),
        { numRuns: 150 },
      );
    });

    it('folds writes in the order they were made when two records wrote the same key', () => {
      const engine = make();
      const store = new TransactionalStore('s', engine, undefined);
      store.view('r1').put(b('k'), b('first'));
      store.view('r2').put(b('k'), b('second'));
      store.view('r1').put(b('k'), b('third'));
      assert.equal(store.get(b('k'))?.toString(), 'third');
      store.released('r1');
      store.released('r2');
      store.fold();
      assert.equal(engine.get(b('k'))?.toString(), 'third', 'the engine ends as reads saw it');
    });

    it('gives a commit one changelog record per key, the latest covered write, and keeps unreleased writes out of it', () => {
      const engine = make();
      const store = new TransactionalStore('s', engine, { topic: 'c', partition: 0 });
      store.view('r1').put(b('k'), b('1'));
      store.view('r1').put(b('t'), b('100'));
      store.view('r2').put(b('k'), b('2'));
      store.view('r2').put(b('t'), b('101'));
      store.view('r3').put(b('k'), b('3'));
      store.view('r3').put(b('gone'), b('x'));
      store.view('r3').put(b('gone'), null);
      store.view('r4').put(b('k'), b('4'));
      for (const r of ['r1', 'r2', 'r3']) store.released(r);
      const prepared = store.prepareCommit();
      assert.deepEqual(
        prepared.changelog.map((r) => `${r.key?.toString()}=${r.value?.toString() ?? 'null'}`),
        ['k=3', 't=101', 'gone=null'],
        'three records wrote k: one record with r3’s value; r4 is not released',
      );
      assert.equal(store.fold(prepared), 3);
      assert.equal(engine.get(b('k'))?.toString(), '3', 'the engine has what the changelog has');
      assert.equal(store.get(b('k'))?.toString(), '4', 'r4’s unreleased write still shows');
      store.released('r4');
      assert.deepEqual(
        store.prepareCommit().changelog.map((r) => `${r.key?.toString()}=${r.value?.toString()}`),
        ['k=4'],
        'the next commit covers r4 only',
      );
    });

    it('covers a released write set in one prepared commit only, even before that commit folded', () => {
      const engine = make();
      const store = new TransactionalStore('s', engine, { topic: 'c', partition: 0 });
      store.view('r1').put(b('k'), b('1'));
      store.released('r1');
      const first = store.prepareCommit();
      store.view('r2').put(b('k'), b('2'));
      store.released('r2');
      const second = store.prepareCommit();
      assert.deepEqual(
        second.changelog.map((r) => r.value?.toString()),
        ['2'],
        'the second commit covers r2 only: r1 is the first one’s',
      );
      assert.equal(store.fold(first), 1);
      assert.equal(engine.get(b('k'))?.toString(), '1');
      assert.equal(store.fold(second), 1);
      assert.equal(engine.get(b('k'))?.toString(), '2');
      assert.equal(store.pendingWriters, 0);
    });

    it('folds nothing of a commit prepared before an abort, even when records with the same ids wrote again', () => {
      const engine = make();
      const store = new TransactionalStore('s', engine, { topic: 'c', partition: 0 });
      store.view('r1').put(b('k'), b('old'));
      store.released('r1');
      const prepared = store.prepareCommit();
      store.abort();
      store.view('r1').put(b('k'), b('new'));
      assert.equal(store.fold(prepared), 0);
      assert.equal(engine.get(b('k')), undefined, 'the aborted write never reaches the engine');
      assert.equal(store.get(b('k'))?.toString(), 'new', 'the rewritten record’s write is still pending');
      assert.equal(store.pendingWriters, 1);
    });
  });
}

describe('the lmdb engine', () => {
  it('refuses a batch that would pass its size limit with RESOURCE_EXHAUSTED, writing nothing of it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'inflow-lmdb-full-'));
    dirs.push(dir);
    const engine = createLmdbEngine({ dir, name: 'counts', maxBytes: 256 * 1024 });
    const value = Buffer.alloc(1000, 1);
    let written = 0;
    const error = (() => {
      try {
        for (let i = 0; i < 1000; i++) {
          engine.write(Array.from({ length: 10 }, (_, j) => [b(`k${i}-${j}`), value] as const));
          written += 10;
        }
      } catch (e) {
        return e as Error & { code?: string };
      }
      return undefined;
    })();
    assert.equal(error?.code, 'RESOURCE_EXHAUSTED');
    assert.match(error?.message ?? '', /state store "counts" is full: .* > 262144 bytes allowed .*nothing was written/);
    assert.ok(written > 0, 'some batches fit');
    assert.equal(engine.approximateCount(), written, 'every acknowledged batch is there, none of the refused one');
  });

  it('scans the key of one zero byte in reverse, from the top and from it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'inflow-lmdb-zero-'));
    dirs.push(dir);
    const engine = createLmdbEngine({ dir, name: 'z' });
    engine.write([
      [Buffer.from([0]), b('a')],
      [Buffer.from([0, 0]), b('b')],
      [Buffer.from([5]), b('c')],
    ]);
    const hex = (it: Iterable<[Buffer, Buffer]>): string[] => [...it].map(([k]) => k.toString('hex'));
    assert.deepEqual(hex(engine.range(undefined, undefined, { reverse: true })), ['05', '0000', '00']);
    assert.deepEqual(hex(engine.range(undefined, Buffer.from([0]), { reverse: true })), ['00']);
    assert.deepEqual(hex(engine.range(Buffer.from([0]), Buffer.from([0, 0]), { reverse: true })), ['0000', '00']);
  });

  it('refuses an empty or oversize key with INVALID_ARGUMENT', () => {
    const dir = mkdtempSync(join(tmpdir(), 'inflow-lmdb-key-'));
    dirs.push(dir);
    const engine = createLmdbEngine({ dir, name: 'k' });
    assert.throws(() => engine.write([[Buffer.alloc(3000, 1), b('v')]]), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => engine.write([[Buffer.alloc(0), b('v')]]), { code: 'INVALID_ARGUMENT' });
  });
});

describe('writes through a typed store', () => {
  const serde = (fresh: boolean) => ({
    made: [] as Buffer[],
    serialize(v: string): Buffer {
      const out = Buffer.from(v);
      this.made.push(out);
      return out;
    },
    deserialize: (bytes: Buffer) => bytes.toString(),
    fresh,
  });

  it('keeps the buffers of serdes that make fresh ones without copies, and copies those of others and of bytes-level writes', () => {
    const store = new TransactionalStore('s', createMemoryEngine(), { topic: 'app-s-changelog', partition: 0 });
    const fresh = serde(true);
    createKeyValueStore('s', store.view('r1'), { key: fresh, value: fresh }).put('a', '1');
    const reused = serde(false);
    createKeyValueStore('s', store.view('r2'), { key: reused, value: reused }).put('b', '2');
    const mine = b('3');
    store.view('r3').put(b('c'), mine);
    mine.write('x');
    for (const r of ['r1', 'r2', 'r3']) store.released(r);
    const [a, c2, c3] = store.prepareCommit().changelog;
    assert.ok(a?.key === fresh.made[0] && a?.value === fresh.made[1], 'fresh buffers are kept as they are');
    assert.ok(c2?.key !== reused.made[0] && c2?.value !== reused.made[1], 'buffers a serde may reuse are copied');
    assert.deepEqual([c2?.key?.toString(), c2?.value?.toString()], ['b', '2']);
    assert.equal(c3?.value?.toString(), '3', 'a bytes-level write is copied: changing the caller’s buffer later changes nothing');
  });
});
