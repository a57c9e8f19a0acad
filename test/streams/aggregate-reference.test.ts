/**
 * Aggregations on the real broker against an offline reference: records keyed by one thing are
 * grouped by another (a repartition topic, 3 partitions), aggregated in total, per tumbling
 * window and per sliding window on an event-time field (ISO-8601 strings and ms numbers,
 * delivered out of order within the grace), and every last result must equal what pandas
 * computes from the same records — exactly, counts and sums. A second case checks the late
 * policy: records for closed windows are dead-lettered with the reason, and final results are
 * emitted once per window.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { jsonSerde, stringSerde } from '../../src/kafka/serdes.ts';
import { createStreamsBuilder, createStreamsRunner, DeadLetterHeader, type StreamsRunner, type Windowed } from '../../src/streams/index.ts';
import { peerPython } from '../interop/interop-support.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import { createTopics, produceRaw, readToEnd, seededRandom, uniqueName, waitFor, waitForLagZero } from './fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const run = promisify(execFile);
const COUNT = 3000;
const CARDS = 23;
const T0 = Date.parse('2026-03-01T00:00:00Z');
/**
 * Longer than the whole input spans: the three input partitions' tasks write the repartition
 * topic in whatever order they run, so a card's records reach its task out of event-time order
 * by up to the span; none may be late here (the late policy has its own case below).
 */
const GRACE_MS = 3_600_000;

type Tx = { card: string; amount: number; ts: number | string };
type Agg = { n: number; sum: number };
const inSerdes = { key: stringSerde, value: jsonSerde<Tx>() };
const outSerdes = { key: stringSerde, value: jsonSerde<Record<string, unknown>>() };
const add = (a: Agg, v: Tx): Agg => ({ n: a.n + 1, sum: a.sum + v.amount });
const zero = (): Agg => ({ n: 0, sum: 0 });

function topology(input: string, out: { totals: string; tumbling: string; sliding: string }) {
  const b = createStreamsBuilder();
  const byCard = b.stream(input, inSerdes).groupBy((r) => (r.value as Tx).card, { name: 'by-card' });
  byCard
    .aggregate(zero, (a, v) => add(a, v as Tx), { name: 'totals' })
    .toStream()
    .to(out.totals, outSerdes);
  for (const [name, window] of [
    ['tumbling', { type: 'tumbling', sizeMs: 10_000, graceMs: GRACE_MS }],
    ['sliding', { type: 'sliding', sizeMs: 5_000, graceMs: GRACE_MS }],
  ] as const) {
    byCard
      .windowedBy(window, { time: { field: 'ts' } })
      .aggregate(zero, (a, v) => add(a, v as Tx), { name })
      .toStream()
      .map((r) => {
        const w = r.key;
        return { key: w.key, value: { start: w.start, end: w.end, ...r.value } };
      })
      .to(out[name], outSerdes);
  }
  return b.build();
}

/** The last value per key of `topic` (records of a key are in one partition, in order). */
async function lastPerKey(client: KafkaClient, topic: string, keyOf: (key: string, value: Record<string, unknown>) => string) {
  const last = new Map<string, [number, number]>();
  for (const r of await readToEnd(client, topic)) {
    const v = outSerdes.value.deserialize(r.value) as Record<string, unknown>;
    last.set(keyOf(r.key?.toString() ?? '', v), [v.n as number, v.sum as number]);
  }
  return Object.fromEntries([...last].sort(([a], [b]) => a.localeCompare(b)));
}

const sorted = (o: Record<string, [number, number]>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

describe('aggregations on Apache Kafka equal the pandas reference', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  let client: KafkaClient;
  let python: string | undefined;
  const runners: StreamsRunner[] = [];

  before(async () => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'streams-it-aggregate' });
    python = await peerPython('mlserver');
  });
  after(async () => {
    for (const r of runners) await r.close().catch(() => undefined);
    await client?.close();
  });

  it('totals, tumbling and sliding windows over a repartitioned groupBy, 3 partitions, out-of-order event times', async (t) => {
    if (!python) return t.skip('no Python with pandas');
    const random = seededRandom();
    t.diagnostic(`records: ${random.replay}`);
    // Unique, increasing event times (40-59 ms apart), produced shuffled within blocks of 20.
    const records: Tx[] = [];
    let ts = T0;
    for (let i = 0; i < COUNT; i++) {
      ts += 40 + Math.floor(random.next() * 20);
      const card = `card-${Math.floor(random.next() * CARDS)}`;
      const amount = Math.floor(random.next() * 10_000);
      records.push({ card, amount, ts: i % 2 === 0 ? ts : new Date(ts).toISOString() });
    }
    for (let i = 0; i < COUNT; i += 20) {
      // Fisher-Yates within the block.
      for (let j = Math.min(i + 19, COUNT - 1); j > i; j--) {
        const k = i + Math.floor(random.next() * (j - i + 1));
        [records[j], records[k]] = [records[k] as Tx, records[j] as Tx];
      }
    }
    const file = join(tmpdir(), `${uniqueName('agg-ref')}.json`);
    await writeFile(file, JSON.stringify(records.map((r) => ({ ...r, ts: typeof r.ts === 'number' ? r.ts : Date.parse(r.ts) }))));
    const reference = JSON.parse(
      (await run(python, [join(import.meta.dirname, 'fixtures', 'aggregate-reference.py'), file], { maxBuffer: 64 << 20 })).stdout,
    ) as Record<'totals' | 'tumbling' | 'sliding', Record<string, [number, number]>>;

    const input = uniqueName('agg-in');
    const out = { totals: uniqueName('agg-totals'), tumbling: uniqueName('agg-tumbling'), sliding: uniqueName('agg-sliding') };
    const applicationId = uniqueName('agg-app');
    await createTopics(client, [input, ...Object.values(out), `${applicationId}-dlq`], 3);
    const runner = createStreamsRunner(topology(input, out), { client, applicationId, instanceId: 'a', lagIntervalMs: 0 });
    runners.push(runner);
    await runner.start();
    // Keyed by record number, not by card: only the repartition topic brings each card's records together.
    await produceRaw(
      client,
      records.map((r, i) => ({ topic: input, key: Buffer.from(`tx-${i}`), value: inSerdes.value.serialize(r) })),
    );
    await waitForLagZero(client, applicationId, input, 120_000);
    await waitForLagZero(client, applicationId, `${applicationId}-by-card-repartition`, 120_000);

    assert.deepEqual(await lastPerKey(client, out.totals, (k) => k), sorted(reference.totals));
    assert.deepEqual(await lastPerKey(client, out.tumbling, (k, v) => `${k}@${v.start as number}`), sorted(reference.tumbling));
    assert.deepEqual(await lastPerKey(client, out.sliding, (k, v) => `${k}@${v.end as number}`), sorted(reference.sliding));
    assert.equal(Object.keys(reference.sliding).length, COUNT, 'one sliding window per record');
    assert.deepEqual(await readToEnd(client, `${applicationId}-dlq`), []);
    // Committed repartition records are purged (deleteRecords): the topic's start moves up to its end.
    const admin = client.admin();
    try {
      const repartition = `${applicationId}-by-card-repartition`;
      const sum = async (at: 'earliest' | 'latest') => (await admin.listOffsets(repartition, at)).reduce((a, o) => a + o.offset, 0n);
      const end = await sum('latest');
      assert.equal(end, BigInt(COUNT));
      await waitFor('the repartition topic to be purged', async () => ((await sum('earliest')) === end ? true : undefined));
    } finally {
      await admin.close();
    }
    await runner.close();
  });

  it('dead-letters late records with the reason and emits each window once when it closes', async () => {
    const input = uniqueName('late-in');
    const output = uniqueName('late-out');
    const applicationId = uniqueName('late-app');
    await createTopics(client, [input, output, `${applicationId}-dlq`], 1);
    const b = createStreamsBuilder();
    b.stream(input, inSerdes)
      .groupByKey()
      .windowedBy({ type: 'tumbling', sizeMs: 1000, graceMs: 200 }, { time: { field: 'ts' }, emit: 'final', late: 'dlq' })
      .count({ name: 'per-second' })
      .toStream()
      .map((r) => ({ key: (r.key as Windowed<string>).key, value: { start: (r.key as Windowed<string>).start, n: r.value } }))
      .to(output, outSerdes);
    const runner = createStreamsRunner(b.build(), { client, applicationId, instanceId: 'a', lagIntervalMs: 0 });
    runners.push(runner);
    await runner.start();
    // [event time offset, late?]: stream time only grows; a window [s, s + 1000) closes at s + 1200.
    const plan: [number, boolean][] = [
      [100, false],
      [900, false],
      [1150, false],
      [950, false], // stream time 1150 < 1200: [0, 1000) still open
      [1250, false], // closes [0, 1000)
      [999, true],
      [2300, false], // closes [1000, 2000)
      [1500, true],
      [5000, false], // closes [2000, 3000)
    ];
    await produceRaw(
      client,
      plan.map(([at], i) => ({
        topic: input,
        key: Buffer.from('card-1'),
        value: inSerdes.value.serialize({ card: 'card-1', amount: i, ts: T0 + at }),
      })),
    );
    await waitForLagZero(client, applicationId, input);
    const results = (await readToEnd(client, output)).map((r) => outSerdes.value.deserialize(r.value));
    assert.deepEqual(results, [
      { start: T0, n: 3 },
      { start: T0 + 1000, n: 2 },
      { start: T0 + 2000, n: 1 },
    ]);
    const dlq = await readToEnd(client, `${applicationId}-dlq`);
    assert.deepEqual(
      dlq.map((r) => (inSerdes.value.deserialize(r.value) as Tx).amount),
      plan.flatMap(([, late], i) => (late ? [i] : [])),
    );
    for (const r of dlq) {
      const headers = Object.fromEntries(r.headers.map(([k, v]) => [k, v.toString()]));
      assert.equal(headers[DeadLetterHeader.CODE], 'LATE_RECORD');
      assert.match(
        headers[DeadLetterHeader.MESSAGE] ?? '',
        /late record at node "per-second": event time .* falls only in windows that closed/,
      );
    }
    await runner.close();
  });
});
