import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { type EdgeStoreOptions, openEdgeStore, type OutboxRecord } from './edge-store.ts';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'inflow-edge-store-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const record = (i: number, topic = 'readings', size = 10): OutboxRecord => ({
  topic,
  key: Buffer.from(`dev-${i % 3}`),
  value: Buffer.from(String(i).padStart(size, '0')),
  headers: [['inflow-message-id', `m-${i}`]],
});

const open = (o: Partial<EdgeStoreOptions> & { dir: string }) =>
  openEdgeStore({ maxRecords: 1000, maxBytes: 1 << 20, overflow: 'drop-oldest', ...o });

const ids = (rs: readonly OutboxRecord[]): string[] => rs.map((r) => r.headers[0]?.[1] ?? '');

describe('edge store', () => {
  it('keeps records in append order across a reopen and removes them only when acknowledged', () => {
    const dir = tempDir();
    let store = open({ dir });
    for (let i = 0; i < 5; i++) store.complete([{ records: [record(i)] }]);
    const head = store.peek(3);
    assert.deepEqual(ids(head), ['m-0', 'm-1', 'm-2']);
    assert.deepEqual(head[0]?.key, Buffer.from('dev-0'));
    store.acknowledge(head[1]?.seq ?? -1);
    store.close();

    store = open({ dir });
    assert.equal(store.stats().records, 3);
    assert.deepEqual(ids(store.peek(10)), ['m-2', 'm-3', 'm-4']);
    store.close();
  });

  it('replays journal rows that were never completed, and deletes the completed one with its records atomically', () => {
    const dir = tempDir();
    let store = open({ dir });
    const a = store.journal('sensors/a', Buffer.from('{"x":1}'));
    const b = store.journal('sensors/b', Buffer.from('{"x":2}'));
    assert.ok(a !== undefined && b !== undefined && b > a);
    store.complete([{ journalId: a, records: [record(1), record(2, 'predictions')] }]);
    store.close();

    store = open({ dir });
    const pending = store.pendingJournal();
    assert.deepEqual(
      pending.map((p) => [p.id, p.topic, p.payload.toString()]),
      [[b, 'sensors/b', '{"x":2}']],
    );
    assert.deepEqual(store.stats(), { records: 2, bytes: store.stats().bytes, journal: 1, dropped: 0, refused: 0, diskFull: 0 });
    store.close();
  });

  it('drops the oldest records when full under drop-oldest, and counts them', () => {
    const store = open({ dir: tempDir(), maxRecords: 4 });
    for (let i = 0; i < 6; i++) store.complete([{ records: [record(i)] }]);
    assert.deepEqual(ids(store.peek(10)), ['m-2', 'm-3', 'm-4', 'm-5']);
    assert.equal(store.stats().dropped, 2);
    assert.equal(store.stats().records, 4);
    store.close();
  });

  it('refuses new records when full under stop-accepting, and counts them', () => {
    const store = open({ dir: tempDir(), maxRecords: 4, overflow: 'stop-accepting' });
    const outcomes = [];
    for (let i = 0; i < 6; i++) outcomes.push(store.complete([{ records: [record(i)] }]));
    assert.deepEqual(ids(store.peek(10)), ['m-0', 'm-1', 'm-2', 'm-3']);
    assert.deepEqual(outcomes.at(-1), { stored: 0, dropped: 0, refused: 1, reason: 'full' });
    assert.equal(store.stats().refused, 2);
    store.close();
  });

  it('bounds bytes as well as records', () => {
    const store = open({ dir: tempDir(), maxBytes: 200 });
    for (let i = 0; i < 10; i++) store.complete([{ records: [record(i, 'readings', 40)] }]);
    const s = store.stats();
    assert.ok(s.bytes <= 200, `bytes ${s.bytes}`);
    assert.ok(s.records >= 1 && s.records < 10);
    assert.equal(s.dropped, 10 - s.records);
    assert.deepEqual(store.complete([{ records: [record(99, 'readings', 500)] }]), {
      stored: 0,
      dropped: 0,
      refused: 1,
      reason: 'too-large',
    });
    store.close();
  });

  it('meets a full disk with the policy instead of an exception (drop-oldest frees room and goes on)', () => {
    const store = open({ dir: tempDir(), maxFileBytes: 64 * 1024, maxBytes: 1 << 30, maxRecords: 1 << 30 });
    let last;
    for (let i = 0; i < 400; i++) last = store.complete([{ records: [record(i, 'readings', 1000)] }]);
    const s = store.stats();
    assert.ok(s.diskFull > 0, 'the file bound was reached');
    assert.ok(s.dropped > 0);
    assert.equal(last?.stored, 1, 'the newest record is kept');
    assert.equal(ids(store.peek(1000)).at(-1), 'm-399');
    store.close();
  });

  it('meets a full disk under stop-accepting by refusing, still deleting the journal row', () => {
    const store = open({ dir: tempDir(), maxFileBytes: 64 * 1024, maxBytes: 1 << 30, maxRecords: 1 << 30, overflow: 'stop-accepting' });
    let refused = 0;
    for (let i = 0; i < 400; i++) {
      const id = store.journal('t', Buffer.from('x'));
      refused += store.complete([{ journalId: id, records: [record(i, 'readings', 1000)] }]).refused;
    }
    const s = store.stats();
    assert.ok(refused > 0 && s.diskFull > 0);
    assert.equal(s.refused, refused);
    assert.equal(s.records + refused, 400);
    assert.equal(s.journal, 0);
    assert.deepEqual(ids(store.peek(3)), ['m-0', 'm-1', 'm-2'], 'the oldest are kept');
    store.close();
  });

  it('reports a folder it cannot create as FAILED_PRECONDITION', () => {
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, 'not a folder');
    assert.throws(() => open({ dir: join(file, 'outbox') }), {
      code: 'FAILED_PRECONDITION',
      message: /a-file\/outbox\/edge\.db: .*expected a writable folder/,
    });
  });
});
