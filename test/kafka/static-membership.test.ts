/**
 * Static group membership (KIP-345, ConsumerOptions.groupInstanceId) on the real broker: a
 * static member does not leave the group when it closes, so a successor under the same instance
 * id takes its partitions back in the same generation (no rebalance of the others); and a member
 * whose instance id another live member took fails with KAFKA_FENCED instead of fencing it back.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { createKafkaClient } from '../../src/kafka/index.ts';
import { PlatformaticConsumer } from '../../src/kafka/platformatic/platformatic-consumer.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import { pollUntilAssigned } from './contract.ts';

const bootstrap = brokerOrSkip();

describe('static group membership on Apache Kafka', { skip: bootstrap === undefined }, () => {
  const client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'inflow-static-membership' });
  const consumer = (groupId: string, groupInstanceId: string): PlatformaticConsumer => {
    const c = client.consumer({ groupId, groupInstanceId, autoOffsetReset: 'earliest', sessionTimeoutMs: 30_000 });
    assert.ok(c instanceof PlatformaticConsumer);
    return c;
  };
  after(() => client.close());

  it('keeps a closed static member in the group, and its successor takes its partition back without a rebalance', async () => {
    const topic = `static-${randomUUID().slice(0, 8)}`;
    const groupId = `g-${randomUUID()}`;
    const admin = client.admin();
    await admin.createTopics([{ topic, partitions: 2 }]);
    const a = consumer(groupId, 'instance-a');
    const b = consumer(groupId, 'instance-b');
    let a2: PlatformaticConsumer | undefined;
    try {
      await a.subscribe([topic]);
      await b.subscribe([topic]);
      await Promise.all([pollUntilAssigned(a, (p) => p.length === 1), pollUntilAssigned(b, (p) => p.length === 1)]);
      const owned = a.assignment();
      const generation = a.raw.generationId;
      await a.close();
      // No LeaveGroup: the coordinator still holds both members.
      const group = await admin.describeGroup(groupId);
      assert.equal(group.members.length, 2, `members after a static member closed: ${JSON.stringify(group)}`);
      a2 = consumer(groupId, 'instance-a');
      await a2.subscribe([topic]);
      await pollUntilAssigned(a2, (p) => p.length === 1);
      assert.deepEqual(a2.assignment(), owned);
      assert.equal(a2.raw.generationId, generation, 'the successor joined the same generation: no rebalance');
    } finally {
      await Promise.all([a.close(), b.close(), a2?.close()]);
      await admin.deleteTopics([topic]).catch(() => undefined);
      await admin.close();
    }
  });

  it('fails a member with KAFKA_FENCED, naming its instance id, when another live member takes the id', async () => {
    const topic = `static-${randomUUID().slice(0, 8)}`;
    const groupId = `g-${randomUUID()}`;
    const admin = client.admin();
    await admin.createTopics([{ topic, partitions: 1 }]);
    const first = consumer(groupId, 'instance-x');
    const second = consumer(groupId, 'instance-x');
    try {
      await first.subscribe([topic]);
      await pollUntilAssigned(first, (p) => p.length === 1);
      await second.subscribe([topic]);
      // The first member's next heartbeat is refused; the library would rejoin and fence the
      // second one back, for ever. poll() reports it instead.
      await assert.rejects(
        async () => {
          for (;;) await first.poll({ timeoutMs: 200 });
        },
        (error: Error & { code?: string }) => {
          assert.equal(error.code, 'KAFKA_FENCED');
          assert.match(error.message, /group instance id "instance-x".*FENCED_INSTANCE_ID.*give each instance its own id/);
          return true;
        },
      );
      await pollUntilAssigned(second, (p) => p.length === 1);
      assert.equal(second.assignment().length, 1, 'the member that took the id keeps the partition');
    } finally {
      await Promise.all([first.close(), second.close()]);
      await admin.deleteTopics([topic]).catch(() => undefined);
      await admin.close();
    }
  });
});
