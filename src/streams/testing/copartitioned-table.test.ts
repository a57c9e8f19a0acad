import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonSerde, stringSerde } from '../../kafka/serdes.ts';
import { createStreamsBuilder } from '../api/streams-builder.ts';
import { DeadLetterHeader } from '../runtime/dead-letter.ts';
import { createTopologyTestDriver } from './topology-test-driver.ts';

const serdes = { key: stringSerde, value: jsonSerde<Record<string, unknown>>() };

function topology(left: boolean) {
  const b = createStreamsBuilder();
  const customers = b.table('customers', serdes, {
    validate: (row) => {
      if (typeof (row as { segment?: unknown }).segment !== 'string') throw new Error('customers: field "segment" is not a string');
    },
  });
  const events = b.stream('events', serdes);
  const joiner = (e: Record<string, unknown> | null, row: Record<string, unknown> | undefined) => ({ ...e, segment: row?.segment ?? null });
  (left ? events.leftJoin(customers, joiner, { name: 'enrich' }) : events.join(customers, joiner, { name: 'enrich' })).to(
    'enriched',
    serdes,
  );
  return b.build();
}

describe('co-partitioned tables', () => {
  it('joins each record with the row of its key held by its own task, inner or left, and follows updates and tombstones', async () => {
    for (const left of [false, true]) {
      const t = topology(left);
      // The table's source, its store and the join are one sub-topology over both topics: task p holds partition p's rows.
      assert.match(t.describe(), /Sub-topology: 0 \(tasks 0_<partition> over \[customers, events\]\)/);
      assert.deepEqual([...t.stores.keys()], ['customers']);
      const d = await createTopologyTestDriver(t, { partitions: 3 });
      try {
        await d.pipe('customers', 'c1', { segment: 'gold' }, { serdes });
        await d.pipe('customers', 'c2', { segment: 'silver' }, { serdes });
        await d.pipe('customers', 'c3', { segment: 'bronze' }, { serdes });
        await d.flush();
        await d.pipe('events', 'c1', { n: 1 }, { serdes });
        await d.pipe('events', 'c9', { n: 2 }, { serdes });
        await d.pipe('customers', 'c1', { segment: 'platinum' }, { serdes });
        await d.pipe('customers', 'c2', null, { serdes });
        await d.flush();
        await d.pipe('events', 'c1', { n: 3 }, { serdes });
        await d.pipe('events', 'c2', { n: 4 }, { serdes });
        await d.pipe('events', 'c3', { n: 5 }, { serdes });
        await d.flush();
        const out = (await d.read('enriched', serdes)).map((r) => [r.key, r.value?.n, r.value?.segment]);
        const sorted = out.sort((a, b) => (a[1] as number) - (b[1] as number));
        assert.deepEqual(
          sorted,
          left
            ? [
                ['c1', 1, 'gold'],
                ['c9', 2, null],
                ['c1', 3, 'platinum'],
                ['c2', 4, null],
                ['c3', 5, 'bronze'],
              ]
            : [
                ['c1', 1, 'gold'],
                ['c1', 3, 'platinum'],
                ['c3', 5, 'bronze'],
              ],
        );
        assert.deepEqual([...d.store<string, Record<string, unknown>>('customers').all()].map((e) => [e.key, e.value.segment]).sort(), [
          ['c1', 'platinum'],
          ['c3', 'bronze'],
        ]);
      } finally {
        await d.close();
      }
    }
  });

  it('dead-letters a table record without a key or breaking the schema, with the reason, and keeps the previous row', async () => {
    const d = await createTopologyTestDriver(topology(false), { partitions: 2 });
    try {
      await d.pipe('customers', 'c1', { segment: 'gold' }, { serdes });
      await d.pipe('customers', 'c1', { segment: 7 }, { serdes });
      await d.pipe('customers', null, { segment: 'gold' }, { serdes });
      await d.flush();
      await d.pipe('events', 'c1', { n: 1 }, { serdes });
      await d.flush();
      assert.deepEqual(
        (await d.read('enriched', serdes)).map((r) => r.value?.segment),
        ['gold'],
      );
      const dead = (await d.deadLetters()).map((r) => [r.headers[DeadLetterHeader.TOPIC], r.headers[DeadLetterHeader.MESSAGE]]);
      assert.deepEqual(dead.sort(), [
        ['customers', 'customers: field "segment" is not a string'],
        ['customers', 'table "customers": a record without a key; a table row needs one'],
      ]);
    } finally {
      await d.close();
    }
  });

  it('refuses a join with a table after the keys may have changed, and a table of another builder', () => {
    const b = createStreamsBuilder();
    const table = b.table('customers', serdes);
    const mapped = b.stream('events', serdes).map((r) => ({ key: `x${r.key}`, value: r.value }));
    assert.throws(() => mapped.join(table, (e) => e), {
      code: 'INVALID_CONFIG',
      message: /join with table "customers": an operator before it \(map, flatMap, process\) may have changed the keys/,
    });
    const other = createStreamsBuilder().table('profiles');
    assert.throws(() => b.stream('clicks').join(other as never, (e) => e), { message: /"profiles" is not a table of this builder/ });
  });
});
