import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { createKafkaClient, createMemoryClient } from '../../src/kafka/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import { restoreContract } from './restore-contract.ts';

restoreContract('the in-process log', () => createMemoryClient());

describe('restore consumer fetch sizing options', () => {
  it('rejects a fetch or buffer size that is not a positive whole number of bytes, naming the option', async () => {
    const client = createKafkaClient({ bootstrapServers: ['127.0.0.1:1'], clientId: 'inflow-restore-options' });
    try {
      assert.throws(() => client.restoreConsumer({ maxFetchBytes: 0 }), { code: 'INVALID_ARGUMENT', message: /maxFetchBytes is 0/ });
      assert.throws(() => client.restoreConsumer({ maxBufferBytes: 1.5 }), { code: 'INVALID_ARGUMENT', message: /maxBufferBytes is 1.5/ });
    } finally {
      await client.close();
    }
  });
});

const bootstrap = brokerOrSkip();
if (bootstrap) {
  restoreContract(`Apache Kafka at ${bootstrap.join(',')}`, () =>
    createKafkaClient({ bootstrapServers: bootstrap, clientId: 'inflow-restore' }),
  );

  describe(`restore consumer memory on Apache Kafka at ${bootstrap.join(',')}`, () => {
    it('decodes no more records per fetch than its buffer size allows, however well the changelog compresses', async () => {
      const client = createKafkaClient({ bootstrapServers: bootstrap, clientId: 'inflow-restore-bounded' });
      const topic = `restore-bounded-${randomUUID().slice(0, 8)}`;
      try {
        await client.admin().createTopics([{ topic, partitions: 1, configs: { 'cleanup.policy': 'compact' } }]);
        // 50 000 records in batches of 1 000 that lz4 shrinks ~60× (one repeated value): the
        // whole changelog is < 1 MiB on the wire, ~30 MiB of heap decoded.
        const producer = client.producer({ compression: 'lz4' });
        const value = Buffer.alloc(100, 7);
        const total = 50_000;
        for (let start = 0; start < total; start += 1_000) {
          await producer.send(
            Array.from({ length: 1_000 }, (_, i) => {
              const key = Buffer.alloc(8);
              key.writeBigUInt64BE(BigInt(start + i));
              return { topic, partition: 0, key, value };
            }),
          );
        }
        await producer.close();
        // 256 KiB decoded ≈ 420 records of this size: a fetch holds whole batches, so at most a
        // few batches of 1 000 come back at once (a fetch sized in wire bytes alone took all 50 000).
        const restore = client.restoreConsumer({ maxBufferBytes: 256 * 1024 });
        restore.assign([{ topic, partition: 0, offset: 0n }]);
        const [end] = await restore.endOffsets([{ topic, partition: 0 }]);
        assert.equal(end?.offset, BigInt(total));
        const polls: number[] = [];
        let next = 0n;
        while (restore.position({ topic, partition: 0 }) < BigInt(total)) {
          const records = await restore.poll({ maxRecords: Number.MAX_SAFE_INTEGER, timeoutMs: 2_000 });
          polls.push(records.length);
          for (const r of records) {
            assert.equal(r.offset, next++, 'records come in offset order, none skipped');
          }
        }
        await restore.close();
        assert.equal(next, BigInt(total));
        assert.ok(Math.max(...polls) <= 5_000, `a poll handed out ${Math.max(...polls)} records at once (polls: ${polls.join(',')})`);
      } finally {
        await client
          .admin()
          .deleteTopics([topic])
          .catch(() => undefined);
        await client.close();
      }
    });
  });
}
