/**
 * Global table joins on the real broker: a compacted customers topic (3 partitions) enriches an
 * events topic (4 partitions) in a pipeline file run by two instances that share the events'
 * partitions — each instance holds every row, so every event finds its customer whichever
 * instance processes it. Rows written before the events are seen; a row updated after an event
 * was processed changes only later events; a left join passes an event without a row on; a row
 * that breaks the table schema is a dead letter and the previous row stays.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { DeadLetterHeader } from '../../src/streams/runtime/dead-letter.ts';
import { createStreamsRunner, type StreamsRunner } from '../../src/streams/index.ts';
import { buildPipeline, parsePipelineConfig } from '../../src/streams/pipeline/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import { createTopics, json, produceRaw, readToEnd, uniqueName, waitFor, waitForLagZero } from './fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const CUSTOMERS = 30;

describe('global table joins on Apache Kafka', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  let client: KafkaClient;
  before(() => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'streams-it-table-join' });
  });
  after(async () => {
    await client?.close();
  });

  it('two instances enrich every event with its customer row, seeing updates that came before it, left-joining a missing row, dead-lettering a bad row', async () => {
    const customers = uniqueName('customers');
    const events = uniqueName('events');
    const output = uniqueName('enriched');
    const applicationId = uniqueName('enrich-app');
    const admin = client.admin();
    try {
      await admin.createTopics([{ topic: customers, partitions: 3, configs: { 'cleanup.policy': 'compact' } }]);
    } finally {
      await admin.close();
    }
    await createTopics(client, [events, output, `${applicationId}-dlq`], 4);
    const row = (id: number, segment: string) => ({
      topic: customers,
      key: Buffer.from(`c${id}`),
      value: json.serialize({ segment, age: 20 + id }),
    });
    // Before the pipeline starts: every customer (c0 twice: the later row wins), and a row that breaks the schema for c1.
    await produceRaw(client, [
      ...Array.from({ length: CUSTOMERS }, (_, id) => row(id, id === 0 ? 'old' : `s${id % 3}`)),
      row(0, 's0'),
      { topic: customers, key: Buffer.from('c1'), value: json.serialize({ segment: 7, age: 21 }) },
    ]);

    const yaml = `
applicationId: ${applicationId}
tables:
  customers: { topic: ${customers}, fields: { segment: string, age: integer } }
pipeline:
  - source: { topic: ${events}, key: string }
  - join: { table: customers, key: customer, as: profile, type: left }
  - to: { topic: ${output} }
`;
    const built = await buildPipeline(parsePipelineConfig(yaml, 'enrich.yaml'));
    const runners: StreamsRunner[] = ['a', 'b'].map((instanceId) =>
      createStreamsRunner(built.topology, { client, ...built.runnerOptions, instanceId, lagIntervalMs: 0 }),
    );
    const event = (id: number, customer: string) => ({
      topic: events,
      key: Buffer.from(`e${id}`),
      value: json.serialize({ id, customer }),
    });
    try {
      for (const r of runners) await r.start();
      await waitFor('both instances to own partitions', () => runners.every((r) => r.stats().assigned.length > 0) || undefined);
      // Phase 1: one event per customer, and one for a customer with no row.
      await produceRaw(client, [...Array.from({ length: CUSTOMERS }, (_, id) => event(id, `c${id}`)), event(1000, 'nobody')]);
      await waitForLagZero(client, applicationId, events);
      // Phase 2: rows change after their events were processed; later events see the new rows (c4's
      // new row breaks the schema: c4 keeps its row).
      await produceRaw(client, [
        row(2, 'upgraded'),
        { topic: customers, key: Buffer.from('c3'), value: null },
        { topic: customers, key: Buffer.from('c4'), value: json.serialize({ segment: 8, age: 24 }) },
      ]);
      for (const r of runners) await r.syncGlobalTables();
      await produceRaw(client, [event(2002, 'c2'), event(2003, 'c3'), event(2004, 'c4')]);
      await waitForLagZero(client, applicationId, events);
    } finally {
      for (const r of runners) await r.close();
      await built.close();
    }

    const out = new Map(
      (await readToEnd(client, output)).map((r) => {
        const v = json.deserialize(r.value) as { id: number; customer: string; profile?: { segment: string; age: number } };
        return [v.id, v];
      }),
    );
    assert.equal(out.size, CUSTOMERS + 4, 'one output per event');
    for (let id = 0; id < CUSTOMERS; id++) {
      const want = id === 0 ? 's0' : `s${id % 3}`;
      assert.deepEqual(out.get(id)?.profile, { segment: want, age: 20 + id }, `event ${id} got customer c${id}'s row`);
    }
    assert.equal(out.get(1000)?.profile, undefined, 'left join: no row, no profile');
    assert.deepEqual(out.get(2002)?.profile, { segment: 'upgraded', age: 22 }, 'an update before the event is seen');
    assert.equal(out.get(2003)?.profile, undefined, 'a tombstone removed the row');
    assert.deepEqual(out.get(2004)?.profile, { segment: 's1', age: 24 });
    // Both instances read both bad rows (the rows stay as they were: c1 above is s1, c4 s1), but
    // only the owner of the designated task writes their dead letters: one per bad row.
    const dead = await readToEnd(client, `${applicationId}-dlq`);
    const h = (d: (typeof dead)[number], name: string) => d.headers.find(([k]) => k === name)?.[1].toString();
    assert.deepEqual(
      dead.map((d) => [d.key?.toString(), h(d, DeadLetterHeader.MESSAGE)]).sort(),
      [
        ['c1', 'table "customers": field "segment" is number 7; expected a string (tables.customers.fields)'],
        ['c4', 'table "customers": field "segment" is number 8; expected a string (tables.customers.fields)'],
      ],
      'each bad row once, not once per instance',
    );
    for (const d of dead) {
      assert.equal(h(d, DeadLetterHeader.TOPIC), customers);
      assert.equal(h(d, DeadLetterHeader.NODE), 'table:customers');
    }
  });
});
