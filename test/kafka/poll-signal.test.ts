/**
 * poll() leaves nothing on its caller's signal: the streams runner polls with one long-lived
 * signal (AbortSignal.any of its stop signal), and a listener left behind per empty wait kept
 * every such signal and its timer alive for good (issue 15 fault 8: the soak's pipeline heap grew
 * +49 MB/h). Both clients.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { describe, it } from 'node:test';
import { createKafkaClient, createMemoryClient, type KafkaClient } from '../../src/kafka/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import { pollUntilAssigned } from './contract.ts';

function suite(name: string, makeClient: () => KafkaClient): void {
  describe(`poll's abort listener on ${name}`, () => {
    it("removes its listener from the caller's signal after every wait", async () => {
      const client = makeClient();
      const topic = `poll-signal-${randomUUID().slice(0, 8)}`;
      const admin = client.admin();
      const consumer = client.consumer({ groupId: `g-${randomUUID()}`, autoOffsetReset: 'earliest' });
      const stop = new AbortController();
      try {
        await admin.createTopics([{ topic, partitions: 1 }]);
        await consumer.subscribe([topic]);
        await pollUntilAssigned(consumer, (a) => a.length === 1);
        for (let i = 0; i < 5; i++) assert.deepEqual(await consumer.poll({ timeoutMs: 30, signal: stop.signal }), []);
        assert.equal(getEventListeners(stop.signal, 'abort').length, 0, 'abort listeners left on the signal');
      } finally {
        await consumer.close();
        await admin.close();
        await client.close();
      }
    });
  });
}

suite('the in-process log', () => createMemoryClient());
const bootstrap = brokerOrSkip();
if (bootstrap)
  suite(`Apache Kafka at ${bootstrap.join(',')}`, () => createKafkaClient({ bootstrapServers: bootstrap, clientId: 'inflow-poll-signal' }));
