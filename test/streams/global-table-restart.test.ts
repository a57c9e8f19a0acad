/**
 * A global table on the persistent engine (issue 17 memory target) on the real broker: with a
 * state directory the table's rows live in lmdb, not the heap, with a checkpoint of its topic's
 * offsets. A restarted runner reads only the rows written while it was down (the restored-records
 * metric counts them), and lookups in the join give the right rows — old ones from disk, new
 * ones from the topic.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { jsonSerde, stringSerde } from '../../src/kafka/serdes.ts';
import { createStreamsBuilder, createStreamsRunner, type StreamsRunner } from '../../src/streams/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import { createTopics, json, produceRaw, readToEnd, uniqueName, waitForLagZero } from './fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const CUSTOMERS = 200;
const rowSerdes = { key: stringSerde, value: jsonSerde<{ segment: string }>() };
const eventSerdes = { key: stringSerde, value: jsonSerde<{ id: number; customer: string }>() };
const outSerdes = { key: stringSerde, value: jsonSerde<{ id: number; customer: string; segment: string | null }>() };

describe('global table on lmdb across a restart on Apache Kafka', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  let client: KafkaClient;
  const stateDir = mkdtempSync(join(tmpdir(), 'inflow-global-restart-'));
  before(() => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'streams-it-global-restart' });
  });
  after(async () => {
    await client?.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('resumes from its checkpoint after a restart, reading only the rows written while it was down, and joins the right rows', async () => {
    const customers = uniqueName('customers');
    const events = uniqueName('events');
    const output = uniqueName('enriched');
    const applicationId = uniqueName('global-restart-app');
    const admin = client.admin();
    try {
      await admin.createTopics([{ topic: customers, partitions: 3, configs: { 'cleanup.policy': 'compact' } }]);
    } finally {
      await admin.close();
    }
    await createTopics(client, [events, output, `${applicationId}-dlq`], 2);
    const row = (id: number, segment: string | null) => ({
      topic: customers,
      key: Buffer.from(`c${id}`),
      value: segment === null ? null : json.serialize({ segment }),
    });
    const event = (id: number, customer: number) => ({
      topic: events,
      key: Buffer.from(`e${id}`),
      value: json.serialize({ id, customer: `c${customer}` }),
    });
    const topology = () => {
      const b = createStreamsBuilder();
      const table = b.globalTable(customers, rowSerdes, { name: 'customer-table' });
      b.stream(events, eventSerdes)
        .leftJoin(
          table,
          {
            key: (r) => r.value?.customer as string,
            joiner: (v, r) => ({ id: v?.id ?? -1, customer: v?.customer ?? '', segment: r?.segment ?? null }),
          },
          { name: 'enrich' },
        )
        .to(output, outSerdes);
      return b.build();
    };
    const run = async (work: () => Promise<void>): Promise<number> => {
      const runner: StreamsRunner = createStreamsRunner(topology(), { client, applicationId, stateDir, lagIntervalMs: 0 });
      try {
        await runner.start();
        await work();
      } finally {
        await runner.close();
      }
      return (await runner.metrics.restoredRecords.get()).values
        .filter((v) => v.labels.store === 'customer-table')
        .reduce((a, v) => a + v.value, 0);
    };

    await produceRaw(
      client,
      Array.from({ length: CUSTOMERS }, (_, id) => row(id, `s${id % 3}`)),
    );
    const first = await run(async () => {
      await produceRaw(client, [event(1, 1), event(2, 2)]);
      await waitForLagZero(client, applicationId, events);
    });
    assert.equal(first, CUSTOMERS, 'the first start reads every row');

    // While the runner is down: a new row, an update and a delete.
    await produceRaw(client, [row(1000, 'new'), row(5, 'updated'), row(6, null)]);
    const second = await run(async () => {
      await produceRaw(client, [event(3, 1000), event(4, 5), event(5, 6), event(6, 7)]);
      await waitForLagZero(client, applicationId, events);
    });
    assert.equal(second, 3, 'the restart read only the three rows written after its checkpoint');

    const got = new Map(
      (await readToEnd(client, output)).map((r) => {
        const v = json.deserialize(r.value) as { id: number; segment: string | null };
        return [v.id, v.segment];
      }),
    );
    assert.deepEqual(
      Object.fromEntries(got),
      { 1: 's1', 2: 's2', 3: 'new', 4: 'updated', 5: null, 6: 's1' },
      'rows from before the restart come from disk, rows written while down from the topic, the delete removed c6',
    );
  });
});
