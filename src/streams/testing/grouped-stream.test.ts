import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonSerde, stringSerde } from '../../kafka/serdes.ts';
import { DeadLetterHeader } from '../runtime/dead-letter.ts';
import { createStreamsBuilder } from '../api/streams-builder.ts';
import type { Windowed } from '../api/windows.ts';
import { createTopologyTestDriver } from './topology-test-driver.ts';

type Tx = { card: string; amount: number; ts?: unknown };
const inSerdes = { key: stringSerde, value: jsonSerde<Tx>() };
const outSerdes = { key: stringSerde, value: jsonSerde() };

function perCard() {
  const b = createStreamsBuilder();
  const byCard = b.stream('tx', inSerdes, { name: 'tx-in' }).groupBy((r) => (r.value as Tx).card, { name: 'by-card' });
  byCard.count({ name: 'tx-count' }).toStream().to('counts', outSerdes);
  byCard
    .aggregate(
      () => ({ n: 0, sum: 0 }),
      (a, v) => ({ n: a.n + 1, sum: a.sum + (v as Tx).amount }),
      { name: 'tx-sum' },
    )
    .toStream()
    .to('sums', outSerdes);
  return b.build();
}

describe('grouping and aggregation', () => {
  it('re-keys through one repartition topic: two sub-topologies, the topic listed as internal and created by the runner', async () => {
    const t = perCard();
    assert.equal(t.subtopologies.length, 2);
    assert.deepEqual(
      t.internalTopics('app').map((x) => [x.name, x.kind, x.subtopology]),
      [
        ['app-by-card-repartition', 'repartition', 0],
        ['app-tx-count-store-changelog', 'changelog', 1],
        ['app-tx-sum-store-changelog', 'changelog', 1],
      ],
    );
    assert.deepEqual(t.forApplication('app').subtopologies[1]?.inputTopics, ['app-by-card-repartition']);
    const text = t.describe();
    assert.match(text, /sink\s+by-card-repartition-sink \(topic: <applicationId>-by-card-repartition\)/);
    assert.match(
      text,
      /Sub-topology: 1 .*\n\s+source\s+by-card-repartition-source \(topics: \[<applicationId>-by-card-repartition\]\)\n\s+--> tx-count, tx-sum/,
    );
    assert.match(text, /process\s+tx-count \(stores: \[tx-count-store\]\)/);
    assert.match(text, /repartition <applicationId>-by-card-repartition \(sub-topology 0\)/);

    // Input keyed by something else, spread over 4 partitions: each card's counts still add up.
    const driver = await createTopologyTestDriver(t, { partitions: 4 });
    try {
      const expected = new Map<string, { n: number; sum: number }>();
      for (let i = 0; i < 60; i++) {
        const card = `c${i % 7}`;
        const amount = (i * 37) % 101;
        await driver.pipe('tx', `k${i}`, { card, amount }, { serdes: inSerdes });
        const e = expected.get(card) ?? { n: 0, sum: 0 };
        expected.set(card, { n: e.n + 1, sum: e.sum + amount });
      }
      await driver.flush();
      const counts = await driver.read('counts', outSerdes);
      const last = new Map(counts.map((r) => [r.key, r.value]));
      assert.deepEqual(Object.fromEntries(last), Object.fromEntries([...expected].map(([k, v]) => [k, v.n])));
      assert.equal(counts.length, 60, 'one update per record');
      const sums = new Map([...driver.store<string, { n: number; sum: number }>('tx-sum-store').all()].map((e) => [e.key, e.value]));
      assert.deepEqual(Object.fromEntries(sums), Object.fromEntries(expected));
      // Each card is counted in exactly one task.
      assert.equal([...driver.store('tx-count-store').all()].length, 7);
    } finally {
      await driver.close();
    }
  });

  it('groupByKey aggregates in place, and repartitions only after an operator that may change keys', () => {
    const b = createStreamsBuilder();
    const s = b.stream('tx', inSerdes);
    s.groupByKey().reduce((a, v) => ({ card: (v as Tx).card, amount: (a as Tx).amount + (v as Tx).amount }), { name: 'total' });
    s.map((r) => ({ key: (r.value as Tx).card, value: r.value }))
      .groupByKey({ name: 'rekeyed' })
      .count({ name: 'n' });
    const t = b.build();
    assert.deepEqual(
      t
        .internalTopics('x')
        .filter((i) => i.kind === 'repartition')
        .map((i) => i.name),
      ['x-rekeyed-repartition'],
    );
    assert.equal(t.subtopologies.length, 2);
  });

  it('dead-letters records without the timestamp field, with unparsable timestamps, and with keys that do not serialize', async () => {
    const b = createStreamsBuilder();
    b.stream('tx', inSerdes)
      .groupBy((r) => ((r.value as Tx).card === 'obj' ? { not: 'a key' } : (r.value as Tx).card), { name: 'g' })
      .windowedBy({ type: 'tumbling', sizeMs: 60_000 }, { time: { field: 'ts' } })
      .count({ name: 'c' })
      .toStream()
      .map((r) => ({ key: (r.key as Windowed<string>).key, value: r.value }))
      .to('out', outSerdes);
    const driver = await createTopologyTestDriver(b.build());
    try {
      const send = (v: Tx) => driver.pipe('tx', 'k', v, { serdes: inSerdes });
      await send({ card: 'a', amount: 1, ts: '2026-01-31T12:00:30Z' });
      await send({ card: 'a', amount: 1 });
      await send({ card: 'a', amount: 1, ts: 'yesterday' });
      await send({ card: 'a', amount: 1, ts: true });
      await send({ card: 'obj', amount: 1, ts: 1 });
      await send({ card: 'a', amount: 1, ts: Date.parse('2026-01-31T12:00:59.999Z') });
      await driver.flush();
      assert.deepEqual(
        (await driver.read('out', outSerdes)).map((r) => [r.key, r.value]),
        [
          ['a', 1],
          ['a', 2],
        ],
      );
      const dlq = await driver.deadLetters();
      assert.deepEqual(
        dlq.map((r) => [r.headers[DeadLetterHeader.CODE], r.headers[DeadLetterHeader.NODE]]),
        [
          ['INVALID_ARGUMENT', 'c'],
          ['INVALID_ARGUMENT', 'c'],
          ['INVALID_ARGUMENT', 'c'],
          // An object survives the repartition topic (JSON) but is no store key.
          ['SERIALIZATION', 'c'],
        ],
      );
      const messages = dlq.map((r) => r.headers[DeadLetterHeader.MESSAGE] ?? '');
      assert.match(messages[0] ?? '', /record has no timestamp field "ts"; expected ms since the epoch or an ISO-8601/);
      assert.match(messages[1] ?? '', /timestamp field "ts" is "yesterday", not a time/);
      assert.match(messages[2] ?? '', /timestamp field "ts" is boolean, not a time/);
      assert.match(messages[3] ?? '', /a store key must be a string, number, boolean, null, Buffer or an array of them; got an object/);
    } finally {
      await driver.close();
    }
  });
});
