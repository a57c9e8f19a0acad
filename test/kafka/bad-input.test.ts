/** Bad addresses and bad records give typed errors within a bound, never a hang. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { freePort } from '../../src/kafka/broker/local-broker.ts';
import { createKafkaClient } from '../../src/kafka/index.ts';

describe('Kafka client facing an unreachable broker', () => {
  it('fails a send with KAFKA_UNREACHABLE naming the fix, within the configured bound', async () => {
    const port = await freePort(); // nothing listens there
    const client = createKafkaClient({ bootstrapServers: [`127.0.0.1:${port}`], retries: 0, requestTimeoutMs: 2000 });
    const started = Date.now();
    await assert.rejects(client.producer().send([{ topic: 't', value: Buffer.from('x') }]), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'KAFKA_UNREACHABLE');
      assert.match(error.message, /KAFKA_BOOTSTRAP_SERVERS/);
      return true;
    });
    assert.ok(Date.now() - started < 15_000, 'bounded');
    await client.close();
  });

  it('fails subscribe and admin calls with KAFKA_UNREACHABLE too, within the bound', async () => {
    const port = await freePort();
    const client = createKafkaClient({ bootstrapServers: [`127.0.0.1:${port}`], retries: 1, requestTimeoutMs: 2000 });
    const started = Date.now();
    // subscribe() waits out an outage for ever by default (a pipeline started before its broker); a bound makes it give up.
    await assert.rejects(client.consumer({ groupId: 'g', subscribeTimeoutMs: 3000 }).subscribe(['t']), { code: 'KAFKA_UNREACHABLE' });
    await assert.rejects(client.admin().listTopics(), { code: 'KAFKA_UNREACHABLE' });
    assert.ok(Date.now() - started < 20_000, 'bounded');
    await client.close();
  });

  it('rejects a malformed bootstrap address before connecting', () => {
    assert.throws(() => createKafkaClient({ bootstrapServers: ['localhost'] }), { code: 'INVALID_CONFIG', message: /host:port/ });
    assert.throws(() => createKafkaClient({ bootstrapServers: 'memory' }), { code: 'INVALID_CONFIG', message: /createMemoryClient/ });
  });
});
