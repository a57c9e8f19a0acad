/**
 * A restoring partition is paused alone (issue 17): while one task's stores replay their
 * changelog, the runner's other tasks keep processing, and the restored task starts as soon as
 * its own restore is done. The restore of one changelog partition is held back by a fault hook.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryClient } from '../../kafka/memory/memory-client.ts';
import { jsonSerde, stringSerde } from '../../kafka/serdes.ts';
import type { KafkaClient } from '../../kafka/types.ts';
import { createStreamsBuilder, createStreamsRunner, type StreamsRunner } from '../index.ts';
import { faulty } from '../testing/faulty-client.fixture.ts';

type Memory = ReturnType<typeof createMemoryClient>;
const outSerdes = { key: stringSerde, value: jsonSerde<{ count: number }>() };

/** Counts records per key in store "counts"; emits the new count. */
function countingTopology() {
  const b = createStreamsBuilder();
  b.stream('events', { key: stringSerde, value: jsonSerde() })
    .process(
      (r, ctx) => {
        const counts = ctx.store<string, number>('counts');
        const count = (counts.get(r.key as string) ?? 0) + 1;
        counts.put(r.key as string, count);
        return [{ key: r.key, value: { count } }];
      },
      { name: 'count', stores: ['counts'] },
    )
    .to('counted', outSerdes);
  return b.build();
}

/** Five records per input partition, keyed `p<partition>-<i>`. */
async function sendRound(memory: Memory): Promise<void> {
  const records = [0, 1].flatMap((partition) =>
    Array.from({ length: 5 }, (_, i) => ({ topic: 'events', partition, key: Buffer.from(`p${partition}-${i}`), value: Buffer.from('{}') })),
  );
  await memory.producer().send(records);
}

/** Committed counts of keys of input partition `p`, by key, in output order. */
function counts(memory: Memory, p: number): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (let q = 0; q < 2; q++) {
    for (const r of memory.log.read('counted', q, 0n, 1_000_000, true).records) {
      const key = r.key?.toString() ?? '';
      if (!key.startsWith(`p${p}-`)) continue;
      out.set(key, [...(out.get(key) ?? []), (outSerdes.value.deserialize(r.value) as { count: number }).count]);
    }
  }
  return out;
}
const outputsOf = (memory: Memory, p: number): number => [...counts(memory, p).values()].reduce((n, c) => n + c.length, 0);

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const runner = (client: KafkaClient): StreamsRunner =>
  createStreamsRunner(countingTopology(), {
    client,
    applicationId: 'app',
    guarantee: 'exactly-once',
    commitIntervalMs: 10,
    lagIntervalMs: 0,
  });

describe('restoring tasks', () => {
  it('keeps processing the other task while one task’s store restores, and starts the restored task once its own restore is done', async () => {
    const memory = createMemoryClient();
    await memory.admin().createTopics([
      { topic: 'events', partitions: 2 },
      { topic: 'counted', partitions: 2 },
      { topic: 'app-dlq', partitions: 1 },
    ]);
    // First run: both changelog partitions get records (the in-memory engine restores them on every assignment).
    await sendRound(memory);
    const first = runner(memory);
    await first.start();
    try {
      await until(() => outputsOf(memory, 0) === 5 && outputsOf(memory, 1) === 5, 'the first round is counted');
    } finally {
      await first.close();
    }

    // Second run: the restore of task 0_0 (changelog partition 0) is held until released.
    let release = (): void => undefined;
    const gate = new Promise<void>((r) => (release = r));
    let held = false;
    const client = faulty(memory, {
      async restorePoll(assignment) {
        if (!assignment.some((tp) => tp.topic === 'app-counts-changelog' && tp.partition === 0)) return;
        held = true;
        await gate;
      },
    });
    const second = runner(client);
    await second.start();
    try {
      await sendRound(memory);
      await until(() => outputsOf(memory, 1) === 10, 'task 0_1 counted the second round');
      assert.ok(held, 'task 0_0’s restore is held');
      assert.equal(outputsOf(memory, 0), 5, 'task 0_0 processes nothing while its store restores');
      assert.equal(second.stats().restoring, 1, 'one task is restoring');
      release();
      await until(() => outputsOf(memory, 0) === 10, 'task 0_0 counted the second round once restored');
      assert.equal(second.stats().restoring, 0);
      for (const p of [0, 1]) {
        for (const [key, c] of counts(memory, p)) assert.deepEqual(c, [1, 2], `key ${key}: counted on from its restored state`);
      }
    } finally {
      release();
      await second.close();
    }
  });
});
