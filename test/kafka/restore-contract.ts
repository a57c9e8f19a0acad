/**
 * The restore-consumer and deleteRecords part of the Kafka contract (src/kafka/types.ts
 * RestoreConsumer, KafkaAdmin.deleteRecords), run against the real broker and the in-process
 * log (./restore-consumer.test.ts). A state store's restore relies on exactly this: explicit
 * partitions from explicit offsets, no group, committed data only, up to an end offset.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { eventually } from './contract.ts';
import type { ConsumedRecord, KafkaClient, RestoreConsumer, TopicPartition } from '../../src/kafka/index.ts';

/** Polls until every assigned partition's position reached its end offset; fails after `timeoutMs`. */
export async function readToEnd(consumer: RestoreConsumer, ends: Map<string, bigint>, timeoutMs = 20_000): Promise<ConsumedRecord[]> {
  const out: ConsumedRecord[] = [];
  const deadline = Date.now() + timeoutMs;
  const behind = (): TopicPartition[] =>
    consumer.assignment().filter((p) => consumer.position(p) < (ends.get(`${p.topic}:${p.partition}`) ?? 0n));
  while (behind().length > 0) {
    if (Date.now() > deadline)
      assert.fail(`restore consumer still behind its end offsets after ${timeoutMs} ms: ${JSON.stringify(behind())}`);
    out.push(...(await consumer.poll({ timeoutMs: 500 })));
  }
  return out;
}

const text = (r: ConsumedRecord): string => `${r.partition}@${r.offset}:${r.key?.toString()}=${r.value?.toString() ?? 'null'}`;

/** Registers the restore-consumer contract for one implementation. */
export function restoreContract(name: string, makeClient: () => KafkaClient | Promise<KafkaClient>): void {
  describe(`Kafka restore consumer and deleteRecords on ${name}`, () => {
    let client: KafkaClient;
    const topic = (label: string): string => `restore-${label}-${randomUUID().slice(0, 8)}`;

    before(async () => {
      client = await makeClient();
    });
    after(async () => {
      await client?.close();
    });

    it('reads assigned partitions from the given offsets up to the end offsets, with committed transactions only', async () => {
      const t = topic('replay');
      await client.admin().createTopics([{ topic: t, partitions: 2, configs: { 'cleanup.policy': 'compact' } }]);
      const producer = client.producer({ transactionalId: `restore-${randomUUID()}` });
      const write = async (label: string, commit: boolean): Promise<void> => {
        const txn = await producer.beginTransaction();
        await txn.send(
          [0, 1].flatMap((partition) =>
            [0, 1, 2].map((i) => ({ topic: t, partition, key: Buffer.from(`k${i}`), value: Buffer.from(`${label}${i}`) })),
          ),
        );
        await (commit ? txn.commit() : txn.abort());
      };
      await write('a', true);
      await write('x', false);
      await write('b', true);
      // A tombstone, as a store's delete writes it.
      await client.producer().send([{ topic: t, partition: 1, key: Buffer.from('k0'), value: null }]);
      const restore = client.restoreConsumer();
      try {
        const partitions = [0, 1].map((partition) => ({ topic: t, partition }));
        const ends = new Map((await restore.endOffsets(partitions)).map((o) => [`${o.topic}:${o.partition}`, o.offset]));
        // Per partition: 3 + marker + 3 aborted + marker + 3 + marker (+ the tombstone on p1).
        assert.deepEqual([...ends.values()], [12n, 13n]);
        restore.assign([
          { topic: t, partition: 0, offset: 2n },
          { topic: t, partition: 1, offset: 0n },
        ]);
        assert.deepEqual(restore.assignment(), partitions);
        const got = await readToEnd(restore, ends);
        const byPartition = (p: number) => got.filter((r) => r.partition === p).map(text);
        assert.deepEqual(byPartition(0), ['0@2:k2=a2', '0@8:k0=b0', '0@9:k1=b1', '0@10:k2=b2']);
        assert.deepEqual(byPartition(1), ['1@0:k0=a0', '1@1:k1=a1', '1@2:k2=a2', '1@8:k0=b0', '1@9:k1=b1', '1@10:k2=b2', '1@12:k0=null']);
        assert.equal(restore.position({ topic: t, partition: 0 }), 12n, 'the position moved past the last commit marker');
        assert.deepEqual(await restore.poll({ timeoutMs: 200 }), [], 'nothing after the end');
      } finally {
        await restore.close();
        await producer.close();
      }
    });

    it('ends at the last stable offset under read_committed while a transaction is open, at the high watermark otherwise', async () => {
      const t = topic('lso');
      await client.admin().createTopics([{ topic: t, partitions: 1 }]);
      const p = { topic: t, partition: 0 };
      await client.producer().send([{ topic: t, key: Buffer.from('k'), value: Buffer.from('before') }]);
      const producer = client.producer({ transactionalId: `restore-${randomUUID()}` });
      const committed = client.restoreConsumer();
      const uncommitted = client.restoreConsumer({ isolationLevel: 'read_uncommitted' });
      try {
        const txn = await producer.beginTransaction();
        await txn.send([{ topic: t, key: Buffer.from('k'), value: Buffer.from('open') }]);
        assert.deepEqual(await committed.endOffsets([p]), [{ ...p, offset: 1n }]);
        assert.deepEqual(await uncommitted.endOffsets([p]), [{ ...p, offset: 2n }]);
        committed.assign([{ ...p, offset: 0n }]);
        assert.deepEqual((await readToEnd(committed, new Map([[`${t}:0`, 1n]]))).map(text), ['0@0:k=before']);
        assert.deepEqual(await committed.poll({ timeoutMs: 300 }), [], 'the open transaction stays hidden');
        await txn.commit();
        // The coordinator writes the commit markers after EndTxn answers: the LSO follows shortly.
        await eventually(async () => assert.deepEqual(await committed.endOffsets([p]), [{ ...p, offset: 3n }]));
        assert.deepEqual((await readToEnd(committed, new Map([[`${t}:0`, 3n]]))).map(text), ['0@1:k=open']);
      } finally {
        await Promise.all([committed.close(), uncommitted.close(), producer.close()]);
      }
    });

    it('deletes records below an offset: beginning offsets, group members and restore consumers start from the new log start', async () => {
      const t = topic('delete');
      const admin = client.admin();
      await admin.createTopics([{ topic: t, partitions: 2 }]);
      await client.producer().send(Array.from({ length: 10 }, (_, i) => ({ topic: t, partition: 0, value: Buffer.from(`v${i}`) })));
      await client.producer().send([{ topic: t, partition: 1, value: Buffer.from('w0') }]);
      assert.deepEqual(await admin.deleteRecords([{ topic: t, partition: 0, offset: 4n }]), [{ topic: t, partition: 0, offset: 4n }]);
      assert.deepEqual(await admin.deleteRecords([{ topic: t, partition: 1, offset: -1n }]), [{ topic: t, partition: 1, offset: 1n }]);
      assert.deepEqual(
        (await admin.listOffsets(t, 'earliest')).map((o) => o.offset),
        [4n, 1n],
      );
      const restore = client.restoreConsumer();
      const member = client.consumer({ groupId: `restore-${randomUUID()}`, autoOffsetReset: 'earliest' });
      try {
        assert.deepEqual(
          (await restore.beginningOffsets([0, 1].map((partition) => ({ topic: t, partition })))).map((o) => o.offset),
          [4n, 1n],
        );
        restore.assign([{ topic: t, partition: 0, offset: 0n }]);
        const got = await readToEnd(restore, new Map([[`${t}:0`, 10n]]));
        assert.deepEqual(
          got.map((r) => r.offset),
          [4n, 5n, 6n, 7n, 8n, 9n],
        );
        await member.subscribe([t]);
        const seen: ConsumedRecord[] = [];
        const deadline = Date.now() + 20_000;
        while (seen.length < 6 && Date.now() < deadline) seen.push(...(await member.poll({ timeoutMs: 500 })));
        assert.deepEqual(
          seen.map((r) => `${r.partition}@${r.offset}`),
          ['0@4', '0@5', '0@6', '0@7', '0@8', '0@9'],
        );
      } finally {
        await Promise.all([restore.close(), member.close()]);
      }
    });

    it('rejects deleting records past the end offset with a clear error, and deletes nothing', async () => {
      const t = topic('delete-bad');
      const admin = client.admin();
      await admin.createTopics([{ topic: t, partitions: 1 }]);
      await client.producer().send([{ topic: t, value: Buffer.from('v') }]);
      await assert.rejects(admin.deleteRecords([{ topic: t, partition: 0, offset: 99n }]), { code: 'INVALID_ARGUMENT' });
      assert.deepEqual(
        (await admin.listOffsets(t, 'earliest')).map((o) => o.offset),
        [0n],
      );
    });
  });
}
