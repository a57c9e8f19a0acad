/**
 * Timestamp-ordered reads across a task's partitions on the real broker (Kafka Streams'
 * `max.task.idle.ms`): a co-partitioned table join — the task of partition p reads partition p of
 * the events topic and of the customers topic — where the table's partitions lag: every event is
 * produced, and consumed by the pipeline, before any customer row, though the rows' timestamps
 * lie between the events'. Each customer's row changes at T0 + 1 s and T0 + 3 s; events come at
 * T0 + 0.5 s, 2 s and 4 s. The reference is the temporal join Kafka Streams gives: an event meets
 * the row with the latest timestamp at or before its own (none for the first).
 *
 * Without a wait (maxTaskIdleMs 0) the events are processed as they come, before the rows exist,
 * and every one misses its row; with `limits.maxTaskIdleMs` the task holds the events while the
 * table partition is empty, then processes both topics in timestamp order and the output equals
 * the reference.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { partitionForKey } from '../../src/kafka/partitioner.ts';
import { createStreamsRunner } from '../../src/streams/index.ts';
import { buildPipeline, parsePipelineConfig } from '../../src/streams/pipeline/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import { createTopics, json, produceRaw, readToEnd, uniqueName, waitFor, waitForLagZero } from './fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const PARTITIONS = 2;
const CUSTOMERS = 8;
const T0 = 1_700_000_000_000;
const ROW_TIMES = [1_000, 3_000] as const;
const EVENT_TIMES = [500, 2_000, 4_000] as const;

interface Enriched {
  readonly n: number;
  readonly profile?: { readonly segment: string };
}

/** The segment customer `c` has from time `t` on (offset from T0). */
const segment = (c: number, t: number): string => `${t === ROW_TIMES[0] ? 'a' : 'b'}${c}`;

/**
 * Event `n`: customer n % CUSTOMERS at EVENT_TIMES[n / CUSTOMERS] — produced in n order, so each
 * partition's timestamps never go back (within a partition, records go in offset order).
 */
const customerOf = (n: number): number => n % CUSTOMERS;
const timeOf = (n: number): number => EVENT_TIMES[Math.floor(n / CUSTOMERS)] as number;

/** What the temporal join answers for event `n`. */
function reference(n: number): Enriched {
  const c = customerOf(n);
  const t = timeOf(n);
  const row = ROW_TIMES.filter((r) => r <= t).at(-1);
  return row === undefined ? { n } : { n, profile: { segment: segment(c, row) } };
}

describe('timestamp-ordered reads across a task’s partitions on Apache Kafka', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  let client: KafkaClient;
  before(() => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'streams-it-ts-order' });
    // Every task gets events and rows (else it would wait for an input that never comes).
    const used = new Set(Array.from({ length: CUSTOMERS }, (_, c) => partitionForKey(Buffer.from(`c${c}`), PARTITIONS)));
    assert.equal(used.size, PARTITIONS, 'the customers cover every partition');
  });
  after(async () => {
    await client?.close();
  });

  /** Runs the join with the table lagging behind the events; returns the output by event number. */
  async function joinWithLaggingTable(maxTaskIdleMs: number | undefined): Promise<Map<number, Enriched>> {
    const customers = uniqueName('ts-customers');
    const events = uniqueName('ts-events');
    const output = uniqueName('ts-enriched');
    const applicationId = uniqueName('ts-order-app');
    const admin = client.admin();
    try {
      await admin.createTopics([{ topic: customers, partitions: PARTITIONS, configs: { 'cleanup.policy': 'compact' } }]);
    } finally {
      await admin.close();
    }
    await createTopics(client, [events, output, `${applicationId}-dlq`], PARTITIONS);
    const yaml = `
applicationId: ${applicationId}
tables:
  customers: { topic: ${customers}, copartitioned: true, fields: { segment: string } }
pipeline:
  - source: { topic: ${events}, key: string }
  - join: { table: customers, as: profile, type: left }
  - to: { topic: ${output} }
${maxTaskIdleMs === undefined ? '' : `limits: { maxTaskIdleMs: ${maxTaskIdleMs} }`}
`;
    const built = await buildPipeline(parsePipelineConfig(yaml, 'enrich.yaml'));
    const runner = createStreamsRunner(built.topology, { client, ...built.runnerOptions, instanceId: 'a', lagIntervalMs: 0 });
    await runner.start();
    try {
      const eventCount = CUSTOMERS * EVENT_TIMES.length;
      await produceRaw(
        client,
        Array.from({ length: eventCount }, (_, n) => ({
          topic: events,
          key: Buffer.from(`c${customerOf(n)}`),
          value: json.serialize({ n }),
          timestamp: T0 + timeOf(n),
        })),
      );
      // The table lags: its rows are produced only once the pipeline consumed every event.
      await waitFor('every event consumed', async () => {
        const consumed = (await runner.metrics.recordsIn.get()).values.reduce((a, v) => a + v.value, 0);
        return consumed >= eventCount ? true : undefined;
      });
      await produceRaw(
        client,
        ROW_TIMES.flatMap((t) =>
          Array.from({ length: CUSTOMERS }, (_, c) => ({
            topic: customers,
            key: Buffer.from(`c${c}`),
            value: json.serialize({ segment: segment(c, t) }),
            timestamp: T0 + t,
          })),
        ),
      );
      await waitForLagZero(client, applicationId, events);
      await waitForLagZero(client, applicationId, customers);
    } finally {
      await runner.close();
      await built.close();
    }
    const out = new Map<number, Enriched>();
    for (const r of await readToEnd(client, output)) {
      const v = json.deserialize(r.value) as unknown as Enriched;
      assert.ok(!out.has(v.n), `event ${v.n} twice`);
      out.set(v.n, v);
    }
    assert.equal(out.size, CUSTOMERS * EVENT_TIMES.length, 'one output per event');
    return out;
  }

  it('without a wait, events read before their lagging table rows miss them (the default, maxTaskIdleMs 0)', async () => {
    const out = await joinWithLaggingTable(undefined);
    const wrong = [...out.values()].filter((o) => JSON.stringify(o) !== JSON.stringify(reference(o.n)));
    // Every event that should have met a row (2 of each customer's 3) came before the rows.
    assert.equal(wrong.length, CUSTOMERS * 2);
    for (const o of wrong) assert.equal(o.profile, undefined);
  });

  it('with maxTaskIdleMs the task waits for the lagging table partition and joins in timestamp order, equal to the temporal-join reference', async () => {
    const out = await joinWithLaggingTable(5_000);
    for (const [n, o] of out) assert.deepEqual(o, reference(n), `event ${n}`);
  });
});
