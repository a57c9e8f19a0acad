/**
 * Documented runner guarantees (src/streams/README.md "Commits", "Rebalance / failure",
 * "Shutdown", "Metrics"), each with a fault injected through the Kafka client the runner is given:
 * offsets only inside the transaction, a fenced producer stops the runner, close() drains for at
 * most `drainTimeoutMs`, a record delivered twice is dropped and counted.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InflowError } from '../../errors.ts';
import { createMemoryClient } from '../../kafka/memory/memory-client.ts';
import { jsonSerde, stringSerde } from '../../kafka/serdes.ts';
import type { KafkaClient } from '../../kafka/types.ts';
import type { Inferencer } from '../../serving/types.ts';
import { createStreamsBuilder, createStreamsRunner, type StreamsRunner, type StreamsRunnerOptions } from '../index.ts';
import { faulty } from '../testing/faulty-client.fixture.ts';
import { createTestInferencer } from '../testing/test-inferencer.fixture.ts';

const json = jsonSerde<Record<string, unknown>>();
const serdes = { key: stringSerde, value: json };
type Memory = ReturnType<typeof createMemoryClient>;

/** Waits (polling, real time bounded at 10 s) until `condition` holds. */
async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function setup(memory: Memory, count: number, partitions = 1): Promise<void> {
  const admin = memory.admin();
  await admin.createTopics([
    { topic: 'in', partitions },
    { topic: 'out', partitions },
    { topic: 'app-dlq', partitions: 1 },
  ]);
  await admin.close();
  const input = memory.producer();
  await input.send(
    Array.from({ length: count }, (_, i) => ({ topic: 'in', key: Buffer.from(`k${i}`), value: json.serialize({ i, x: [i] }) as Buffer })),
  );
  await input.close();
}

function runnerOver(
  client: KafkaClient,
  options: Partial<StreamsRunnerOptions> = {},
  inferencer: Inferencer = createTestInferencer(),
): StreamsRunner {
  const b = createStreamsBuilder();
  b.stream('in', serdes)
    .predict({ inferencer, model: 'double', inputs: { x: { field: 'x' } }, outputs: { y: { tensor: 'y' } } })
    .to('out', serdes);
  return createStreamsRunner(b.build(), { client, applicationId: 'app', commitIntervalMs: 10, lagIntervalMs: 0, ...options });
}

/** The group's committed offset of each `in` partition (-1 where none). */
async function committed(memory: Memory, partitions = 1): Promise<bigint[]> {
  const admin = memory.admin();
  try {
    const offsets = await admin.groupOffsets('app', ['in']);
    return Array.from({ length: partitions }, (_, p) => offsets.find((o) => o.partition === p)?.offset ?? -1n);
  } finally {
    await admin.close();
  }
}

/** What a read_committed reader sees on `out`, once it has `count` records (or 10 s passed). */
async function readOut(memory: Memory, count: number): Promise<number[]> {
  const reader = memory.consumer({ groupId: `reader-${Math.random()}`, autoOffsetReset: 'earliest', isolationLevel: 'read_committed' });
  try {
    await reader.subscribe(['out']);
    const seen: number[] = [];
    const deadline = Date.now() + 10_000;
    while (seen.length < count && Date.now() < deadline) {
      for (const r of await reader.poll({ timeoutMs: 50 })) seen.push(Number(json.deserialize(r.value)?.i));
    }
    // One more poll: a duplicate behind the expected count would show here.
    for (const r of await reader.poll({ timeoutMs: 50 })) seen.push(Number(json.deserialize(r.value)?.i));
    return seen;
  } finally {
    await reader.close();
  }
}

describe('streams runner guarantees', () => {
  it('in exactly-once mode commits offsets only inside the transaction: a failed transaction commit leaves the group’s offset unchanged', async () => {
    const memory = createMemoryClient();
    await setup(memory, 20);
    const atFailure: bigint[][] = [];
    let failures = 1;
    const client = faulty(memory, {
      async commit(txn) {
        if (failures-- > 0) {
          // The transaction carries outputs and offsets; the group's committed offset must not have moved.
          atFailure.push(await committed(memory));
          throw new InflowError('KAFKA_UNREACHABLE', 'transaction commit failed (injected)');
        }
        return txn.commit();
      },
    });
    const runner = runnerOver(client, { guarantee: 'exactly-once' });
    await runner.start();
    try {
      await until(async () => (await committed(memory))[0] === 20n, 'every input is committed');
      assert.deepEqual(atFailure, [[-1n]], 'the group had no committed offset when the first transaction failed');
      const rewinds = (await runner.metrics.rewinds.get()).values.reduce((a, v) => a + v.value, 0);
      assert.ok(rewinds >= 1, 'the failed commit rewound the runner');
      const out = await readOut(memory, 20);
      assert.deepEqual(
        [...out].sort((a, b) => a - b),
        Array.from({ length: 20 }, (_, i) => i),
        'read_committed sees each output exactly once',
      );
    } finally {
      await runner.close();
      await memory.close();
    }
  });

  it('stops on a fenced producer: done rejects with KAFKA_FENCED and nothing more is committed', async () => {
    const memory = createMemoryClient();
    await setup(memory, 10);
    const client = faulty(memory, {
      commit: async () => {
        throw new InflowError('KAFKA_FENCED', 'another instance took the transactional id (injected)');
      },
    });
    const runner = runnerOver(client, { guarantee: 'exactly-once' });
    await runner.start();
    try {
      await until(() => runner.stats().state !== 'running', 'the runner stopped');
      await assert.rejects(runner.done, { code: 'KAFKA_FENCED' });
      assert.deepEqual(await committed(memory), [-1n]);
      assert.deepEqual(await readOut(memory, 0), [], 'no output of the fenced transaction is visible');
      const rewinds = (await runner.metrics.rewinds.get()).values.reduce((a, v) => a + v.value, 0);
      assert.equal(rewinds, 0, 'a fenced producer is not retried');
    } finally {
      await runner.close().catch(() => undefined);
      await memory.close();
    }
  });

  it('drops and counts a record the consumer delivers twice (inflow_stream_redelivered_records_total)', async () => {
    const memory = createMemoryClient();
    await setup(memory, 12);
    let duplicated = 0;
    const client = faulty(memory, {
      poll(records) {
        // Deliver the first batch twice, as a consumer may after a fetch retry.
        if (duplicated > 0 || records.length === 0) return records;
        duplicated = records.length;
        return [...records, ...records];
      },
    });
    const runner = runnerOver(client);
    await runner.start();
    try {
      await until(async () => (await committed(memory))[0] === 12n, 'every input is committed');
      assert.ok(duplicated > 0);
      const counted = (await runner.metrics.redelivered.get()).values.reduce((a, v) => a + v.value, 0);
      assert.equal(counted, duplicated);
      const text = await runner.metrics.registry.metrics();
      assert.match(text, new RegExp(`^inflow_stream_redelivered_records_total\\{[^}]*\\} ${duplicated}$`, 'm'));
      const out = await readOut(memory, 12);
      assert.deepEqual(
        [...out].sort((a, b) => a - b),
        Array.from({ length: 12 }, (_, i) => i),
        'each input has one output',
      );
    } finally {
      await runner.close();
      await memory.close();
    }
  });

  it('close() waits for in-flight records to finish and commits them', async () => {
    const memory = createMemoryClient();
    await setup(memory, 8);
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    let calls = 0;
    const inner = createTestInferencer();
    const slow: Inferencer = {
      ...inner,
      async infer(request, options) {
        calls++;
        await released;
        return inner.infer(request, options);
      },
    };
    const runner = runnerOver(memory, { drainTimeoutMs: 10_000 }, slow);
    await runner.start();
    await until(() => runner.stats().inFlight === 8 && calls > 0, 'all 8 records are in flight');
    const closing = runner.close();
    release();
    await closing;
    assert.deepEqual(await committed(memory), [8n], 'close() drained and committed the in-flight records');
    await memory.close();
  });

  it('close() gives up on in-flight records after drainTimeoutMs, leaving them uncommitted for the next run', async () => {
    const memory = createMemoryClient();
    await setup(memory, 8);
    const inner = createTestInferencer();
    let calls = 0;
    const never: Inferencer = {
      ...inner,
      async infer(_request, options) {
        calls++;
        // Answers only when aborted, i.e. never while the runner drains.
        await new Promise<void>((_, reject) =>
          options?.signal?.addEventListener('abort', () => reject(new Error('aborted', { cause: options.signal?.reason }))),
        );
        throw new Error('unreachable');
      },
    };
    const runner = runnerOver(memory, { drainTimeoutMs: 200 }, never);
    await runner.start();
    await until(() => runner.stats().inFlight === 8 && calls > 0, 'all 8 records are in flight');
    const started = Date.now();
    await runner.close();
    const took = Date.now() - started;
    // Bounded by drainTimeoutMs (200 ms), far below the 10 s default: generous for a loaded machine.
    assert.ok(took < 5_000, `close() took ${took} ms with drainTimeoutMs 200`);
    assert.deepEqual(await committed(memory), [-1n], 'nothing unfinished was committed');
    // The next run redoes them.
    const again = runnerOver(memory);
    await again.start();
    try {
      await until(async () => (await committed(memory))[0] === 8n, 'the next run committed the 8 records');
      assert.deepEqual(
        [...(await readOut(memory, 8))].sort((a, b) => a - b),
        [0, 1, 2, 3, 4, 5, 6, 7],
      );
    } finally {
      await again.close();
      await memory.close();
    }
  });
});
