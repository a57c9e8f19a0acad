/**
 * The group assignor on both Kafka clients: co-partitioned topics' partitions go to members
 * together, and a member that joins takes tasks without moving the others' more than balance
 * needs (sticky).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { createKafkaClient, createMemoryClient, type KafkaClient, type KafkaConsumer } from '../../src/kafka/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import { pollUntilAssigned } from './contract.ts';

const keys = (c: KafkaConsumer): string[] =>
  c
    .assignment()
    .map((p) => `${p.topic.split('-')[0]}-${p.partition}`)
    .sort();

function assignorSuite(name: string, makeClient: () => KafkaClient): void {
  describe(`group assignment on ${name}`, () => {
    it('assigns partition p of co-partitioned topics to one member, and keeps owners when a member joins', async () => {
      const client = makeClient();
      const id = randomUUID().slice(0, 8);
      const clicks = `clicks-${id}`;
      const views = `views-${id}`;
      const admin = client.admin();
      await admin.createTopics([
        { topic: clicks, partitions: 6 },
        { topic: views, partitions: 6 },
      ]);
      const groupId = `g-${id}`;
      const make = (): KafkaConsumer =>
        client.consumer({ groupId, autoOffsetReset: 'earliest', copartitioned: [[clicks, views]], sessionTimeoutMs: 10_000 });
      const members: KafkaConsumer[] = [];
      try {
        const a = make();
        const b = make();
        members.push(a, b);
        await a.subscribe([clicks, views]);
        await b.subscribe([clicks, views]);
        const settled = (): boolean =>
          a.assignment().length + b.assignment().length === 12 && a.assignment().length > 0 && b.assignment().length > 0;
        await Promise.all([pollUntilAssigned(a, settled), pollUntilAssigned(b, settled)]);
        for (const m of [a, b]) {
          const partitions = (topic: string): number[] =>
            m
              .assignment()
              .filter((p) => p.topic === topic)
              .map((p) => p.partition)
              .sort();
          assert.deepEqual(partitions(clicks), partitions(views), 'clicks and views partitions go together');
          assert.equal(partitions(clicks).length, 3);
        }
        const before = { a: keys(a), b: keys(b) };
        const c = make();
        members.push(c);
        await c.subscribe([clicks, views]);
        const three = (): boolean => c.assignment().length === 4 && a.assignment().length === 4 && b.assignment().length === 4;
        await Promise.all([pollUntilAssigned(a, three), pollUntilAssigned(b, three), pollUntilAssigned(c, three)]);
        // Sticky: a and b only gave up tasks; c's four partitions are two tasks taken from them.
        for (const [m, was] of [
          [a, before.a],
          [b, before.b],
        ] as const) {
          for (const k of keys(m)) assert.ok(was.includes(k), `${k} stayed where it was`);
        }
      } finally {
        await Promise.all(members.map((m) => m.close()));
        await admin.close();
        await client.close();
      }
    });
  });
}

assignorSuite('the in-process log', () => createMemoryClient());
const bootstrap = brokerOrSkip();
if (bootstrap)
  assignorSuite(`Apache Kafka at ${bootstrap.join(',')}`, () =>
    createKafkaClient({ bootstrapServers: bootstrap, clientId: 'inflow-assignor' }),
  );
