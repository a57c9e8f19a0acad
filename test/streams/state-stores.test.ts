/**
 * State stores on the real broker (issue 17): a counting pipeline (a `process` node with an lmdb
 * store, exactly-once) SIGKILLed five times mid-stream while counting 50 000 records ends with
 * exactly the reference counts and one output per update — each crash leaves no checkpoint, so
 * every restart wipes the local store and restores it from the changelog, and an update applied
 * twice or lost would show as a repeated or missing count. Two instances share the partitions
 * and one leaves: its state moves to the other through the changelog.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createKafkaClient, type ConsumedRecord, type KafkaClient } from '../../src/kafka/index.ts';
import { readCheckpoint } from '../../src/streams/state/checkpoint.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import type { CountingChildConfig } from './fixtures/counting-child.ts';
import { type PipelineProcess, startChildProcess } from './fixtures/pipeline-process.ts';
import {
  createTopics,
  endOffsetSum,
  groupLag,
  readToEnd,
  seededRandom,
  uniqueName,
  waitFor,
  waitForLagZero,
} from './fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const CHILD = join(import.meta.dirname, 'fixtures', 'counting-child.ts');
const COUNT = 50_000;
const KEYS = 500;
const KILLS = 5;

async function produceEvents(client: KafkaClient, topic: string, from: number, count: number, keys = KEYS): Promise<void> {
  const producer = client.producer();
  try {
    for (let start = from; start < from + count; start += 5000) {
      const records = [];
      for (let i = start; i < Math.min(from + count, start + 5000); i++)
        records.push({ topic, key: Buffer.from(`key-${i % keys}`), value: Buffer.from(`{"i":${i}}`) });
      await producer.send(records);
    }
  } finally {
    await producer.close();
  }
}

/** Per key, the counts the outputs carry must be exactly 1, 2, …, n: no update lost, none applied twice. */
function assertCounts(records: readonly ConsumedRecord[], total: number, keys = KEYS): void {
  const byKey = new Map<string, number[]>();
  for (const r of records) {
    const key = r.key?.toString() ?? '';
    const count = (JSON.parse(r.value?.toString() ?? '{}') as { count: number }).count;
    let list = byKey.get(key);
    if (!list) byKey.set(key, (list = []));
    list.push(count);
  }
  assert.equal(byKey.size, keys);
  const bad: string[] = [];
  for (const [key, counts] of byKey) {
    const want = total / keys;
    if (counts.length !== want || counts.some((c, i) => c !== i + 1))
      bad.push(`${key}: ${counts.length} outputs, ${counts.slice(0, 8).join(',')}…`);
  }
  assert.deepEqual(bad.slice(0, 5), [], `${bad.length} keys differ from the reference (one output per update, counts 1..${total / KEYS})`);
  assert.equal(records.length, total, 'one output per input');
}

describe('state stores on Apache Kafka', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  let client: KafkaClient;
  const dirs: string[] = [];
  let running: PipelineProcess[] = [];

  before(() => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'streams-it-state' });
  });
  after(async () => {
    await Promise.all(running.map((p) => p.kill()));
    await client?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const config = (applicationId: string, input: string, output: string, instanceId: string): CountingChildConfig => {
    const stateDir = mkdtempSync(join(tmpdir(), 'inflow-state-it-'));
    dirs.push(stateDir);
    return {
      bootstrap: bootstrap ?? [],
      input,
      output,
      applicationId,
      instanceId,
      guarantee: 'exactly-once',
      stateDir,
      sessionTimeoutMs: 6000,
    };
  };

  it(`counts ${COUNT} records exactly over ${KILLS} SIGKILLs: stores restored from the changelog, one output per update (exactly-once)`, async (t) => {
    const random = seededRandom();
    const input = uniqueName('state-in');
    const output = uniqueName('state-out');
    const applicationId = uniqueName('state-app');
    await createTopics(client, [input, output, `${applicationId}-dlq`]);
    await produceEvents(client, input, 0, COUNT);
    const cfg = config(applicationId, input, output, 'crashy');
    const admin = client.admin();
    const kills: string[] = [];
    try {
      for (let k = 0; k < KILLS; k++) {
        const child = startChildProcess(CHILD, cfg, 60_000);
        running = [child];
        await child.started;
        const from = await endOffsetSum(admin, output);
        // 5 runs × at most 8 000 outputs (aborted ones count too) < 50 000: every kill is mid-stream.
        const threshold = from + BigInt(3000 + Math.floor(random.next() * 5000));
        let at = from;
        await waitFor(
          `the output of run ${k + 1} to pass ${threshold} (${random.replay})`,
          async () => {
            at = await endOffsetSum(admin, output);
            return at >= threshold ? true : undefined;
          },
          { timeoutMs: 120_000, everyMs: 20, describe: () => `at ${at}; child output:\n${child.output()}` },
        );
        await child.kill();
        assert.ok((await groupLag(admin, applicationId, input)) > 0n, `run ${k + 1} finished before its kill (${random.replay})`);
        kills.push(String(at));
      }
      const last = startChildProcess(CHILD, cfg, 60_000);
      running = [last];
      await last.started;
      await waitForLagZero(client, applicationId, input, 180_000);
      assert.equal(await last.stop(), 0, `the last run closes cleanly:\n${last.output()}`);
      assert.match(last.output(), /state store restored/, 'the last run restored its stores');
      running = [];
    } finally {
      await admin.close();
    }
    const records = await readToEnd(client, output, { isolation: 'read_committed' });
    t.diagnostic(`killed at output end offsets ${kills.join(', ')}; ${records.length} committed outputs; ${random.replay}`);
    assertCounts(records, COUNT);
  });

  it('restores an at-least-once store after a SIGKILL from the checkpoint its commits wrote, replaying only the changelog’s tail', async () => {
    const input = uniqueName('alo-ckpt-in');
    const output = uniqueName('alo-ckpt-out');
    const applicationId = uniqueName('alo-ckpt-app');
    // A commit writes one changelog record per key it covers, so the first 30 000 records have
    // distinct keys: each of the two store partitions gets about 15 000 changelog records and
    // passes the 10 000-record checkpoint threshold. The next 30 000 count every key again: each
    // output's count 2 checks the value the restart restored for its key.
    const keys = 30_000;
    const first = 30_000;
    const more = 30_000;
    await createTopics(client, [input, output, `${applicationId}-dlq`], 2);
    await produceEvents(client, input, 0, first, keys);
    const cfg = { ...config(applicationId, input, output, 'alo'), guarantee: 'at-least-once' as const };
    const crashed = startChildProcess(CHILD, cfg, 60_000);
    running = [crashed];
    await crashed.started;
    // Everything committed before the kill, so at-least-once reprocesses nothing and the counts stay exact.
    await waitForLagZero(client, applicationId, input, 120_000);
    // A commit writes its checkpoint after its offset commit (the engine flushed first): wait for
    // both, then kill. The task never closed, so only its commits can have written them.
    const checkpoints = (): { task: string; kind: string }[] =>
      readdirSync(join(cfg.stateDir, applicationId)).map((task) => ({
        task,
        kind: readCheckpoint(join(cfg.stateDir, applicationId, task, 'counts')).kind,
      }));
    await waitFor(
      'a checkpoint of each store partition written by a commit',
      () => {
        const c = checkpoints();
        return c.length === 2 && c.every((x) => x.kind === 'offset') ? true : undefined;
      },
      { timeoutMs: 30_000, describe: () => `${JSON.stringify(checkpoints())}\n${crashed.output()}` },
    );
    await crashed.kill();
    const restarted = startChildProcess(CHILD, cfg, 60_000);
    running = [restarted];
    await restarted.started;
    await produceEvents(client, input, first, more, keys);
    await waitForLagZero(client, applicationId, input, 120_000);
    const log = restarted.output();
    assert.equal(await restarted.stop(), 0, `the restarted run closes cleanly:\n${log}`);
    running = [];
    const restores = log
      .split('\n')
      .filter((line) => line.includes('"state store restored"'))
      .map((line) => JSON.parse(line) as { from: string; to: string; records: number });
    assert.equal(restores.length, 2, `one restore per store partition:\n${log}`);
    for (const r of restores) {
      assert.ok(BigInt(r.from) >= 10_000n, `restored from the checkpoint (${r.from}), not from the beginning`);
      assert.ok(r.records < Number(r.to), `replayed only the tail (${r.records} records from ${r.from} to ${r.to})`);
    }
    assertCounts(await readToEnd(client, output, { isolation: 'read_uncommitted' }), first + more, keys);
  });

  it('moves a leaving instance’s state to the one that stays, through the changelog', async () => {
    const input = uniqueName('handover-in');
    const output = uniqueName('handover-out');
    const applicationId = uniqueName('handover-app');
    const total = 10_000;
    await createTopics(client, [input, output, `${applicationId}-dlq`]);
    const a = startChildProcess(CHILD, config(applicationId, input, output, 'a'), 60_000);
    const b = startChildProcess(CHILD, config(applicationId, input, output, 'b'), 60_000);
    running = [a, b];
    await Promise.all([a.started, b.started]);
    await produceEvents(client, input, 0, total / 2);
    await waitForLagZero(client, applicationId, input, 120_000);
    assert.equal(await b.stop(), 0, `b leaves cleanly:\n${b.output()}`);
    await produceEvents(client, input, total / 2, total / 2);
    await waitForLagZero(client, applicationId, input, 120_000);
    assert.match(a.output(), /state store restored/);
    assert.equal(await a.stop(), 0);
    running = [];
    assertCounts(await readToEnd(client, output, { isolation: 'read_committed' }), total);
  });
});
