import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonSerde, stringSerde } from '../../kafka/serdes.ts';
import { DeadLetterHeader } from '../runtime/dead-letter.ts';
import { createTopologyTestDriver } from '../testing/topology-test-driver.ts';
import { parsePipelineConfig } from './pipeline-config.ts';
import { buildTopology } from './pipeline-topology.ts';

const T0 = Date.parse('2026-03-01T00:00:00Z');
const json = jsonSerde<Record<string, unknown>>();

function pipeline(aggregate: string): string {
  return `
applicationId: agg-yaml
pipeline:
  - source: { topic: tx, key: string }
  - aggregate:
${aggregate
  .trim()
  .split('\n')
  .map((l) => `      ${l}`)
  .join('\n')}
  - to: { topic: features }
`;
}

async function drive(yaml: string, records: Record<string, unknown>[], partitions = 1) {
  const topology = buildTopology(parsePipelineConfig(yaml, 'p.yaml'), new Map(), 'p.yaml');
  const driver = await createTopologyTestDriver(topology, { partitions, applicationId: 'agg-yaml' });
  for (const [i, r] of records.entries()) await driver.pipe('tx', `tx-${i}`, r, { serdes: { key: stringSerde, value: json } });
  await driver.flush();
  return { driver, topology };
}

describe('pipeline aggregate step', () => {
  it('groups by a field through a repartition topic, windows by an event-time field and computes count, sum, mean, min, max and last', async () => {
    const yaml = pipeline(`
name: card-10s
groupBy: card
window: { tumbling: 10s, grace: 1m }
time: ts
aggregations: { n: count, total: { sum: amount }, avg: { mean: amount }, low: { min: amount }, high: { max: amount }, city: { last: city } }
`);
    const records = [
      { card: 'a', amount: 10, ts: T0 + 1000, city: 'Oslo' },
      { card: 'b', amount: 5, ts: new Date(T0 + 2000).toISOString(), city: 'Rome' },
      { card: 'a', amount: 30, ts: T0 + 9000, city: 'Bergen' },
      { card: 'a', amount: 7, ts: T0 + 12_000 },
    ];
    const { driver, topology } = await drive(yaml, records, 3);
    try {
      assert.match(topology.describe(), /card-10s-repartition/);
      const out = await driver.read('features', { key: stringSerde, value: json });
      const last = new Map(out.map((r) => [`${r.key}@${String(r.value?.windowStart)}`, r.value]));
      assert.deepEqual(last.get(`a@${T0}`), {
        key: 'a',
        windowStart: T0,
        windowEnd: T0 + 10_000,
        n: 2,
        total: 40,
        avg: 20,
        low: 10,
        high: 30,
        city: 'Bergen',
      });
      assert.deepEqual(last.get(`b@${T0}`), {
        key: 'b',
        windowStart: T0,
        windowEnd: T0 + 10_000,
        n: 1,
        total: 5,
        avg: 5,
        low: 5,
        high: 5,
        city: 'Rome',
      });
      assert.deepEqual(last.get(`a@${T0 + 10_000}`)?.n, 1);
      assert.equal(out.length, 4);
      assert.deepEqual(
        driver
          .windows('card-10s-store')
          .map((w) => [w.key, w.start])
          .sort(),
        [
          ['a', T0],
          ['a', T0 + 10_000],
          ['b', T0],
        ],
      );
    } finally {
      await driver.close();
    }
  });

  it('aggregates by the record key over all time without a window, and dead-letters a non-numeric amount with the field named', async () => {
    const yaml = pipeline(`
aggregations: { n: count, total: { sum: amount } }
`);
    const topology = buildTopology(parsePipelineConfig(yaml, 'p.yaml'), new Map(), 'p.yaml');
    assert.equal(topology.internalTopics('x').filter((t) => t.kind === 'repartition').length, 0);
    const driver = await createTopologyTestDriver(topology);
    try {
      const s = { key: stringSerde, value: json };
      await driver.pipe('tx', 'k1', { amount: 2 }, { serdes: s });
      await driver.pipe('tx', 'k1', { amount: 'two' }, { serdes: s });
      await driver.pipe('tx', 'k1', { amount: 3 }, { serdes: s });
      await driver.flush();
      assert.deepEqual(
        (await driver.read('features', s)).map((r) => [r.key, r.value]),
        [
          ['k1', { key: 'k1', n: 1, total: 2 }],
          ['k1', { key: 'k1', n: 2, total: 5 }],
        ],
      );
      const dlq = await driver.deadLetters();
      assert.equal(dlq.length, 1);
      assert.match(
        dlq[0]?.headers[DeadLetterHeader.MESSAGE] ?? '',
        /aggregation "total" reads field "amount": expected a finite number, got "two"/,
      );
    } finally {
      await driver.close();
    }
  });

  it("gives with diff the time since the key's previous event in a sliding window (null without one), and across merged sessions", async () => {
    const s = { key: stringSerde, value: json };
    const sliding = await drive(
      pipeline(`
window: { sliding: 1m }
time: ts
aggregations: { n: count, gap: { diff: ts }, amount: { last: amount } }
`),
      [],
    );
    try {
      for (const [key, ts, amount] of [
        ['a', T0, 1],
        ['b', T0 + 5_000, 2],
        ['a', T0 + 20_000, 3],
        ['a', T0 + 50_000, 4],
        ['a', T0 + 200_000, 5],
      ] as const) {
        await sliding.driver.pipe('tx', key, { ts, amount }, { serdes: s });
      }
      await sliding.driver.flush();
      assert.deepEqual(
        (await sliding.driver.read('features', s)).map((r) => [r.key, r.value?.n, r.value?.gap, r.value?.amount]),
        [
          ['a', 1, null, 1],
          ['b', 1, null, 2],
          ['a', 2, 20_000, 3],
          ['a', 3, 30_000, 4],
          // The previous event is 150 s back, outside the 1-minute window.
          ['a', 1, null, 5],
        ],
      );
    } finally {
      await sliding.driver.close();
    }
    const sessions = await drive(
      pipeline(`
window: { session: 10s, grace: 1m }
time: ts
aggregations: { gap: { diff: ts } }
`),
      [],
    );
    try {
      // Two sessions (0 s and 15 s), then 8 s bridges them: the merged session's last two values are 15 s and 8 s.
      for (const ts of [T0, T0 + 15_000, T0 + 8_000]) await sessions.driver.pipe('tx', 'k', { ts }, { serdes: s });
      await sessions.driver.flush();
      const out = (await sessions.driver.read('features', s)).filter((r) => r.value !== null);
      assert.deepEqual(out.at(-1)?.value, { key: 'k', windowStart: T0, windowEnd: T0 + 15_000, gap: -7_000 });
    } finally {
      await sessions.driver.close();
    }
  });

  it('refuses a window of two types, a hopping window without advance, unknown aggregations and durations, naming the field', () => {
    const bad = (aggregate: string, message: RegExp) =>
      assert.throws(() => parsePipelineConfig(pipeline(aggregate), 'p.yaml'), { code: 'INVALID_CONFIG', message });
    bad(
      'window: { tumbling: 10s, sliding: 5s }\naggregations: { n: count }',
      /pipeline\.1\.aggregate\.window.*exactly one of tumbling, hopping, sliding, session; got tumbling and sliding/,
    );
    bad('window: { hopping: 10s }\naggregations: { n: count }', /window\.advance.*needs advance/);
    bad('aggregations: { n: { median: x } }', /aggregations\.n.*expected count, or one of \{ sum \| mean \| min \| max \| last \| diff/);
    bad('window: { tumbling: 10 minutes }\naggregations: { n: count }', /expected a duration/);
    bad('aggregations: {}', /give at least one aggregation/);
  });
});
