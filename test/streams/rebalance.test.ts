/**
 * Rebalance on the real broker: two pipeline instances (same application id, different
 * instance ids) share 8 partitions — one in this process, one in a child process. Midway the
 * child is SIGKILLed; once its session times out the survivor takes its partitions over and
 * finishes. At-least-once: no input is missing. Exactly-once: read_committed sees exactly one
 * prediction per input. A graceful close hands partitions over at once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import type { LocalInference } from '../../src/serving/local-inference.ts';
import { createStreamsRunner, type Guarantee, type StreamsRunner } from '../../src/streams/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import type { ChildConfig } from './fixtures/pipeline-child.ts';
import { type PipelineProcess, startPipelineProcess } from './fixtures/pipeline-process.ts';
import {
  assertMatchesReference,
  assertPerKeyOrder,
  completeness,
  createTopics,
  type DigitsReference,
  digitsReference,
  digitsTopology,
  embeddedInferencer,
  endOffsetSum,
  produceDigits,
  readToEnd,
  seededRandom,
  uniqueName,
  outputOf,
  waitFor,
  waitForLagZero,
} from './fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const COUNT = 10_000;
const SESSION_MS = 6000;

describe('two pipeline instances sharing partitions on Apache Kafka', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  let client: KafkaClient;
  let inferencer: LocalInference;
  let ref: DigitsReference;
  let child: PipelineProcess | undefined;

  before(async () => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'streams-it-rebalance' });
    inferencer = await embeddedInferencer();
    ref = await digitsReference();
  });
  after(async () => {
    await child?.kill();
    await inferencer?.close();
    await client?.close();
  });

  function assigned(runner: StreamsRunner, n: number): () => true | undefined {
    return () => (runner.stats().assigned.length === n ? true : undefined);
  }

  for (const guarantee of ['at-least-once', 'exactly-once'] as const satisfies readonly Guarantee[]) {
    it(`the survivor takes over a SIGKILLed instance's partitions and nothing is lost${guarantee === 'exactly-once' ? ' or doubled' : ''} (${guarantee})`, async (t) => {
      const started = Date.now();
      const random = seededRandom();
      t.diagnostic(`kill point: ${random.replay}`);
      const input = uniqueName('rb-in');
      const output = uniqueName('rb-out');
      const applicationId = uniqueName('rb-app');
      await createTopics(client, [input, output, `${applicationId}-dlq`]);

      const survivor = createStreamsRunner(digitsTopology(inferencer, input, output), {
        client,
        applicationId,
        instanceId: 'survivor',
        guarantee,
        sessionTimeoutMs: SESSION_MS,
        lagIntervalMs: 0,
      });
      await survivor.start();
      try {
        const config: ChildConfig = {
          bootstrap: bootstrap ?? [],
          input,
          output,
          applicationId,
          instanceId: 'victim',
          guarantee,
          maxBatch: 64,
          sessionTimeoutMs: SESSION_MS,
          // Also the transaction timeout: how long the victim's open transaction blocks read_committed readers.
          requestTimeoutMs: 10_000,
        };
        child = startPipelineProcess(config);
        await child.started;
        await waitFor('the two instances to split the 8 partitions', assigned(survivor, 4), { timeoutMs: 20_000 });

        await produceDigits(client, input, ref, COUNT);
        const admin = client.admin();
        const threshold = BigInt(2000 + Math.floor(random.next() * 2000));
        let at = 0n;
        try {
          await waitFor(
            `the output to pass ${threshold}`,
            async () => {
              at = await endOffsetSum(admin, output);
              return at >= threshold ? true : undefined;
            },
            { timeoutMs: 30_000, everyMs: 20, describe: () => `at ${at}` },
          );
        } finally {
          await admin.close();
        }
        // The victim's partitions, and what it committed on them before its kill: its real work.
        const mine = new Set(survivor.stats().assigned.map((p) => p.partition));
        let victimCommitted = 0n;
        const offsets = client.admin();
        try {
          await waitFor(
            'the victim to commit work on its own partitions',
            async () => {
              const committed = await offsets.groupOffsets(applicationId, [input]);
              victimCommitted = committed.filter((o) => !mine.has(o.partition) && o.offset > 0n).reduce((a, o) => a + o.offset, 0n);
              return victimCommitted > 0n ? true : undefined;
            },
            { timeoutMs: 30_000, describe: () => `victim committed ${victimCommitted}; victim output:\n${child?.output() ?? ''}` },
          );
        } finally {
          await offsets.close();
        }
        assert.equal(mine.size, 4, 'the survivor still owned its 4 partitions at the kill');
        const victim = child;
        await victim.kill();
        const killed = Date.now();
        await waitFor('the survivor to own all 8 partitions', assigned(survivor, 8), { timeoutMs: SESSION_MS + 20_000 });
        const tookOver = Date.now() - killed;
        await waitForLagZero(client, applicationId, input, 60_000);
        const before = (await survivor.metrics.recordsIn.get()).values[0]?.value ?? 0;
        t.diagnostic(
          `killed at output ${at}; the victim had committed ${victimCommitted} inputs; takeover ${tookOver} ms after the kill; survivor consumed ${before} records`,
        );
        assert.ok(victimCommitted > 0n, 'the victim did real work: it committed inputs of its partitions before its kill');
      } finally {
        await child?.kill();
        await survivor.close();
      }
      assert.equal(survivor.stats().state, 'closed');

      const readStarted = Date.now();
      const records = await readToEnd(client, output, { isolation: guarantee === 'exactly-once' ? 'read_committed' : 'read_uncommitted' });
      const { missing, duplicates } = completeness(records, COUNT);
      t.diagnostic(
        `${guarantee}: ${records.length} outputs for ${COUNT} inputs, ${duplicates} duplicates; read in ${Date.now() - readStarted} ms; ${Date.now() - started} ms in all`,
      );
      assert.deepEqual(missing.slice(0, 20), [], `${missing.length} inputs have no prediction (${random.replay})`);
      if (guarantee === 'exactly-once') {
        assert.equal(duplicates, 0, `read_committed sees each prediction once (${random.replay})`);
        assertPerKeyOrder(records);
      }
      for (const r of records) assertMatchesReference(outputOf(r), ref);
    });
  }

  for (const guarantee of ['at-least-once', 'exactly-once'] as const satisfies readonly Guarantee[]) {
    it(`hands partitions over at once when an instance closes gracefully, and nothing is lost${guarantee === 'exactly-once' ? ' or doubled' : ''} (${guarantee})`, async (t) => {
      const input = uniqueName('rbg-in');
      const output = uniqueName('rbg-out');
      const applicationId = uniqueName('rbg-app');
      await createTopics(client, [input, output, `${applicationId}-dlq`]);
      const make = (instanceId: string) =>
        createStreamsRunner(digitsTopology(inferencer, input, output), {
          client,
          applicationId,
          instanceId,
          guarantee,
          sessionTimeoutMs: SESSION_MS,
          lagIntervalMs: 0,
        });
      const a = make('a');
      const b = make('b');
      await a.start();
      try {
        await b.start();
        await waitFor('the two instances to split the 8 partitions', assigned(a, 4), { timeoutMs: 20_000 });
        await produceDigits(client, input, ref, COUNT / 2);
        await waitFor('both instances to have consumed records', async () => {
          const n = async (r: StreamsRunner) => (await r.metrics.recordsIn.get()).values[0]?.value ?? 0;
          return (await n(a)) > 0 && (await n(b)) > 0 ? true : undefined;
        });
        const closing = Date.now();
        await b.close();
        await waitFor('a to own all 8 partitions', assigned(a, 8), { timeoutMs: SESSION_MS });
        t.diagnostic(`takeover ${Date.now() - closing} ms after close() began`);
        await waitForLagZero(client, applicationId, input, 30_000);
      } finally {
        await b.close();
        await a.close();
      }
      const records = await readToEnd(client, output, { isolation: guarantee === 'exactly-once' ? 'read_committed' : 'read_uncommitted' });
      const { missing, duplicates } = completeness(records, COUNT / 2);
      t.diagnostic(`${guarantee}: ${records.length} outputs for ${COUNT / 2} inputs, ${duplicates} duplicates`);
      assert.deepEqual(missing.slice(0, 20), [], `${missing.length} inputs have no prediction`);
      if (guarantee === 'exactly-once') {
        assert.equal(duplicates, 0, 'read_committed sees each prediction once');
        assertPerKeyOrder(records);
      }
    });
  }
});
