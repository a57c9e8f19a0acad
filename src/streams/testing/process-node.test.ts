import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonSerde, stringSerde } from '../../kafka/serdes.ts';
import { DeadLetterHeader } from '../runtime/dead-letter.ts';
import { createStreamsBuilder } from '../api/streams-builder.ts';
import { createTopologyTestDriver } from './topology-test-driver.ts';

const serdes = { key: stringSerde, value: jsonSerde<{ id: string; device: string }>() };
const out = { key: stringSerde, value: jsonSerde<Record<string, unknown>>() };

/** Drops records whose id was seen; adds the seconds since the device's previous reading. */
function dedupTopology() {
  const b = createStreamsBuilder();
  b.stream('readings', serdes, { name: 'readings-in' })
    .process(
      (r, ctx) => {
        const v = r.value as { id: string; device: string };
        const seen = ctx.store<string, number>('seen-ids');
        if (seen.get(v.id) !== undefined) return;
        seen.put(v.id, r.timestamp);
        const last = ctx.store<string, number>('last-reading');
        const previous = last.get(v.device);
        last.put(v.device, r.timestamp);
        return [
          {
            key: v.device,
            value: {
              id: v.id,
              sincePreviousS: previous === undefined ? null : (r.timestamp - previous) / 1000,
              streamTime: ctx.streamTime,
              taskId: ctx.taskId,
            },
          },
        ];
      },
      { name: 'dedup', stores: ['seen-ids', { name: 'last-reading', changelog: false }] },
    )
    .to('features', out);
  return b.build();
}

describe('process node', () => {
  it('runs custom stateful logic with its declared stores: dedup by id, time since the last event', async () => {
    const topology = dedupTopology();
    const driver = await createTopologyTestDriver(topology);
    try {
      const t0 = 1_700_000_000_000;
      for (const [id, device, at] of [
        ['r1', 'd1', 0],
        ['r2', 'd1', 2_500],
        ['r1', 'd1', 3_000],
        ['r3', 'd2', 1_000],
        ['r4', 'd1', 10_000],
      ] as const) {
        await driver.pipe('readings', device, { id, device }, { serdes, timestamp: t0 + at });
      }
      await driver.flush();
      const got = (await driver.read('features', out)).map((r) => [r.key, r.value?.id, r.value?.sincePreviousS, r.value?.streamTime]);
      assert.deepEqual(got, [
        ['d1', 'r1', null, t0],
        ['d1', 'r2', 2.5, t0 + 2_500],
        ['d2', 'r3', null, t0 + 3_000],
        ['d1', 'r4', 7.5, t0 + 10_000],
      ]);
      assert.equal(driver.store('seen-ids').get('r1'), t0);
      assert.deepEqual(
        [...driver.store<string, number>('last-reading').all()].map((e) => [e.key, e.value]),
        [
          ['d1', t0 + 10_000],
          ['d2', t0 + 1_000],
        ],
      );
      assert.throws(() => driver.store('seen-ids').put('x', 1), { code: 'FAILED_PRECONDITION' });
      assert.throws(() => driver.store('nope'), { code: 'NOT_FOUND', message: /stores: \[seen-ids, last-reading\]/ });
    } finally {
      await driver.close();
    }
  });

  it('keeps one store instance per task: with several partitions each key lives in its partition’s task', async () => {
    const b = createStreamsBuilder();
    b.stream('in', { key: stringSerde, value: stringSerde })
      .process(
        (r, ctx) => {
          const counts = ctx.store<string, number>('counts');
          const key = r.key as string;
          const n = (counts.get(key) ?? 0) + 1;
          counts.put(key, n);
          return [{ key: r.key, value: `${ctx.taskId}:${n}` }];
        },
        { name: 'count', stores: ['counts'] },
      )
      .to('out', { key: stringSerde, value: stringSerde });
    const driver = await createTopologyTestDriver(b.build(), { partitions: 3 });
    try {
      const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
      for (let i = 0; i < 3; i++)
        for (const k of keys) await driver.pipe('in', k, 'x', { serdes: { key: stringSerde, value: stringSerde } });
      await driver.flush();
      const records = await driver.read('out', { key: stringSerde, value: stringSerde });
      for (const r of records) assert.equal(r.value?.split(':')[0], `0_${r.partition}`);
      assert.deepEqual(
        [...driver.store<string, number>('counts').all()].map((e) => e.value),
        keys.map(() => 3),
      );
      assert.ok(new Set(records.map((r) => r.partition)).size > 1, 'keys spread over partitions');
    } finally {
      await driver.close();
    }
  });

  it('fails a record that uses an undeclared store or an unserializable key with a dead letter saying why', async () => {
    const b = createStreamsBuilder();
    b.stream('in', { key: stringSerde, value: jsonSerde<{ k: unknown }>() })
      .process(
        (r, ctx) => {
          if (r.key === 'sneaky') ctx.store('other');
          ctx.store('mine').put((r.value as { k: string }).k, 1);
          return [{ key: r.key, value: 'ok' }];
        },
        { name: 'p', stores: ['mine'] },
      )
      .to('out', { key: stringSerde, value: stringSerde });
    b.addStateStore({ name: 'other' }, 'p2');
    b.stream('in2').process(() => undefined, { name: 'p2' });
    const driver = await createTopologyTestDriver(b.build());
    const s = { key: stringSerde, value: jsonSerde<{ k: unknown }>() };
    try {
      await driver.pipe('in', 'sneaky', { k: 'a' }, { serdes: s });
      await driver.pipe('in', 'obj', { k: { nested: true } }, { serdes: s });
      await driver.pipe('in', 'fine', { k: 'b' }, { serdes: s });
      await driver.flush();
      assert.deepEqual(
        (await driver.read('out', { key: stringSerde, value: stringSerde })).map((r) => r.key),
        ['fine'],
      );
      const dlq = await driver.deadLetters();
      assert.deepEqual(
        dlq.map((r) => [r.key?.toString(), r.headers[DeadLetterHeader.STAGE], r.headers[DeadLetterHeader.CODE]]),
        [
          ['sneaky', 'process', 'FAILED_PRECONDITION'],
          ['obj', 'process', 'SERIALIZATION'],
        ],
      );
      assert.match(dlq[0]?.headers[DeadLetterHeader.MESSAGE] ?? '', /uses store "other" it did not declare/);
      assert.match(dlq[1]?.headers[DeadLetterHeader.MESSAGE] ?? '', /store key must be a string/);
    } finally {
      await driver.close();
    }
  });

  it('is described with its stores, and a store named by two nodes joins their streams in one sub-topology', () => {
    const t = dedupTopology();
    const text = t.describe();
    assert.match(text, /process\s+dedup \(stores: \[seen-ids, last-reading\]\)\n\s+--> SINK-\d+/);
    assert.match(text, /store\s+seen-ids \(key-value, used by: \[dedup\]\)/);
    assert.deepEqual(
      t.internalTopics('app').map((x) => x.name),
      ['app-seen-ids-changelog'],
    );
    const b = createStreamsBuilder();
    b.stream('a').process(() => undefined, { name: 'pa', stores: ['shared'] });
    b.stream('b').process(() => undefined, { name: 'pb', stores: ['shared'] });
    b.addStateStore({ name: 'shared', changelog: false });
    const two = b.build();
    assert.equal(two.subtopologies.length, 1);
    assert.deepEqual(two.stores.get('shared')?.nodes, ['pa', 'pb']);
    assert.equal(two.stores.get('shared')?.changelog, false);
    assert.throws(
      () =>
        createStreamsBuilder()
          .stream('x')
          .process(() => undefined, { stores: ['s', 's'] }),
      { code: 'INVALID_CONFIG' },
    );
  });
});
