/**
 * The Kafka contract: what inflow relies on from a Kafka client, run against the real broker
 * and against the in-process log (./contract.test.ts). Any implementation of
 * src/kafka/types.ts must pass it.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { ConsumedRecord, KafkaClient, KafkaConsumer, TopicPartition } from '../../src/kafka/index.ts';
import { partitionForKey } from '../../src/kafka/index.ts';

/** Polls until `count` records arrived (or fails after `timeoutMs`). */
export async function pollCount(consumer: KafkaConsumer, count: number, timeoutMs = 20_000): Promise<ConsumedRecord[]> {
  const out: ConsumedRecord[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < count) {
    const left = deadline - Date.now();
    if (left <= 0) assert.fail(`expected ${count} records within ${timeoutMs} ms, got ${out.length}`);
    out.push(...(await consumer.poll({ timeoutMs: Math.min(left, 1000) })));
  }
  return out;
}

/** Polls until the consumer's assignment satisfies `predicate` (rebalances are asynchronous on a real broker). */
export async function pollUntilAssigned(
  consumer: KafkaConsumer,
  predicate: (assigned: TopicPartition[]) => boolean,
  timeoutMs = 30_000,
): Promise<ConsumedRecord[]> {
  const seen: ConsumedRecord[] = [];
  const deadline = Date.now() + timeoutMs;
  while (!predicate(consumer.assignment())) {
    if (Date.now() > deadline) assert.fail(`assignment not reached within ${timeoutMs} ms: ${JSON.stringify(consumer.assignment())}`);
    seen.push(...(await consumer.poll({ timeoutMs: 200 })));
  }
  return seen;
}

/** Retries `check` until it passes, for state a broker makes visible asynchronously. */
export async function eventually(check: () => Promise<void>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

const text = (b: Buffer | null): string | null => (b === null ? null : b.toString());

/** Registers the contract suite for one implementation. */
export function kafkaContract(name: string, makeClient: () => KafkaClient | Promise<KafkaClient>): void {
  describe(`Kafka contract on ${name}`, () => {
    let client: KafkaClient;
    const topic = (label: string): string => `contract-${label}-${randomUUID().slice(0, 8)}`;

    before(async () => {
      client = await makeClient();
    });
    after(async () => {
      await client?.close();
    });

    it('produces and consumes keys, values and headers in partition order, partitioned like the Java client', async () => {
      const t = topic('order');
      const admin = client.admin();
      await admin.createTopics([{ topic: t, partitions: 3 }]);
      const producer = client.producer();
      const records = Array.from({ length: 30 }, (_, i) => ({
        topic: t,
        key: Buffer.from(`key-${i % 5}`),
        value: Buffer.from(`value-${i}`),
        headers: [['trace', Buffer.from(`t${i}`)] as const, ['trace', Buffer.from('dup')] as const],
      }));
      const meta = await producer.send(records);
      assert.equal(meta.length, 30);
      for (const [i, m] of meta.entries()) assert.equal(m.partition, partitionForKey(Buffer.from(`key-${i % 5}`), 3));

      const consumer = client.consumer({ groupId: `g-${randomUUID()}`, autoOffsetReset: 'earliest' });
      await consumer.subscribe([t]);
      const got = await pollCount(consumer, 30);
      for (let p = 0; p < 3; p++) {
        const values = got.filter((r) => r.partition === p).map((r) => text(r.value));
        const expected = records.filter((_, i) => meta[i]?.partition === p).map((r) => r.value.toString());
        assert.deepEqual(values, expected, `partition ${p} keeps produce order`);
      }
      const first = got.find((r) => text(r.value) === 'value-0');
      assert.equal(text(first?.key ?? null), 'key-0');
      assert.deepEqual(
        first?.headers.map(([k, v]) => [k, v.toString()]),
        [
          ['trace', 't0'],
          ['trace', 'dup'],
        ],
      );
      assert.ok(typeof first?.timestamp === 'number' && first.timestamp > 1_600_000_000_000);
      await consumer.close();
    });

    it('starts at the committed offset, and at the end for a new group with autoOffsetReset latest', async () => {
      const t = topic('commit');
      await client.admin().createTopics([{ topic: t, partitions: 1 }]);
      const producer = client.producer();
      await producer.send([0, 1, 2, 3].map((i) => ({ topic: t, value: Buffer.from(`v${i}`) })));
      const groupId = `g-${randomUUID()}`;
      const a = client.consumer({ groupId, autoOffsetReset: 'earliest' });
      await a.subscribe([t]);
      const got = await pollCount(a, 4);
      await a.commit([{ topic: t, partition: 0, offset: (got[1]?.offset ?? 0n) + 1n }]);
      assert.deepEqual(await a.committed([{ topic: t, partition: 0 }]), [{ topic: t, partition: 0, offset: 2n }]);
      await a.close();

      const b = client.consumer({ groupId, autoOffsetReset: 'earliest' });
      await b.subscribe([t]);
      assert.deepEqual(
        (await pollCount(b, 2)).map((r) => text(r.value)),
        ['v2', 'v3'],
      );
      await b.close();

      const late = client.consumer({ groupId: `g-${randomUUID()}`, autoOffsetReset: 'latest' });
      await late.subscribe([t]);
      assert.deepEqual(await late.poll({ timeoutMs: 300 }), []);
      await producer.send([{ topic: t, value: Buffer.from('v4') }]);
      assert.deepEqual(
        (await pollCount(late, 1)).map((r) => text(r.value)),
        ['v4'],
      );
      await late.close();
    });

    it('splits partitions between two members of a group and gives all to the one left when the other leaves', async () => {
      const t = topic('group');
      await client.admin().createTopics([{ topic: t, partitions: 4 }]);
      const groupId = `g-${randomUUID()}`;
      const events: string[] = [];
      const a = client.consumer({ groupId, autoOffsetReset: 'earliest' });
      await a.subscribe([t], {
        onAssigned: (ps) => void events.push(`a+${ps.length}`),
        onRevoked: (ps) => void events.push(`a-${ps.length}`),
      });
      await pollUntilAssigned(a, (ps) => ps.length === 4);
      const b = client.consumer({ groupId, autoOffsetReset: 'earliest' });
      const joined = b.subscribe([t]);
      // a must keep polling for the group to rebalance (on a broker it rejoins from its heartbeat).
      await Promise.all([joined, pollUntilAssigned(a, (ps) => ps.length === 2)]);
      await pollUntilAssigned(b, (ps) => ps.length === 2);
      const owned = [...a.assignment(), ...b.assignment()].map((p) => p.partition).sort();
      assert.deepEqual(owned, [0, 1, 2, 3], 'every partition has exactly one owner');
      assert.ok(
        events.some((e) => e.startsWith('a-')),
        'a was told what it lost',
      );

      await b.close();
      await pollUntilAssigned(a, (ps) => ps.length === 4);
      await a.close();
    });

    it('shows a committed transaction to read_committed readers and never an aborted one', async () => {
      const t = topic('txn');
      await client.admin().createTopics([{ topic: t, partitions: 1 }]);
      const producer = client.producer({ transactionalId: `tx-${randomUUID()}` });
      const aborted = await producer.beginTransaction();
      await aborted.send([
        { topic: t, value: Buffer.from('aborted-1') },
        { topic: t, value: Buffer.from('aborted-2') },
      ]);
      await aborted.abort();
      const committed = await producer.beginTransaction();
      await committed.send([{ topic: t, value: Buffer.from('committed-1') }]);
      await committed.commit();

      const reader = client.consumer({ groupId: `g-${randomUUID()}`, autoOffsetReset: 'earliest', isolationLevel: 'read_committed' });
      await reader.subscribe([t]);
      const got = await pollCount(reader, 1);
      assert.deepEqual(
        got.map((r) => text(r.value)),
        ['committed-1'],
      );
      assert.deepEqual(await reader.poll({ timeoutMs: 300 }), [], 'nothing else is visible');
      await reader.close();
      await producer.close();
    });

    it('hides every aborted transaction of a producer that commits between them, and the open one of a fenced instance', async () => {
      const t = topic('aborts');
      await client.admin().createTopics([{ topic: t, partitions: 1 }]);
      const transactionalId = `tx-${randomUUID()}`;
      const first = client.producer({ transactionalId });
      for (const [value, commit] of [
        ['c1', true],
        ['a1', false],
        ['c2', true],
        ['a2', false],
        ['c3', true],
      ] as const) {
        const txn = await first.beginTransaction();
        await txn.send([{ topic: t, value: Buffer.from(value) }]);
        await (commit ? txn.commit() : txn.abort());
      }
      // A killed instance: its transaction stays open until the next instance takes the id.
      const zombie = await first.beginTransaction();
      await zombie.send([{ topic: t, value: Buffer.from('a3') }]);
      const next = client.producer({ transactionalId });
      const txn = await next.beginTransaction();
      await txn.send([{ topic: t, value: Buffer.from('c4') }]);
      await txn.commit();

      const reader = client.consumer({ groupId: `g-${randomUUID()}`, autoOffsetReset: 'earliest', isolationLevel: 'read_committed' });
      await reader.subscribe([t]);
      assert.deepEqual(
        (await pollCount(reader, 4)).map((r) => text(r.value)),
        ['c1', 'c2', 'c3', 'c4'],
      );
      assert.deepEqual(await reader.poll({ timeoutMs: 300 }), [], 'nothing else is visible');
      await Promise.all([reader.close(), next.close(), first.close().catch(() => undefined)]);
    });

    it('keeps a committed transaction between an aborted one and an abort marker that has no data in the partition', async () => {
      // An aborted transaction that added the partition but wrote nothing there (its produce
      // failed; or the instance was killed between AddPartitionsToTxn and the produce) leaves an
      // abort marker with no aborted-transaction entry. @platformatic/kafka's own filter then
      // dropped everything of the producer from the previous aborted transaction up to that
      // marker, committed data included (1 664 predictions lost in a crash test).
      const t = topic('dataless-abort');
      await client.admin().createTopics([{ topic: t, partitions: 1 }]);
      const transactionalId = `tx-${randomUUID()}`;
      const producer = client.producer({ transactionalId });
      for (const [value, commit] of [
        ['c1', true],
        ['a1', false],
        ['c2', true],
      ] as const) {
        const txn = await producer.beginTransaction();
        await txn.send([{ topic: t, value: Buffer.from(value) }]);
        await (commit ? txn.commit() : txn.abort());
      }
      // The broker refuses the 2 MiB record after the partition joined the transaction; the
      // next instance of the transactional id ends that transaction (abort marker, no data).
      const failed = await producer.beginTransaction();
      await assert.rejects(failed.send([{ topic: t, value: Buffer.alloc(2 * 1024 * 1024) }]));
      const next = client.producer({ transactionalId });
      const txn = await next.beginTransaction();
      await txn.send([{ topic: t, value: Buffer.from('c3') }]);
      await txn.commit();
      await producer.close().catch(() => undefined);
      const reader = client.consumer({ groupId: `g-${randomUUID()}`, autoOffsetReset: 'earliest', isolationLevel: 'read_committed' });
      await reader.subscribe([t]);
      assert.deepEqual(
        (await pollCount(reader, 3)).map((r) => text(r.value)),
        ['c1', 'c2', 'c3'],
      );
      await Promise.all([reader.close(), next.close()]);
    });

    it('reads committed offsets stable: a read_committed member waits while a transaction holds offsets of the partition', async () => {
      const input = topic('stable-in');
      await client.admin().createTopics([{ topic: input, partitions: 1 }]);
      await client.producer().send([1, 2, 3].map((i) => ({ topic: input, value: Buffer.from(`${i}`) })));
      const groupId = `g-${randomUUID()}`;
      const consumer = client.consumer({ groupId, autoOffsetReset: 'earliest', isolationLevel: 'read_committed' });
      await consumer.subscribe([input]);
      await pollCount(consumer, 3);
      const producer = client.producer({ transactionalId: `tx-${randomUUID()}` });
      const txn = await producer.beginTransaction();
      await txn.sendOffsets(consumer, [{ topic: input, partition: 0, offset: 3n }]);

      const read = consumer.committed([{ topic: input, partition: 0 }]);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const first = await Promise.race([read, new Promise((resolve) => (timer = setTimeout(resolve, 500, 'still waiting')))]);
      clearTimeout(timer);
      assert.equal(first, 'still waiting', 'committed() does not answer with the offsets from before the open transaction');
      await txn.commit();
      assert.deepEqual(await read, [{ topic: input, partition: 0, offset: 3n }]);
      await Promise.all([consumer.close(), producer.close()]);
    });

    it('hides an open transaction from read_committed readers until it commits', async () => {
      const t = topic('open');
      await client.admin().createTopics([{ topic: t, partitions: 1 }]);
      const producer = client.producer({ transactionalId: `tx-${randomUUID()}` });
      const txn = await producer.beginTransaction();
      await txn.send([{ topic: t, value: Buffer.from('pending') }]);
      const reader = client.consumer({ groupId: `g-${randomUUID()}`, autoOffsetReset: 'earliest', isolationLevel: 'read_committed' });
      await reader.subscribe([t]);
      assert.deepEqual(await reader.poll({ timeoutMs: 500 }), []);
      await txn.commit();
      assert.deepEqual(
        (await pollCount(reader, 1)).map((r) => text(r.value)),
        ['pending'],
      );
      await reader.close();
      await producer.close();
    });

    it('commits consumed offsets with the transaction (consume → produce → sendOffsets) and not on abort', async () => {
      const input = topic('eos-in');
      const output = topic('eos-out');
      await client.admin().createTopics([
        { topic: input, partitions: 1 },
        { topic: output, partitions: 1 },
      ]);
      await client.producer().send([1, 2, 3, 4].map((i) => ({ topic: input, key: Buffer.from(`k${i}`), value: Buffer.from(`${i}`) })));
      const groupId = `g-${randomUUID()}`;
      const consumer = client.consumer({ groupId, autoOffsetReset: 'earliest', isolationLevel: 'read_committed' });
      await consumer.subscribe([input]);
      const batch = await pollCount(consumer, 4);
      const producer = client.producer({ transactionalId: `tx-${randomUUID()}` });
      const next = (batch.at(-1)?.offset ?? 0n) + 1n;

      const aborted = await producer.beginTransaction();
      await aborted.send(batch.map((r) => ({ topic: output, key: r.key, value: Buffer.from(`x${text(r.value)}`) })));
      await aborted.sendOffsets(consumer, [{ topic: input, partition: 0, offset: next }]);
      await aborted.abort();
      assert.deepEqual(await consumer.committed([{ topic: input, partition: 0 }]), [{ topic: input, partition: 0, offset: -1n }]);

      const txn = await producer.beginTransaction();
      await txn.send(batch.map((r) => ({ topic: output, key: r.key, value: Buffer.from(`${Number(text(r.value)) * 10}`) })));
      await txn.sendOffsets(consumer, [{ topic: input, partition: 0, offset: next }]);
      await txn.commit();
      // The coordinator materialises transactional offsets once the commit markers are written.
      await eventually(async () =>
        assert.deepEqual(await consumer.committed([{ topic: input, partition: 0 }]), [{ topic: input, partition: 0, offset: next }]),
      );

      const reader = client.consumer({ groupId: `g-${randomUUID()}`, autoOffsetReset: 'earliest', isolationLevel: 'read_committed' });
      await reader.subscribe([output]);
      assert.deepEqual(
        (await pollCount(reader, 4)).map((r) => text(r.value)),
        ['10', '20', '30', '40'],
      );
      await Promise.all([reader.close(), consumer.close(), producer.close()]);
    });

    it('keeps every send and every offset of concurrent calls inside one transaction', async () => {
      const input = topic('conc-in');
      const output = topic('conc-out');
      await client.admin().createTopics([
        { topic: input, partitions: 3 },
        { topic: output, partitions: 3 },
      ]);
      await client
        .producer()
        .send([0, 1, 2].flatMap((p) => [1, 2].map((i) => ({ topic: input, partition: p, value: Buffer.from(`${p}-${i}`) }))));
      const groupId = `g-${randomUUID()}`;
      const consumer = client.consumer({ groupId, autoOffsetReset: 'earliest', isolationLevel: 'read_committed' });
      await consumer.subscribe([input]);
      await pollCount(consumer, 6);
      const producer = client.producer({ transactionalId: `tx-${randomUUID()}` });
      const txn = await producer.beginTransaction();
      await Promise.all([0, 1, 2].map((p) => txn.send([{ topic: output, partition: p, value: Buffer.from(`out-${p}`) }])));
      await Promise.all([0, 1, 2].map((p) => txn.sendOffsets(consumer, [{ topic: input, partition: p, offset: 2n }])));
      await txn.commit();
      const all = [0, 1, 2].map((partition) => ({ topic: input, partition }));
      await eventually(async () =>
        assert.deepEqual(
          (await consumer.committed(all)).map((o) => o.offset),
          [2n, 2n, 2n],
        ),
      );
      const reader = client.consumer({ groupId: `g-${randomUUID()}`, autoOffsetReset: 'earliest', isolationLevel: 'read_committed' });
      await reader.subscribe([output]);
      assert.deepEqual((await pollCount(reader, 3)).map((r) => text(r.value)).sort(), ['out-0', 'out-1', 'out-2']);
      await Promise.all([reader.close(), consumer.close(), producer.close()]);
    });

    it('fences a producer when a newer one takes its transactional id', async () => {
      const t = topic('fence');
      await client.admin().createTopics([{ topic: t, partitions: 1 }]);
      const id = `tx-${randomUUID()}`;
      const old = client.producer({ transactionalId: id });
      const txn = await old.beginTransaction();
      await txn.send([{ topic: t, value: Buffer.from('zombie') }]);
      const fresh = client.producer({ transactionalId: id });
      const ok = await fresh.beginTransaction();
      await ok.send([{ topic: t, value: Buffer.from('live') }]);
      await ok.commit();
      await assert.rejects(
        async () => {
          await txn.send([{ topic: t, value: Buffer.from('zombie-2') }]);
          await txn.commit();
        },
        { code: 'KAFKA_FENCED' },
      );
      const reader = client.consumer({ groupId: `g-${randomUUID()}`, autoOffsetReset: 'earliest', isolationLevel: 'read_committed' });
      await reader.subscribe([t]);
      assert.deepEqual(
        (await pollCount(reader, 1)).map((r) => text(r.value)),
        ['live'],
      );
      assert.deepEqual(await reader.poll({ timeoutMs: 300 }), []);
      await Promise.all([reader.close(), old.close(), fresh.close()]);
    });

    it('pauses and resumes one partition while the others keep flowing', async () => {
      const t = topic('pause');
      await client.admin().createTopics([{ topic: t, partitions: 2 }]);
      const consumer = client.consumer({ groupId: `g-${randomUUID()}`, autoOffsetReset: 'earliest' });
      await consumer.subscribe([t]);
      await pollUntilAssigned(consumer, (ps) => ps.length === 2);
      consumer.pause([{ topic: t, partition: 0 }]);
      assert.deepEqual(consumer.paused(), [{ topic: t, partition: 0 }]);
      const producer = client.producer();
      await producer.send([
        { topic: t, partition: 0, value: Buffer.from('p0-a') },
        { topic: t, partition: 1, value: Buffer.from('p1-a') },
        { topic: t, partition: 0, value: Buffer.from('p0-b') },
      ]);
      const whilePaused = await pollCount(consumer, 1);
      assert.deepEqual(
        whilePaused.map((r) => text(r.value)),
        ['p1-a'],
      );
      assert.deepEqual(await consumer.poll({ timeoutMs: 300 }), [], 'nothing from the paused partition');
      consumer.resume([{ topic: t, partition: 0 }]);
      assert.deepEqual(
        (await pollCount(consumer, 2)).map((r) => text(r.value)),
        ['p0-a', 'p0-b'],
      );
      await consumer.close();
    });

    it('seeks back to replay a partition', async () => {
      const t = topic('seek');
      await client.admin().createTopics([{ topic: t, partitions: 1 }]);
      await client.producer().send(['a', 'b', 'c'].map((v) => ({ topic: t, value: Buffer.from(v) })));
      const consumer = client.consumer({ groupId: `g-${randomUUID()}`, autoOffsetReset: 'earliest' });
      await consumer.subscribe([t]);
      await pollCount(consumer, 3);
      consumer.seek({ topic: t, partition: 0, offset: 1n });
      assert.deepEqual(
        (await pollCount(consumer, 2)).map((r) => text(r.value)),
        ['b', 'c'],
      );
      await consumer.close();
    });

    it('creates, lists, describes and deletes topics, and reports offsets and group lag', async () => {
      const admin = client.admin();
      const t = topic('admin');
      await admin.createTopics([{ topic: t, partitions: 2, configs: { 'cleanup.policy': 'compact' } }]);
      await admin.createTopics([{ topic: t, partitions: 2 }]); // idempotent by default
      await assert.rejects(admin.createTopics([{ topic: t, partitions: 2 }], { ifNotExists: false }), { code: 'ALREADY_EXISTS' });
      assert.ok((await admin.listTopics()).includes(t));
      assert.deepEqual(await admin.describeTopics([t]), [{ topic: t, partitions: 2 }]);

      await client.producer().send([0, 0, 1].map((p) => ({ topic: t, partition: p, key: Buffer.from('k'), value: Buffer.from('v') })));
      assert.deepEqual(
        (await admin.listOffsets(t, 'latest')).map((o) => o.offset),
        [2n, 1n],
      );
      assert.deepEqual(
        (await admin.listOffsets(t, 'earliest')).map((o) => o.offset),
        [0n, 0n],
      );
      const groupId = `g-${randomUUID()}`;
      const consumer = client.consumer({ groupId, autoOffsetReset: 'earliest' });
      await consumer.subscribe([t]);
      await pollCount(consumer, 3);
      await consumer.commit([{ topic: t, partition: 0, offset: 1n }]);
      const lag = await admin.groupLag(groupId, [t]);
      assert.deepEqual(
        lag.map((l) => [l.partition, l.committed, l.end, l.lag]),
        [
          [0, 1n, 2n, 1n],
          [1, -1n, 1n, 1n],
        ],
      );
      await consumer.close();

      await admin.deleteTopics([t]);
      // Deletion is asynchronous in Kafka (the controller removes the topic, then each broker's
      // metadata follows): an immediate listTopics may still list it. Wait on the condition.
      await eventually(async () => assert.ok(!(await admin.listTopics()).includes(t), `${t} still listed after deleteTopics`));
    });

    it('rejects a record for a missing topic with a clear, typed error', async () => {
      const missing = topic('missing');
      await assert.rejects(client.producer().send([{ topic: missing, value: Buffer.from('x') }]), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'KAFKA_TOPIC_NOT_FOUND');
        assert.match(error.message, new RegExp(missing));
        return true;
      });
    });

    it('lists a topic as soon as createTopics resolves', async () => {
      const t = topic('listed');
      const admin = client.admin();
      await admin.createTopics([{ topic: t, partitions: 2 }]);
      assert.ok((await admin.listTopics()).includes(t));
    });

    it('sends many large records in one call (more than the broker takes in one message) in order', async () => {
      const t = topic('bulk');
      await client.admin().createTopics([{ topic: t, partitions: 1 }]);
      const records = Array.from({ length: 40 }, (_, i) => ({ topic: t, key: Buffer.from('k'), value: Buffer.alloc(100_000, i) }));
      const meta = await client.producer().send(records);
      assert.deepEqual(
        meta.map((m) => m.offset),
        records.map((_, i) => BigInt(i)),
      );
      const consumer = client.consumer({ groupId: `g-${randomUUID()}`, autoOffsetReset: 'earliest' });
      await consumer.subscribe([t]);
      const got = await pollCount(consumer, 40);
      assert.deepEqual(
        got.map((r) => r.value?.[0]),
        records.map((_, i) => i),
      );
      await consumer.close();
    });

    it("after a seek, starts a partition taken over in a rebalance at the group's committed offset", async () => {
      const t = topic('seek-takeover');
      await client.admin().createTopics([{ topic: t, partitions: 2 }]);
      await client.producer().send(Array.from({ length: 20 }, (_, i) => ({ topic: t, partition: i % 2, value: Buffer.from(`${i}`) })));
      const groupId = `g-${randomUUID()}`;
      const a = client.consumer({ groupId, autoOffsetReset: 'earliest', sessionTimeoutMs: 6000 });
      await a.subscribe([t]);
      await pollUntilAssigned(a, (ps) => ps.length === 2);
      const b = client.consumer({ groupId, autoOffsetReset: 'earliest', sessionTimeoutMs: 6000 });
      await Promise.all([b.subscribe([t]), pollUntilAssigned(a, (ps) => ps.length === 1)]);
      await pollUntilAssigned(b, (ps) => ps.length === 1);
      const mine = (a.assignment()[0] as TopicPartition).partition;
      const theirs = 1 - mine;
      await b.commit([{ topic: t, partition: theirs, offset: 5n }]);
      a.seek({ topic: t, partition: mine, offset: 0n });
      await b.close();
      const seen = await pollUntilAssigned(a, (ps) => ps.length === 2);
      const rest = await eventually(async () => {
        seen.push(...(await a.poll({ timeoutMs: 200 })));
        assert.ok(
          seen.some((r) => r.partition === theirs),
          'the partition taken over was never delivered',
        );
      }, 20_000).then(() => seen.filter((r) => r.partition === theirs));
      assert.equal(rest[0]?.offset, 5n, 'the taken-over partition starts at the committed offset');
      await a.close();
    });

    it('re-delivers nothing a member already returned from a partition a rebalance left it', async () => {
      const t = topic('keep');
      await client.admin().createTopics([{ topic: t, partitions: 2 }]);
      await client.producer().send(Array.from({ length: 20 }, (_, i) => ({ topic: t, partition: i % 2, value: Buffer.from(`${i}`) })));
      const groupId = `g-${randomUUID()}`;
      const revoked = new Set<number>();
      const a = client.consumer({ groupId, autoOffsetReset: 'earliest', sessionTimeoutMs: 6000 });
      await a.subscribe([t], { onRevoked: (ps) => ps.forEach((p) => revoked.add(p.partition)) });
      const got = await pollCount(a, 20);
      await a.commit([0, 1].map((partition) => ({ topic: t, partition, offset: 2n })));
      const b = client.consumer({ groupId, autoOffsetReset: 'earliest', sessionTimeoutMs: 6000 });
      await Promise.all([b.subscribe([t]), pollUntilAssigned(a, (ps) => ps.length === 1).then((r) => got.push(...r))]);
      const kept = (a.assignment()[0] as TopicPartition).partition;
      await b.close();
      got.push(...(await pollUntilAssigned(a, (ps) => ps.length === 2)));
      // Give a re-delivery the time to show up: a few more rounds.
      for (let i = 0; i < 10; i++) got.push(...(await a.poll({ timeoutMs: 200 })));
      assert.ok(!revoked.has(kept), 'the partition a kept was never revoked from it');
      const keys = got.filter((r) => r.partition === kept).map((r) => r.offset);
      assert.deepEqual(
        keys,
        Array.from({ length: 10 }, (_, i) => BigInt(i)),
        `partition ${kept} (kept) was returned as ${keys.join(', ')}`,
      );
      await a.close();
    });

    it('rejects an oversize record with the size and the limit', async () => {
      const t = topic('big');
      await client.admin().createTopics([{ topic: t, partitions: 1 }]);
      const big = Buffer.alloc(2 * 1024 * 1024, 1);
      await assert.rejects(client.producer().send([{ topic: t, value: big }]), { code: 'KAFKA_RECORD_TOO_LARGE' });
    });
  });
}
