import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryClient } from '../../kafka/memory/memory-client.ts';
import { jsonSerde, stringSerde } from '../../kafka/serdes.ts';
import { createStreamsBuilder } from '../api/streams-builder.ts';
import { createStreamsRunner } from './streams-runner.ts';

const serdes = { key: stringSerde, value: jsonSerde<Record<string, unknown>>() };
const T0 = 1_700_000_000_000;

describe('window store queries on a running pipeline', () => {
  it("fetches a key's committed windows whose start lies in a time range, in start order, and refuses a key lookup on a window store", async () => {
    const memory = createMemoryClient();
    const admin = memory.admin();
    await admin.createTopics(['clicks', 'counts', 'app-dlq'].map((topic) => ({ topic, partitions: 2 })));
    await admin.close();
    const b = createStreamsBuilder();
    b.stream('clicks', serdes)
      .groupByKey()
      .windowedBy({ type: 'tumbling', sizeMs: 10_000, graceMs: 60_000 })
      .count({ name: 'per-10s', store: 'clicks-10s' })
      .toStream()
      .map((r) => ({ key: `${r.key.key}@${r.key.start}`, value: r.value }))
      .to('counts', { key: stringSerde, value: jsonSerde() });
    const runner = createStreamsRunner(b.build(), { client: memory, applicationId: 'app', commitIntervalMs: 10, lagIntervalMs: 0 });
    await runner.start();
    try {
      const producer = memory.producer();
      // card-1: 2 clicks in [0, 10 s), 1 in [20, 30 s), 1 in [40, 50 s); card-2: 1 in [0, 10 s).
      const at = [0, 4_000, 21_000, 45_000];
      await producer.send([
        ...at.map((t) => ({ topic: 'clicks', key: Buffer.from('card-1'), value: Buffer.from('{}'), timestamp: T0 + t })),
        { topic: 'clicks', key: Buffer.from('card-2'), value: Buffer.from('{}'), timestamp: T0 + 1_000 },
      ]);
      await producer.close();
      const started = Date.now();
      let got;
      // Until every record is committed (the query reads committed state only).
      for (;;) {
        got = await runner.stores.fetch('clicks-10s', 'card-1', T0, T0 + 40_000);
        if (got.kind === 'windows' && got.windows.length === 3 && (got.windows[0]?.value as number) === 2) break;
        assert.ok(Date.now() - started < 10_000, `the windows did not arrive: ${JSON.stringify(got)}`);
        await new Promise((r) => setImmediate(r));
      }
      assert.deepEqual(
        got.kind === 'windows' ? got.windows : got,
        [
          { start: T0, value: 2 },
          { start: T0 + 20_000, value: 1 },
          { start: T0 + 40_000, value: 1 },
        ],
        'windows starting in [T0, T0 + 40 s], inclusive',
      );
      const later = await runner.stores.fetch('clicks-10s', 'card-1', T0 + 10_000, T0 + 39_999);
      assert.deepEqual(later.kind === 'windows' ? later.windows : later, [{ start: T0 + 20_000, value: 1 }]);
      const none = await runner.stores.fetch('clicks-10s', 'card-9', T0, T0 + 60_000);
      assert.deepEqual(none.kind === 'windows' ? none.windows : none, []);
      await assert.rejects(runner.stores.get('clicks-10s', 'card-1'), { code: 'INVALID_ARGUMENT', message: /is a window store: fetch/ });
      await assert.rejects(runner.stores.fetch('clicks-10s', 'card-1', T0 + 1, T0), { code: 'INVALID_ARGUMENT' });
      await assert.rejects(runner.stores.fetch('clicks-10s', { not: 'a key' }, T0, T0 + 1), { code: 'INVALID_ARGUMENT' });
    } finally {
      await runner.close();
      await memory.close();
    }
  });
});
