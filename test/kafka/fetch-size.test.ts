/**
 * The consumer bounds what one Fetch response carries (issue 22): the library's default of 50 MiB
 * per response and per partition made its reader walk up to ~800 socket chunks for every field
 * it decoded (bench/kafka/consume-compare.ts: 3.3 s of CPU for 300 k records of 1 KiB, 1.9–2.0 s
 * with bounded responses). Observed on a real broker through the library's own diagnostics
 * channel for fetches: every request asks for at most the bounds, and no response holds more
 * records of one partition than fit in its bound (plus the one batch Kafka always returns).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { tracingChannel } from 'node:diagnostics_channel';
import { describe, it } from 'node:test';
import { createKafkaClient } from '../../src/kafka/index.ts';
import { FETCH_MAX_BYTES, PARTITION_FETCH_MAX_BYTES } from '../../src/kafka/platformatic/platformatic-consumer.ts';
import { brokerOrSkip } from '../setup/broker.ts';

interface FetchContext {
  options?: { maxBytes?: number; maxBytesPerPartition?: number };
  result?: { responses: Array<{ partitions: Array<{ records?: Array<{ records: unknown[] }> }> }> };
}

const bootstrap = brokerOrSkip();
describe('the consumer on a real broker', { skip: !bootstrap }, () => {
  it('asks for bounded fetch responses and gets no more records per partition than the bound holds', async () => {
    const client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'inflow-fetch-size' });
    const admin = client.admin();
    const topic = `fetch-size-${randomUUID().slice(0, 8)}`;
    const RECORD = 4096;
    const N = 1200; // 4.7 MiB in one partition: over the per-partition bound and the total bound
    const asked: Array<{ maxBytes?: number; maxBytesPerPartition?: number }> = [];
    const largest = { records: 0 };
    const channel = tracingChannel<string, FetchContext>('plt:kafka:consumer:fetches');
    const handlers = {
      start(ctx: FetchContext) {
        asked.push({ ...ctx.options });
      },
      asyncStart(ctx: FetchContext) {
        for (const t of ctx.result?.responses ?? [])
          for (const p of t.partitions) {
            const records = (p.records ?? []).reduce((a, b) => a + b.records.length, 0);
            largest.records = Math.max(largest.records, records);
          }
      },
      end() {},
      asyncEnd() {},
      error() {},
    };
    channel.subscribe(handlers);
    const consumer = client.consumer({ groupId: `g-${randomUUID()}`, autoOffsetReset: 'earliest', maxBufferedRecords: 4096 });
    try {
      await admin.createTopics([{ topic, partitions: 1 }]);
      const producer = client.producer({ acks: 'all' });
      const value = Buffer.alloc(RECORD, 1);
      for (let i = 0; i < N; i += 50) await producer.send(Array.from({ length: 50 }, () => ({ topic, partition: 0, value })));
      await producer.close();
      await consumer.subscribe([topic]);
      let got = 0;
      while (got < N) {
        const records = await consumer.poll({ maxRecords: 1000, timeoutMs: 30_000 });
        assert.ok(records.length > 0, `consumed ${got} of ${N}, then nothing for 30 s`);
        got += records.length;
      }
      assert.ok(asked.length > 0, 'the library published its fetches');
      for (const a of asked) {
        assert.ok((a.maxBytes ?? Infinity) <= FETCH_MAX_BYTES, `a fetch asked for ${a.maxBytes} bytes in all`);
        assert.ok(
          (a.maxBytesPerPartition ?? Infinity) <= PARTITION_FETCH_MAX_BYTES,
          `a fetch asked for ${a.maxBytesPerPartition} bytes per partition`,
        );
      }
      // The bound, plus the producer's batch of 50 that crosses it.
      const bound = Math.ceil(PARTITION_FETCH_MAX_BYTES / RECORD) + 50;
      assert.ok(
        largest.records > 0 && largest.records <= bound,
        `a response held ${largest.records} records of the partition (bound ${bound})`,
      );
    } finally {
      channel.unsubscribe(handlers);
      await consumer.close();
      await admin.close();
      await client.close();
    }
  });
});
