/**
 * `inflow stream --threads N` on the real broker: stream threads of one instance share the input
 * partitions through the consumer group, each with its own transactional producer, and one
 * failing thread fails the instance, naming the thread.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { streamThreadsCommand } from '../../src/cli/stream-threads.ts';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import {
  assertMatchesReference,
  completeness,
  createTopics,
  type DigitsReference,
  digitsReference,
  modelRepository,
  outputOf,
  produceDigits,
  produceRaw,
  readToEnd,
  uniqueName,
  waitFor,
  waitForLagZero,
} from './fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const COUNT = 4000;

describe('stream threads of one pipeline instance on Apache Kafka', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  let client: KafkaClient;
  let ref: DigitsReference;
  let dir = '';
  let repo = '';

  before(async () => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'streams-it-threads' });
    ref = await digitsReference();
    dir = await mkdtemp(join(tmpdir(), 'inflow-stream-threads-'));
    repo = await modelRepository(['digits-mlp']);
  });
  after(async () => {
    await client?.close();
    await rm(dir, { recursive: true, force: true });
    await rm(repo, { recursive: true, force: true });
  });

  async function pipelineFile(
    name: string,
    input: string,
    output: string,
    policy: 'dlq' | 'fail',
  ): Promise<{ file: string; applicationId: string }> {
    const applicationId = uniqueName(`${name}-app`);
    await createTopics(client, [`${applicationId}-dlq`], 1);
    const file = join(dir, `${name}.yaml`);
    await writeFile(
      file,
      `applicationId: ${applicationId}
kafka: { bootstrapServers: [${(bootstrap ?? []).join(', ')}] }
guarantee: exactly-once
errors: { policy: ${policy} }
limits: { commitIntervalMs: 100 }
threads: 2
models:
  local: { embedded: { modelRepository: ${repo} } }
pipeline:
  - source: { topic: ${input}, key: string, value: json }
  - predict:
      model: digits-mlp
      using: local
      inputs: { input: { field: pixels, dtype: FP32, shape: [64] } }
      outputs: { label: { tensor: label }, probabilities: { tensor: probabilities } }
  - select: { fields: [id, label, probabilities] }
  - to: { topic: ${output}, value: json }
`,
    );
    return { file, applicationId };
  }

  it('2 threads process every record of a 4-partition topic exactly once, both doing work, with one readiness and metrics endpoint', async () => {
    const input = uniqueName('threads-in');
    const output = uniqueName('threads-out');
    await createTopics(client, [input, output], 4);
    const { file, applicationId } = await pipelineFile('threads', input, output, 'dlq');
    const lines: string[] = [];
    const stop = new AbortController();
    let port = 0;
    const run = streamThreadsCommand({ file, metricsPort: '0' }, 2, (l) => lines.push(l), {
      signal: stop.signal,
      statusIntervalMs: 200,
      probeIntervalMs: 100,
      onProbes: (p) => {
        port = p;
      },
    });
    let failed: Error | undefined;
    run.catch((e: unknown) => {
      failed = e as Error;
    });
    try {
      // Ready once both threads run; the summed metrics count every input.
      await waitFor(
        'the instance to be ready',
        async () => {
          if (failed) throw failed;
          return port > 0 && (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200 ? true : undefined;
        },
        { timeoutMs: 90_000, describe: () => lines.slice(-5).join('\n') },
      );
      // Produced once both threads hold partitions: ready means a thread's runner started, not that
      // the group rebalanced to include it (the first member rejoins on its next heartbeat), and the
      // first thread drained records produced earlier alone on an idle machine.
      await waitFor(
        'the group to give both threads partitions',
        async () => {
          const group = await client.admin().describeGroup(applicationId);
          return group.state === 'Stable' && group.members.length === 2 && group.members.every((m) => m.assignment.length > 0)
            ? true
            : undefined;
        },
        { timeoutMs: 60_000, describe: () => lines.slice(-5).join('\n') },
      );
      await produceDigits(client, input, ref, COUNT);
      // Done when the group committed every input (each thread commits its own partitions).
      await waitForLagZero(client, applicationId, input, 120_000);
      // The instance's /metrics sums the threads' counters (sampled every probe interval): every
      // input was consumed at least once.
      let consumed = 0;
      await waitFor(
        `inflow_stream_records_in_total summed over the threads to reach ${COUNT}`,
        async () => {
          const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          consumed = [...text.matchAll(/^inflow_stream_records_in_total\{[^}]*\} (\d+)/gm)].reduce((a, m) => a + Number(m[1]), 0);
          return consumed >= COUNT ? true : undefined;
        },
        { timeoutMs: 30_000, describe: () => `last sum ${consumed}` },
      );
    } finally {
      stop.abort();
      await run.catch(() => undefined);
    }
    assert.equal(failed, undefined);
    const records = await readToEnd(client, output, { isolation: 'read_committed' });
    const { missing, duplicates } = completeness(records, COUNT);
    assert.deepEqual({ missing: missing.length, duplicates }, { missing: 0, duplicates: 0 }, lines.join('\n'));
    for (const r of records) assertMatchesReference(outputOf(r), ref);
    // Each thread took partitions and processed records: its last status line counts them.
    for (const t of [0, 1]) {
      const last = lines.filter((l) => l.startsWith(`[thread ${t}] stopped. in `)).at(-1);
      assert.match(last ?? '', /stopped\. in [1-9]\d* /, `thread ${t}: ${lines.filter((l) => l.startsWith(`[thread ${t}]`)).join('\n')}`);
    }
  });

  it('a thread that fails fails the instance, naming the thread, and the other thread is stopped', async () => {
    const input = uniqueName('threads-bad-in');
    const output = uniqueName('threads-bad-out');
    await createTopics(client, [input, output], 4);
    await produceDigits(client, input, ref, 200);
    // Not JSON: with errors.policy fail, the thread that owns this partition stops with SERIALIZATION.
    await produceRaw(client, [{ topic: input, partition: 2, key: Buffer.from('poison'), value: Buffer.from('{not json') }]);
    const { file } = await pipelineFile('threads-bad', input, output, 'fail');
    const lines: string[] = [];
    const stop = new AbortController();
    const timer = setTimeout(() => stop.abort(), 120_000);
    try {
      await assert.rejects(
        streamThreadsCommand({ file }, 2, (l) => lines.push(l), { signal: stop.signal, statusIntervalMs: 1000 }),
        {
          code: 'SERIALIZATION',
          message: /^stream thread [01] of 2 failed: .*not valid JSON/,
        },
      );
    } finally {
      clearTimeout(timer);
    }
    assert.ok(!stop.signal.aborted, 'the instance failed by itself, not by the test stopping it');
    assert.ok(
      lines.some((l) => /^thread [01] failed \(SERIALIZATION\): .*; stopping the other threads$/.test(l)),
      lines.join('\n'),
    );
  });
});
