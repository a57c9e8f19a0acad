/**
 * The runner across rebalances while the model is stuck (on the in-process log): the in-flight
 * budget holds for partitions assigned while paused, and records dropped by a rewind never
 * reach the model.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryClient } from '../../kafka/memory/memory-client.ts';
import { jsonSerde, stringSerde } from '../../kafka/serdes.ts';
import type { KafkaClient } from '../../kafka/types.ts';
import { createStreamsBuilder } from '../api/streams-builder.ts';
import type { Topology } from '../api/topology.ts';
import { createTestInferencer, type TestInferencer } from '../testing/test-inferencer.fixture.ts';
import { createStreamsRunner } from './streams-runner.ts';
import type { StreamsRunner, StreamsRunnerOptions } from './streams-runner-options.ts';

const serdes = { key: stringSerde, value: jsonSerde<Record<string, unknown>>() };

/** A model held until `open()`. */
function stuckModel(): TestInferencer & { open(): void } {
  const inferencer = createTestInferencer();
  let release!: () => void;
  inferencer.gate = new Promise<void>((r) => {
    release = r;
  });
  return Object.assign(inferencer, {
    open() {
      inferencer.gate = undefined;
      release();
    },
  });
}

function topology(inferencer: TestInferencer, maxBatch: number): Topology {
  const b = createStreamsBuilder();
  b.stream('in', serdes)
    .predict({
      inferencer,
      model: 'double',
      inputs: { x: { field: 'x' } },
      outputs: { y: { tensor: 'y' } },
      maxBatch,
      maxConcurrentBatches: 1,
    })
    .to('out', serdes);
  return b.build();
}

async function setUp(partitions: number, records: number) {
  const client = createMemoryClient();
  const admin = client.admin();
  await admin.createTopics(['in', 'out', 'app-dlq'].map((topic) => ({ topic, partitions })));
  await admin.close();
  const input = client.producer();
  await input.send(
    Array.from({ length: records }, (_, i) => ({ topic: 'in', key: Buffer.from(`k${i}`), value: serdes.value.serialize({ i, x: [i] }) })),
  );
  await input.close();
  return client;
}

/** Waits until `done()`, calling `each()` every event-loop turn; fails after 10 s of real time. */
async function until(what: string, done: () => boolean, each: () => void = () => undefined): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    each();
    if (done()) return;
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

function runner(client: KafkaClient, t: Topology, instanceId: string, options: Partial<StreamsRunnerOptions> = {}): StreamsRunner {
  return createStreamsRunner(t, { client, applicationId: 'app', instanceId, lagIntervalMs: 0, drainTimeoutMs: 0, ...options });
}

describe('streams runner across rebalances with a stuck model', () => {
  it('keeps in-flight records within maxInFlight + maxPollRecords when a member joins and leaves', async () => {
    const client = await setUp(4, 400);
    const model = stuckModel();
    const budget = { maxInFlight: 16, maxPollRecords: 4 };
    const a = runner(client, topology(model, 8), 'a', budget);
    let most = 0;
    const watch = (): void => {
      most = Math.max(most, a.stats().inFlight);
    };
    try {
      await a.start();
      await until('the budget is spent and every partition paused', () => a.stats().paused === 4, watch);
      const b = runner(client, topology(model, 8), 'b', budget);
      await b.start();
      await until('a gave partitions to b', () => a.stats().assigned.length < 4, watch);
      await b.close();
      await until('a owns every partition again', () => a.stats().assigned.length === 4, watch);
      // The partitions that came back must be paused too, or every poll takes records from them.
      for (let turn = 0; turn < 2000; turn++) {
        watch();
        await new Promise((r) => setImmediate(r));
      }
      assert.ok(most <= 16 + 4, `in flight reached ${most}, over maxInFlight 16 + maxPollRecords 4`);
      assert.equal(a.stats().paused, 4);
    } finally {
      model.open();
      await a.close();
      await client.close();
    }
  });

  it('never runs the model on records a rewind dropped (exactly-once)', async () => {
    const records = 40;
    const client = await setUp(2, records);
    const model = stuckModel();
    const a = runner(client, topology(model, 4), 'a', { guarantee: 'exactly-once', commitIntervalMs: 10 });
    try {
      await a.start();
      await until('every record is in flight', () => a.stats().inFlight === records);
      // b joins: a's revocation rewinds it (exactly-once), dropping every in-flight record.
      const b = runner(client, topology(model, 4), 'b', { guarantee: 'exactly-once', commitIntervalMs: 10 });
      await b.start();
      await until('a gave a partition to b', () => a.stats().assigned.length === 1);
      await b.close();
      await until('a owns both partitions again', () => a.stats().assigned.length === 2);
      model.open();
      const reader = client.consumer({ groupId: 'reader', autoOffsetReset: 'earliest', isolationLevel: 'read_committed' });
      await reader.subscribe(['out']);
      const seen: number[] = [];
      const deadline = Date.now() + 10_000;
      while (seen.length < records && Date.now() < deadline) {
        for (const r of await reader.poll({ timeoutMs: 100 })) seen.push(serdes.value.deserialize(r.value)?.i as number);
      }
      await reader.close();
      assert.deepEqual(
        [...seen].sort((x, y) => x - y),
        Array.from({ length: records }, (_, i) => i),
      );
      // Each input once, plus at most one call (4 rows) that was already at the model when a
      // rewind or b's close dropped its records: a's first call and b's first call.
      const rows = model.calls.reduce((s, n) => s + n, 0);
      assert.ok(rows <= records + 2 * 4, `${rows} rows inferred for ${records} inputs`);
    } finally {
      model.open();
      await a.close();
      await client.close();
    }
  });
});
