/**
 * Per-partition pause on both Kafka clients: a paused partition that receives more records than
 * the consumer buffers must not stall the partitions that flow, and on resume it delivers every
 * record once, in order.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { createKafkaClient, createMemoryClient, type KafkaClient } from '../../src/kafka/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import { pollCount, pollUntilAssigned } from './contract.ts';

function pauseSuite(name: string, makeClient: () => KafkaClient): void {
  describe(`per-partition pause on ${name}`, () => {
    it('keeps the other partition flowing while a paused one receives more than the buffer holds, then delivers it once, in order', async () => {
      const client = makeClient();
      const topic = `pause-${randomUUID().slice(0, 8)}`;
      const admin = client.admin();
      const consumer = client.consumer({ groupId: `g-${randomUUID()}`, autoOffsetReset: 'earliest', maxBufferedRecords: 50 });
      const producer = client.producer();
      try {
        await admin.createTopics([{ topic, partitions: 2 }]);
        await consumer.subscribe([topic]);
        await pollUntilAssigned(consumer, (a) => a.length === 2);
        consumer.pause([{ topic, partition: 0 }]);
        // Four times the buffer to the paused partition first, then the other partition's records.
        await producer.send(Array.from({ length: 200 }, (_, i) => ({ topic, partition: 0, key: null, value: Buffer.from(`p0-${i}`) })));
        await producer.send(Array.from({ length: 20 }, (_, i) => ({ topic, partition: 1, key: null, value: Buffer.from(`p1-${i}`) })));
        const flowing = await pollCount(consumer, 20);
        assert.deepEqual(
          flowing.map((r) => `${r.partition}:${r.value?.toString()}`),
          Array.from({ length: 20 }, (_, i) => `1:p1-${i}`),
        );
        consumer.resume([{ topic, partition: 0 }]);
        const resumed = await pollCount(consumer, 200);
        assert.deepEqual(
          resumed.map((r) => r.value?.toString()),
          Array.from({ length: 200 }, (_, i) => `p0-${i}`),
        );
        assert.deepEqual(await consumer.poll({ timeoutMs: 300 }), [], 'nothing delivered twice');
      } finally {
        await consumer.close();
        await producer.close();
        await admin.close();
        await client.close();
      }
    });
  });
}

pauseSuite('the in-process log', () => createMemoryClient());
const bootstrap = brokerOrSkip();
if (bootstrap)
  pauseSuite(`Apache Kafka at ${bootstrap.join(',')}`, () => createKafkaClient({ bootstrapServers: bootstrap, clientId: 'inflow-pause' }));
