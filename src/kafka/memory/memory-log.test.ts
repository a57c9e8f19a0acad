import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryClient } from './memory-client.ts';
import { MemoryLog } from './memory-log.ts';

const v = (s: string): Buffer => Buffer.from(s);

describe('the in-process log', () => {
  it('shows an open transaction to read_uncommitted readers at once (as Kafka does)', async () => {
    const client = createMemoryClient();
    await client.admin().createTopics([{ topic: 't' }]);
    const txn = await client.producer({ transactionalId: 'x' }).beginTransaction();
    await txn.send([{ topic: 't', value: v('pending') }]);
    const dirty = client.consumer({ groupId: 'g1', autoOffsetReset: 'earliest' });
    await dirty.subscribe(['t']);
    assert.deepEqual(
      (await dirty.poll({ timeoutMs: 0 })).map((r) => r.value?.toString()),
      ['pending'],
    );
  });

  it('writes a control marker per touched partition, so offsets have gaps like on a broker', async () => {
    const client = createMemoryClient();
    await client.admin().createTopics([{ topic: 't' }]);
    const producer = client.producer({ transactionalId: 'x' });
    for (const value of ['a', 'b']) {
      const txn = await producer.beginTransaction();
      await txn.send([{ topic: 't', value: v(value) }]);
      await txn.commit();
    }
    const reader = client.consumer({ groupId: 'g', autoOffsetReset: 'earliest', isolationLevel: 'read_committed' });
    await reader.subscribe(['t']);
    assert.deepEqual(
      (await reader.poll({ timeoutMs: 0 })).map((r) => r.offset),
      [0n, 2n],
    );
    assert.deepEqual(
      (await client.admin().listOffsets('t', 'latest')).map((o) => o.offset),
      [4n],
    );
  });

  it('refuses a commit from a member that lost the partition in a rebalance', async () => {
    const client = createMemoryClient();
    await client.admin().createTopics([{ topic: 't', partitions: 2 }]);
    const a = client.consumer({ groupId: 'g' });
    await a.subscribe(['t']);
    const before = a.assignment();
    await client.consumer({ groupId: 'g' }).subscribe(['t']);
    await a.poll({ timeoutMs: 0 }); // a picks up the new generation here, as in Kafka's poll()
    const lost = before.find((p) => !a.assignment().some((q) => q.partition === p.partition));
    assert.ok(lost, 'the second member took one partition from a');
    await assert.rejects(a.commit([{ ...lost, offset: 1n }]), { code: 'KAFKA_REBALANCE' });
  });

  it('aborts a transaction whose consumer lost its partitions before commit (KIP-447)', async () => {
    const client = createMemoryClient();
    await client.admin().createTopics([{ topic: 'in', partitions: 1 }, { topic: 'out' }]);
    const a = client.consumer({ groupId: 'g' });
    await a.subscribe(['in']);
    const txn = await client.producer({ transactionalId: 'x' }).beginTransaction();
    await txn.send([{ topic: 'out', value: v('result') }]);
    await txn.sendOffsets(a, [{ topic: 'in', partition: 0, offset: 1n }]);
    await a.close(); // its partition goes elsewhere
    await assert.rejects(txn.commit(), { code: 'KAFKA_REBALANCE' });
    const reader = client.consumer({ groupId: 'r', autoOffsetReset: 'earliest', isolationLevel: 'read_committed' });
    await reader.subscribe(['out']);
    assert.deepEqual(await reader.poll({ timeoutMs: 0 }), []);
  });

  it('appends nothing from a batch with one bad record', async () => {
    const log = new MemoryLog({ maxRecordBytes: 10 });
    log.createTopic({ topic: 't' }, false);
    assert.throws(
      () =>
        log.append([
          { topic: 't', value: v('ok') },
          { topic: 't', value: Buffer.alloc(11) },
        ]),
      {
        code: 'KAFKA_RECORD_TOO_LARGE',
        message: /11 bytes; the limit is 10 bytes/,
      },
    );
    assert.throws(
      () =>
        log.append([
          { topic: 't', value: v('ok') },
          { topic: 't', partition: 3, value: v('x') },
        ]),
      {
        code: 'INVALID_ARGUMENT',
        message: /partitions 0\.\.0, not 3/,
      },
    );
    assert.equal(log.partition('t', 0).endOffset, 0n);
  });

  it('validates topic names and partition counts', () => {
    const log = new MemoryLog();
    assert.throws(() => log.createTopic({ topic: 'bad name' }, false), { code: 'INVALID_ARGUMENT', message: /invalid topic name/ });
    assert.throws(() => log.createTopic({ topic: 't', partitions: 0 }, false), { code: 'INVALID_ARGUMENT', message: /positive integer/ });
  });

  it('wakes a waiting poll when a record arrives, and gives up at the timeout with an injected clock', async () => {
    let now = 0;
    const client = createMemoryClient({ now: () => now });
    await client.admin().createTopics([{ topic: 't' }]);
    const c = client.consumer({ groupId: 'g', autoOffsetReset: 'earliest' });
    await c.subscribe(['t']);
    const waiting = c.poll({ timeoutMs: 60_000 });
    await client.producer().send([{ topic: 't', value: v('x') }]);
    assert.equal((await waiting).length, 1);
    now = 1;
    const aborted = new AbortController();
    const pending = c.poll({ timeoutMs: 60_000, signal: aborted.signal });
    aborted.abort();
    assert.deepEqual(await pending, []);
  });

  it('rejects use after close with a clear error', async () => {
    const client = createMemoryClient();
    await client.admin().createTopics([{ topic: 't' }]);
    const c = client.consumer({ groupId: 'g' });
    await c.close();
    await assert.rejects(c.poll(), { code: 'FAILED_PRECONDITION', message: /closed/ });
    const p = client.producer();
    await p.close();
    await assert.rejects(p.send([]), { code: 'FAILED_PRECONDITION' });
  });
});
