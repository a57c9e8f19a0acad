/**
 * Co-partitioned table joins on the real broker: a compacted customers topic and an events topic
 * with 4 partitions each, keyed alike, joined by a pipeline file run by two instances in
 * exactly-once mode. Each task holds only its partition's rows (in its store, with a changelog),
 * yet every event meets its customer's row; a row that breaks the schema is a dead letter; a
 * table with another partition count is refused at start, naming both counts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { createStreamsRunner } from '../../src/streams/index.ts';
import { buildPipeline, parsePipelineConfig } from '../../src/streams/pipeline/index.ts';
import { DeadLetterHeader } from '../../src/streams/runtime/dead-letter.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import { createTopics, json, produceRaw, readToEnd, uniqueName, waitForLagZero } from './fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const CUSTOMERS = 40;

describe('co-partitioned table joins on Apache Kafka', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  let client: KafkaClient;
  before(() => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'streams-it-copartitioned' });
  });
  after(async () => {
    await client?.close();
  });

  const yaml = (applicationId: string, customers: string, events: string, output: string) => `
applicationId: ${applicationId}
guarantee: exactly-once
tables:
  customers: { topic: ${customers}, copartitioned: true, fields: { segment: string } }
pipeline:
  - source: { topic: ${events}, key: string }
  - join: { table: customers, as: profile }
  - to: { topic: ${output} }
`;

  it('two instances join every event with the row of its key from their own partitions, dead-lettering a bad row', async () => {
    const customers = uniqueName('customers');
    const events = uniqueName('events');
    const output = uniqueName('enriched');
    const applicationId = uniqueName('copart-app');
    const admin = client.admin();
    try {
      await admin.createTopics([{ topic: customers, partitions: 4, configs: { 'cleanup.policy': 'compact' } }]);
    } finally {
      await admin.close();
    }
    await createTopics(client, [events, output, `${applicationId}-dlq`], 4);
    // Rows first (c0 twice: the later wins; c1's second row breaks the schema, so its first stays).
    await produceRaw(client, [
      ...Array.from({ length: CUSTOMERS }, (_, id) => ({
        topic: customers,
        key: Buffer.from(`c${id}`),
        value: json.serialize({ segment: id === 0 ? 'old' : `s${id % 3}` }),
      })),
      { topic: customers, key: Buffer.from('c0'), value: json.serialize({ segment: 's0' }) },
      { topic: customers, key: Buffer.from('c1'), value: json.serialize({ segment: 7 }) },
    ]);
    const built = await buildPipeline(parsePipelineConfig(yaml(applicationId, customers, events, output), 'enrich.yaml'));
    const runners = ['a', 'b'].map((instanceId) =>
      createStreamsRunner(built.topology, { client, ...built.runnerOptions, instanceId, lagIntervalMs: 0 }),
    );
    await Promise.all(runners.map((r) => r.start()));
    try {
      await waitForLagZero(client, applicationId, customers);
      // Then the events: 2 per customer, and one for a customer without a row (the inner join drops it).
      await produceRaw(client, [
        ...Array.from({ length: 2 * CUSTOMERS }, (_, i) => ({
          topic: events,
          key: Buffer.from(`c${i % CUSTOMERS}`),
          value: json.serialize({ n: i }),
        })),
        { topic: events, key: Buffer.from('nobody'), value: json.serialize({ n: -1 }) },
      ]);
      await waitForLagZero(client, applicationId, events);
    } finally {
      await Promise.all(runners.map((r) => r.close()));
      await built.close();
    }
    const out = (await readToEnd(client, output, { isolation: 'read_committed' })).map((r) => ({
      key: r.key?.toString(),
      value: json.deserialize(r.value) as { n: number; profile: { segment: string } },
    }));
    assert.deepEqual(
      out.map((o) => o.value.n).sort((a, b) => a - b),
      Array.from({ length: 2 * CUSTOMERS }, (_, i) => i),
      'every event with a row, once; none without',
    );
    for (const o of out) {
      const id = o.value.n % CUSTOMERS;
      assert.equal(o.key, `c${id}`);
      assert.deepEqual(o.value.profile, { segment: id === 0 ? 's0' : `s${id % 3}` });
    }
    const dead = await readToEnd(client, `${applicationId}-dlq`, { isolation: 'read_committed' });
    assert.deepEqual(
      dead.map((r) => r.headers.find(([k]) => k === DeadLetterHeader.MESSAGE)?.[1].toString()),
      ['table "customers": field "segment" is number 7; expected a string (tables.customers.fields)'],
      'one dead letter: only the task that holds the row reads it',
    );
  });

  it('refuses to start when the table and the stream have different partition counts, naming both', async () => {
    const customers = uniqueName('customers');
    const events = uniqueName('events');
    const output = uniqueName('enriched');
    const applicationId = uniqueName('copart-app');
    await createTopics(client, [customers], 2);
    await createTopics(client, [events, output, `${applicationId}-dlq`], 4);
    const built = await buildPipeline(parsePipelineConfig(yaml(applicationId, customers, events, output), 'enrich.yaml'));
    const runner = createStreamsRunner(built.topology, { client, ...built.runnerOptions, instanceId: 'a', lagIntervalMs: 0 });
    try {
      await assert.rejects(runner.start(), {
        code: 'INVALID_CONFIG',
        message: new RegExp(
          `topics "${events}" \\(4 partitions\\), "${customers}" \\(2 partitions\\) are joined in sub-topology 0.*same number of partitions`,
        ),
      });
    } finally {
      await runner.close().catch(() => undefined);
      await built.close();
    }
  });
});
