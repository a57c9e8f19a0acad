/**
 * The runner's store lifecycle on the in-process log: changelogs created and written at each
 * commit, restore on assignment (from a checkpoint on lmdb, from the beginning otherwise or
 * when the checkpoint is corrupt), and the transactional overlay: an aborted transaction's
 * writes are discarded, not applied twice.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { InflowError } from '../../errors.ts';
import { createMemoryClient } from '../../kafka/memory/memory-client.ts';
import { jsonSerde, stringSerde } from '../../kafka/serdes.ts';
import type { KafkaClient } from '../../kafka/types.ts';
import { createStreamsBuilder, createStreamsRunner, type StreamsRunnerOptions } from '../index.ts';
import { faulty } from '../testing/faulty-client.fixture.ts';
import { CHECKPOINT_FILE, readCheckpoint } from '../state/checkpoint.ts';
import { CHECKPOINT_DELTA_RECORDS } from './task-stores.ts';

type Memory = ReturnType<typeof createMemoryClient>;
const serdes = { key: stringSerde, value: jsonSerde<{ n: number }>() };
const outSerdes = { key: stringSerde, value: jsonSerde<{ count: number }>() };
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'inflow-task-stores-'));
  dirs.push(d);
  return d;
};

/** Counts records per key in store "counts"; emits the new count. */
function countingTopology() {
  const b = createStreamsBuilder();
  b.stream('events', serdes)
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

async function setup(memory: Memory): Promise<void> {
  await memory.admin().createTopics([
    { topic: 'events', partitions: 2 },
    { topic: 'counted', partitions: 2 },
    { topic: 'app-dlq', partitions: 1 },
  ]);
}

async function send(memory: Memory, keys: readonly string[]): Promise<void> {
  await memory
    .producer()
    .send(keys.map((k, n) => ({ topic: 'events', key: Buffer.from(k), value: serdes.value.serialize({ n }) as Buffer })));
}

/** Committed outputs (read_committed view of the log), in order per partition. */
function committedOutputs(memory: Memory): { key: string; count: number }[] {
  const out: { key: string; count: number }[] = [];
  for (let p = 0; p < 2; p++) {
    for (const r of memory.log.read('counted', p, 0n, 1_000_000, true).records) {
      out.push({ key: r.key?.toString() ?? '', count: (outSerdes.value.deserialize(r.value) as { count: number }).count });
    }
  }
  return out;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Runs a counting runner until `total` outputs are committed, then closes it. */
async function runUntil(client: KafkaClient, memory: Memory, total: number, options: Partial<StreamsRunnerOptions> = {}): Promise<void> {
  const runner = createStreamsRunner(countingTopology(), {
    client,
    applicationId: 'app',
    guarantee: 'exactly-once',
    commitIntervalMs: 10,
    lagIntervalMs: 0,
    ...options,
  });
  await runner.start();
  try {
    await until(() => committedOutputs(memory).length >= total, `${total} outputs are committed`);
  } finally {
    await runner.close();
  }
}

/** The final count per key the outputs show, and whether every key's counts went 1, 2, 3… without a gap or repeat. */
function check(memory: Memory, expected: Record<string, number>): void {
  const seen = new Map<string, number[]>();
  for (const o of committedOutputs(memory)) seen.set(o.key, [...(seen.get(o.key) ?? []), o.count]);
  for (const [key, counts] of seen) {
    assert.deepEqual(
      counts,
      Array.from({ length: counts.length }, (_, i) => i + 1),
      `key ${key}: one output per update, in order`,
    );
  }
  assert.deepEqual(Object.fromEntries([...seen].map(([k, c]) => [k, c.length])), expected);
}

const keys = (n: number): string[] => Array.from({ length: n }, (_, i) => `k${i % 7}`);
/** Count per key of `n` records sent as `keys(n)`, `batches` times. */
const expectedCounts = (n: number, batches = 1): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const k of keys(n)) out[k] = (out[k] ?? 0) + batches;
  return out;
};

describe('state stores in the runner', () => {
  it('creates a compacted changelog per store with the input’s partitions and writes each key’s latest value to it per commit', async () => {
    const memory = createMemoryClient();
    await setup(memory);
    await send(memory, keys(20));
    await runUntil(memory, memory, 20);
    const [changelog] = await memory.admin().describeTopics(['app-counts-changelog']);
    assert.equal(changelog?.partitions, 2);
    const latest = new Map<string, number>();
    let updates = 0;
    for (let p = 0; p < 2; p++) {
      for (const r of memory.log.read('app-counts-changelog', p, 0n, 1000, true).records) {
        updates++;
        latest.set(r.key?.toString('latin1') ?? '', JSON.parse(r.value?.toString() ?? 'null') as number);
      }
    }
    assert.deepEqual([...latest.values()].sort(), [2, 3, 3, 3, 3, 3, 3], 'each of the 7 keys ends at its count');
    assert.ok(updates >= 7 && updates <= 20, `at most one record per key and commit (${updates} for 20 updates of 7 keys)`);
    check(memory, expectedCounts(20));
  });

  for (const engine of ['memory', 'lmdb'] as const) {
    it(`restores counts from the changelog on the next start (${engine} engine), so counting goes on where it stopped`, async () => {
      const memory = createMemoryClient();
      await setup(memory);
      const stateDir = engine === 'lmdb' ? tempDir() : undefined;
      const options = stateDir ? { stateDir } : {};
      await send(memory, keys(30));
      await runUntil(memory, memory, 30, options);
      if (stateDir) {
        const tasks = readdirSync(join(stateDir, 'app'));
        assert.deepEqual(tasks.sort(), ['0_0', '0_1']);
        for (const t of tasks)
          assert.ok(readdirSync(join(stateDir, 'app', t, 'counts')).includes(CHECKPOINT_FILE), `task ${t} checkpointed at clean close`);
      }
      await send(memory, keys(30));
      await runUntil(memory, memory, 60, options);
      check(memory, expectedCounts(30, 2));
    });
  }

  for (const guarantee of ['at-least-once', 'exactly-once'] as const) {
    it(`${guarantee === 'at-least-once' ? 'writes a checkpoint after a commit once 10 000 changelog records accumulated' : 'writes no checkpoint while running'} (${guarantee}), like Kafka Streams`, async () => {
      const memory = createMemoryClient();
      await setup(memory);
      const total = Number(CHECKPOINT_DELTA_RECORDS) + 500;
      await memory.producer().send(
        Array.from({ length: total }, (_, i) => ({
          topic: 'events',
          partition: 0,
          // Distinct keys: one changelog record per key and commit, so the changelog grows by one per record.
          key: Buffer.from(`k${i}`),
          value: Buffer.from('{"n":0}'),
        })),
      );
      const stateDir = tempDir();
      const checkpoint = join(stateDir, 'app', '0_0', 'counts', CHECKPOINT_FILE);
      const runner = createStreamsRunner(countingTopology(), {
        client: memory,
        applicationId: 'app',
        guarantee,
        commitIntervalMs: 50,
        lagIntervalMs: 0,
        stateDir,
      });
      await runner.start();
      try {
        const outputs = (): number =>
          memory.log.read('counted', 0, 0n, 1_000_000, false).records.length +
          memory.log.read('counted', 1, 0n, 1_000_000, false).records.length;
        await until(() => outputs() >= total, 'every record was counted');
        // commitNow settles after the commit and what follows it (the fold, an at-least-once checkpoint).
        await runner.commitNow();
        if (guarantee === 'exactly-once') {
          assert.equal(existsSync(checkpoint), false, 'exactly-once: the local state is not known good while the task runs');
        } else {
          const read = readCheckpoint(dirname(checkpoint));
          assert.equal(read.kind, 'offset', 'at-least-once: a checkpoint exists while the task runs (a crash now restores from it)');
          const offset = read.kind === 'offset' ? read.offset : 0n;
          assert.ok(offset >= CHECKPOINT_DELTA_RECORDS && offset <= BigInt(total), `checkpoint at ${offset}, within the changelog`);
        }
      } finally {
        await runner.close();
      }
      assert.equal(readCheckpoint(dirname(checkpoint)).kind, 'offset', 'a clean close writes a checkpoint under either guarantee');
    });
  }

  it('shows restore progress: records replayed per store in the metrics, nothing restoring once started', async () => {
    const memory = createMemoryClient();
    await setup(memory);
    await send(memory, keys(25));
    await runUntil(memory, memory, 25);
    const runner = createStreamsRunner(countingTopology(), {
      client: memory,
      applicationId: 'app',
      guarantee: 'exactly-once',
      lagIntervalMs: 0,
    });
    await runner.start();
    try {
      await until(() => runner.stats().restoring === 0, 'the stores are restored');
      const restored = (await runner.metrics.restoredRecords.get()).values.reduce((a, v) => a + v.value, 0);
      let logged = 0;
      for (let p = 0; p < 2; p++) logged += memory.log.read('app-counts-changelog', p, 0n, 1000, true).records.length;
      assert.ok(logged >= 7, `the changelog holds every key (${logged} records)`);
      assert.equal(restored, logged, 'the in-memory engine replays every changelog record');
      const remaining = (await runner.metrics.restoreRemaining.get()).values.map((v) => v.value);
      assert.deepEqual(remaining, [0, 0], 'both store partitions report nothing left');
    } finally {
      await runner.close();
    }
  });

  it('stops with RESOURCE_EXHAUSTED when a store would pass its size limit, after the commit: the changelog holds every committed update', async () => {
    const memory = createMemoryClient();
    await setup(memory);
    await memory.producer().send(
      Array.from({ length: 3000 }, (_, i) => ({
        topic: 'events',
        partition: 0,
        key: Buffer.from(`key-${i}`),
        value: Buffer.from('{"n":0}'),
      })),
    );
    const runner = createStreamsRunner(countingTopology(), {
      client: memory,
      applicationId: 'app',
      guarantee: 'exactly-once',
      commitIntervalMs: 10,
      lagIntervalMs: 0,
      stateDir: tempDir(),
      maxStoreBytes: 64 * 1024,
    });
    await runner.start();
    await assert.rejects(runner.done, (e: InflowError) => {
      assert.equal(e.code, 'RESOURCE_EXHAUSTED');
      assert.match(e.message, /state store "counts \(task 0_0\)" is full: .* > 65536 bytes allowed/);
      return true;
    });
    const outputs = committedOutputs(memory).length;
    const changelog = memory.log.read('app-counts-changelog', 0, 0n, 1_000_000, true).records.length;
    assert.ok(outputs > 0 && outputs < 3000, `stopped part way (${outputs} outputs)`);
    assert.equal(changelog, outputs, 'every committed output has its store update in the changelog');
  });

  it('restores the whole changelog when a checkpoint is corrupt or the state directory is new', async () => {
    const memory = createMemoryClient();
    await setup(memory);
    const stateDir = tempDir();
    await send(memory, keys(20));
    await runUntil(memory, memory, 20, { stateDir });
    // A corrupt checkpoint, and local state that disagrees with it: a full restore must wipe and replay.
    writeFileSync(join(stateDir, 'app', '0_0', 'counts', CHECKPOINT_FILE), '{"version":1,"offset":');
    await send(memory, keys(20));
    await runUntil(memory, memory, 40, { stateDir });
    await send(memory, keys(20));
    await runUntil(memory, memory, 60, { stateDir: tempDir() });
    check(memory, expectedCounts(20, 3));
  });

  it('discards the store writes of an aborted transaction: after failed commits no update is applied twice', async () => {
    const memory = createMemoryClient();
    await setup(memory);
    await send(memory, keys(40));
    let failures = 3;
    const client = faulty(memory, {
      async commit(txn) {
        if (failures-- > 0) {
          await txn.abort();
          throw new InflowError('KAFKA_ERROR', 'commit failed (injected)');
        }
        await txn.commit();
      },
    });
    await runUntil(client, memory, 40);
    assert.ok(failures < 0, 'the injected failures happened');
    check(memory, expectedCounts(40));
  });
});
