/**
 * The Kafka-native endpoint in exactly-once mode, on the in-process log: responses and request
 * offsets go in one transaction, so a failed transaction commit shows no response and moves no
 * offset, and after the rewind every request is answered exactly once.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { InflowError } from '../../errors.ts';
import { createMemoryClient } from '../../kafka/memory/memory-client.ts';
import { loadServable } from '../../runtime/index.ts';
import { createLocalInference } from '../../serving/local-inference.ts';
import { faulty } from '../../streams/testing/faulty-client.fixture.ts';
import { startKafkaEndpoint } from './kafka-endpoint-runner.ts';

const MODELS = join(import.meta.dirname, '..', '..', '..', 'models');
const COUNT = 30;

describe('Kafka-native endpoint, exactly-once', () => {
  it('answers every request exactly once across a failed transaction commit, which shows no response and moves no offset', async () => {
    const root = await mkdtemp(join(tmpdir(), 'inflow-endpoint-eos-'));
    await cp(join(MODELS, 'repository', 'digits-mlp'), join(root, 'digits-mlp'), { recursive: true });
    const inference = await createLocalInference({ modelRepository: root, load: loadServable, watch: false, settleMs: 0 });
    const sample = JSON.parse(await readFile(join(MODELS, 'samples', 'digits-mlp.json'), 'utf8')) as {
      inputs: { input: { data: number[] } };
      outputs: { label: { data: number[] } };
    };
    const memory = createMemoryClient();
    const admin = memory.admin();
    await admin.createTopics(['inflow-requests', 'inflow-responses', 'inflow-errors'].map((topic) => ({ topic, partitions: 2 })));
    const groupOffset = async (): Promise<bigint> =>
      (await admin.groupOffsets('inflow-kafka-endpoint', ['inflow-requests'])).reduce((a, o) => a + (o.offset > 0n ? o.offset : 0n), 0n);
    const visible: string[][] = [];
    let failures = 1;
    const client = faulty(memory, {
      async commit(txn) {
        if (failures-- > 0) {
          visible.push(await readAll('read_committed', 0));
          assert.equal(await groupOffset(), 0n, 'no request offset was committed outside the transaction');
          throw new InflowError('KAFKA_UNREACHABLE', 'transaction commit failed (injected)');
        }
        return txn.commit();
      },
    });
    async function readAll(isolationLevel: 'read_committed' | 'read_uncommitted', count: number): Promise<string[]> {
      const reader = memory.consumer({ groupId: `reader-${Math.random()}`, autoOffsetReset: 'earliest', isolationLevel });
      await reader.subscribe(['inflow-responses']);
      const ids: string[] = [];
      const deadline = Date.now() + 10_000;
      do {
        for (const r of await reader.poll({ timeoutMs: 50 }))
          ids.push(r.headers.find(([k]) => k === 'inflow-request-id')?.[1].toString() ?? '?');
      } while (ids.length < count && Date.now() < deadline);
      await reader.close();
      return ids;
    }

    const producer = memory.producer();
    const row = (i: number): number[] => sample.inputs.input.data.slice((i % 8) * 64, (i % 8) * 64 + 64);
    await producer.send(
      Array.from({ length: COUNT }, (_, i) => ({
        topic: 'inflow-requests',
        key: Buffer.from(`client-${i % 7}`),
        value: Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], data: row(i) }] })),
        headers: [
          ['inflow-model', Buffer.from('digits-mlp')],
          ['inflow-request-id', Buffer.from(`r${i}`)],
        ] as [string, Buffer][],
      })),
    );
    const runner = await startKafkaEndpoint(inference, { client, guarantee: 'exactly-once', maxBatch: 8 });
    try {
      const deadline = Date.now() + 20_000;
      while ((await groupOffset()) < BigInt(COUNT) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(await groupOffset(), BigInt(COUNT), 'every request offset was committed');
      assert.ok(failures < 0, 'the endpoint committed a transaction (exactly-once mode), and the first one failed');
      assert.deepEqual(visible, [[]], 'no response was visible while its transaction was failing');
      const committed = await readAll('read_committed', COUNT);
      assert.deepEqual(
        [...committed].sort(),
        Array.from({ length: COUNT }, (_, i) => `r${i}`).sort(),
        'read_committed sees each response exactly once',
      );
      const all = await readAll('read_uncommitted', COUNT + 1);
      assert.ok(
        all.length > COUNT,
        `the aborted transaction's responses are in the log (${all.length} records) but hidden from read_committed`,
      );
    } finally {
      await runner.close();
      await admin.close();
      await memory.close();
      await inference.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});
