/**
 * Exactly-once offsets after a rebalance the caller has not seen yet: the Kafka client takes
 * the new generation when the group rebalances, before poll() shows the new assignment. A
 * transaction must not commit offsets of a partition another member took over meanwhile — the
 * broker accepts them with the new generation, and the new owner's work is then duplicated.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { createKafkaClient, createMemoryClient, type KafkaClient } from '../../src/kafka/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import { pollUntilAssigned } from './contract.ts';

function unseenRebalanceSuite(name: string, makeClient: () => KafkaClient): void {
  describe(`transactions after an unseen rebalance on ${name}`, () => {
    it("refuses a transaction's offsets for a partition another member took over before this one polled (KAFKA_REBALANCE)", async () => {
      const client = makeClient();
      const input = `unseen-in-${randomUUID().slice(0, 8)}`;
      const output = `unseen-out-${randomUUID().slice(0, 8)}`;
      const groupId = `g-${randomUUID()}`;
      const admin = client.admin();
      await admin.createTopics([
        { topic: input, partitions: 2 },
        { topic: output, partitions: 1 },
      ]);
      const a = client.consumer({ groupId, autoOffsetReset: 'earliest', isolationLevel: 'read_committed', sessionTimeoutMs: 10_000 });
      const b = client.consumer({ groupId, autoOffsetReset: 'earliest', isolationLevel: 'read_committed', sessionTimeoutMs: 10_000 });
      const producer = client.producer({ transactionalId: `unseen-${randomUUID().slice(0, 8)}` });
      try {
        await a.subscribe([input]);
        await pollUntilAssigned(a, (assigned) => assigned.length === 2);
        const txn = await producer.beginTransaction();
        await txn.send([{ topic: output, value: Buffer.from('an output of a') }]);
        // b joins and takes a partition; a does not poll, so it has not seen the rebalance.
        await b.subscribe([input]);
        await pollUntilAssigned(b, (assigned) => assigned.length === 1);
        const taken = b.assignment()[0];
        assert.ok(taken);
        assert.deepEqual(await b.committed([taken]), [{ ...taken, offset: -1n }]);
        assert.equal(a.assignment().length, 2, 'a still shows its old assignment');
        await assert.rejects(
          async () => {
            await txn.sendOffsets(a, [{ ...taken, offset: 1n }]);
            await txn.commit();
          },
          { code: 'KAFKA_REBALANCE' },
        );
        await txn.abort().catch(() => undefined);
        assert.deepEqual(await b.committed([taken]), [{ ...taken, offset: -1n }], 'no offset committed for the partition b owns');
      } finally {
        await Promise.all([a.close(), b.close(), producer.close()]);
        await admin.close();
        await client.close();
      }
    });
  });
}

unseenRebalanceSuite('the in-process log', () => createMemoryClient());
const bootstrap = brokerOrSkip();
if (bootstrap)
  unseenRebalanceSuite(`Apache Kafka at ${bootstrap.join(',')}`, () =>
    createKafkaClient({ bootstrapServers: bootstrap, clientId: 'inflow-unseen-rebalance' }),
  );
