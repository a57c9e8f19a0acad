import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonSerde, stringSerde } from '../../kafka/serdes.ts';
import { DeadLetterHeader } from '../runtime/dead-letter.ts';
import { createStreamsBuilder } from '../api/streams-builder.ts';
import type { WindowOptions, WindowSpec } from '../api/windows.ts';
import { createTopologyTestDriver } from './topology-test-driver.ts';

type Tx = { card: string; amount: number; ts?: unknown };
const inSerdes = { key: stringSerde, value: jsonSerde<Tx>() };
const outSerdes = { key: stringSerde, value: jsonSerde<{ key: string; start: number; end: number; value: unknown }>() };

function windowedCount(window: WindowSpec, options: WindowOptions = {}, sum = false) {
  const b = createStreamsBuilder();
  const grouped = b
    .stream('tx', inSerdes)
    .groupBy((r) => (r.value as Tx).card, { name: 'by-card' })
    .windowedBy(window, options);
  const t = sum
    ? grouped.aggregate(
        () => 0,
        (a, v) => a + (v as Tx).amount,
        { name: 'sum', merge: (a, c) => a + c },
      )
    : grouped.count({ name: 'count' });
  t.toStream()
    .map((r) => {
      const w = r.key;
      return { key: w.key, value: { key: w.key, start: w.start, end: w.end, value: r.value } };
    })
    .to('out', outSerdes);
  return b.build();
}

async function run(topology: ReturnType<typeof windowedCount>, records: [string, number, number?][], partitions = 1) {
  const driver = await createTopologyTestDriver(topology, { partitions });
  for (const [card, at, amount] of records)
    await driver.pipe('tx', card, { card, amount: amount ?? 1 }, { serdes: inSerdes, timestamp: at });
  await driver.flush();
  return driver;
}

const rows = (out: { value: { key: string; start: number; end: number; value: unknown } | null }[]) =>
  out.map((r) => r.value && [r.value.key, r.value.start, r.value.end, r.value.value]);

describe('windowed aggregations', () => {
  it('counts per tumbling window, emitting every update', async () => {
    const driver = await run(windowedCount({ type: 'tumbling', sizeMs: 1000 }), [
      ['a', 100],
      ['a', 900],
      ['b', 950],
      ['a', 1000],
    ]);
    try {
      assert.deepEqual(rows(await driver.read('out', outSerdes)), [
        ['a', 0, 1000, 1],
        ['a', 0, 1000, 2],
        ['b', 0, 1000, 1],
        ['a', 1000, 2000, 1],
      ]);
      // Windows closed at stream time 1000 (grace 0) are gone; the open one stays.
      assert.deepEqual(
        driver.windows('count-store').map((w) => [w.key, w.start, w.value]),
        [['a', 1000, 1]],
      );
    } finally {
      await driver.close();
    }
  });

  it('emits only final results when windows close by stream time, and dead-letters late records with the reason', async () => {
    const driver = await run(windowedCount({ type: 'tumbling', sizeMs: 1000, graceMs: 500 }, { emit: 'final' }), [
      ['a', 100],
      ['a', 1200],
      ['a', 600], // stream time 1200 < 1000 + 500: the window [0, 1000) is still open
      ['b', 1600], // closes [0, 1000)
      ['a', 300], // late: [0, 1000) closed
      ['a', 2600], // closes [1000, 2000)
    ]);
    try {
      assert.deepEqual(rows(await driver.read('out', outSerdes)), [
        ['a', 0, 1000, 2],
        ['a', 1000, 2000, 1],
        ['b', 1000, 2000, 1],
      ]);
      const dlq = await driver.deadLetters();
      assert.equal(dlq.length, 1);
      assert.equal(dlq[0]?.headers[DeadLetterHeader.CODE], 'LATE_RECORD');
      assert.match(
        dlq[0]?.headers[DeadLetterHeader.MESSAGE] ?? '',
        /late record at node "count": event time 1970-01-01T00:00:00.300Z .* grace 500 ms/,
      );
    } finally {
      await driver.close();
    }
  });

  it('drops late records silently under the drop policy', async () => {
    const driver = await run(windowedCount({ type: 'tumbling', sizeMs: 1000 }, { late: 'drop' }), [
      ['a', 2000],
      ['a', 100],
    ]);
    try {
      assert.deepEqual(rows(await driver.read('out', outSerdes)), [['a', 2000, 3000, 1]]);
      assert.deepEqual(await driver.deadLetters(), []);
    } finally {
      await driver.close();
    }
  });

  it('puts a record in every hopping window that contains it', async () => {
    const driver = await run(windowedCount({ type: 'hopping', sizeMs: 1000, advanceMs: 500, graceMs: 10_000 }), [
      ['a', 700],
      ['a', 1100],
    ]);
    try {
      assert.deepEqual(rows(await driver.read('out', outSerdes)), [
        ['a', 0, 1000, 1],
        ['a', 500, 1500, 1],
        ['a', 500, 1500, 2],
        ['a', 1000, 2000, 1],
      ]);
    } finally {
      await driver.close();
    }
  });

  it('sums over sliding windows [t - size, t], updating later windows for an out-of-order record', async () => {
    const driver = await run(windowedCount({ type: 'sliding', sizeMs: 1000, graceMs: 5000 }, {}, true), [
      ['a', 1000, 1],
      ['a', 1500, 2],
      ['a', 2600, 4],
      ['a', 2000, 8], // out of order: also in the window ending at 2600
    ]);
    try {
      assert.deepEqual(rows(await driver.read('out', outSerdes)), [
        ['a', 0, 1000, 1],
        ['a', 500, 1500, 3],
        ['a', 1600, 2600, 4],
        ['a', 1600, 2600, 12],
        ['a', 1000, 2000, 11],
      ]);
    } finally {
      await driver.close();
    }
  });

  it('closes on time a window that a record late within grace opens before every open window closes', async () => {
    // Windows are closed only once stream time reaches the earliest close time (kept in the
    // store); d's window [200, 1200] closes at 1701, before b's at 1951: it must still close at 1750.
    const driver = await run(windowedCount({ type: 'sliding', sizeMs: 1000, graceMs: 500 }, { emit: 'final' }), [
      ['a', 1000],
      ['b', 1450],
      ['c', 1600], // closes a's [0, 1000] (at 1501)
      ['d', 1200], // late within grace: its window closes at 1701
      ['e', 1750], // closes d's window
    ]);
    try {
      assert.deepEqual(rows(await driver.read('out', outSerdes)), [
        ['a', 0, 1000, 1],
        ['d', 200, 1200, 1],
      ]);
    } finally {
      await driver.close();
    }
  });

  it('merges session windows when a record bridges two sessions', async () => {
    const driver = await run(windowedCount({ type: 'session', gapMs: 600, graceMs: 10_000 }, {}, true), [
      ['a', 1000, 1],
      ['a', 2000, 2],
      ['a', 1500, 4], // within 600 of both: one session [1000, 2000]
    ]);
    try {
      assert.deepEqual(rows(await driver.read('out', outSerdes)), [
        ['a', 1000, 1000, 1],
        ['a', 2000, 2000, 2],
        ['a', 1000, 1000, null],
        ['a', 2000, 2000, null],
        ['a', 1000, 2000, 7],
      ]);
      assert.deepEqual(
        driver.windows('sum-store').map((w) => [w.key, w.start, w.end, w.value]),
        [['a', 1000, 2000, 7]],
      );
    } finally {
      await driver.close();
    }
  });
});
