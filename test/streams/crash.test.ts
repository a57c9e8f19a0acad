/**
 * Crash recovery on the real broker: the embedded digits pipeline runs in a child process that
 * is SIGKILLed at seeded random points (whenever its output grew by a random amount) and
 * restarted with the same instance id, five times, then allowed to finish. Every kill must land
 * mid-stream: after the run made progress, before it finished the input. Exactly-once: a
 * read_committed reader sees exactly one prediction per input. At-least-once: none is missing.
 * The seed is printed in the diagnostics and failure messages; INFLOW_TEST_SEED=<seed> replays
 * the same kill points.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import type { Guarantee } from '../../src/streams/index.ts';
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
  endOffsetSum,
  groupLag,
  produceDigits,
  readToEnd,
  inputOf,
  seededRandom,
  uniqueName,
  outputOf,
  waitFor,
  waitForLagZero,
} from './fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const COUNT = 20_000;
const KILLS = 5;

describe('a pipeline process killed and restarted on Apache Kafka', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  let client: KafkaClient;
  let ref: DigitsReference;
  let running: PipelineProcess | undefined;

  before(async () => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'streams-it-crash' });
    ref = await digitsReference();
  });
  after(async () => {
    await running?.kill();
    await client?.close();
  });

  for (const guarantee of ['exactly-once', 'at-least-once'] as const satisfies readonly Guarantee[]) {
    it(`loses no prediction over ${KILLS} SIGKILLs${guarantee === 'exactly-once' ? ' and doubles none' : ''} (${guarantee})`, async (t) => {
      const started = Date.now();
      const random = seededRandom();
      t.diagnostic(`kill schedule: ${random.replay}`);
      const input = uniqueName('crash-in');
      const output = uniqueName('crash-out');
      const applicationId = uniqueName('crash-app');
      await createTopics(client, [input, output, `${applicationId}-dlq`]);
      await produceDigits(client, input, ref, COUNT);
      const config: ChildConfig = {
        bootstrap: bootstrap ?? [],
        input,
        output,
        applicationId,
        instanceId: 'crashy',
        guarantee,
        maxBatch: 64,
        sessionTimeoutMs: 6000,
      };
      const admin = client.admin();
      const kills: string[] = [];
      const logs: string[] = [];
      try {
        for (let k = 0; k < KILLS; k++) {
          // The group's committed offsets each run starts from (printed on a loss).
          const committed = (await admin.groupLag(applicationId, [input])).map((l) => `p${l.partition}@${l.committed}`).join(' ');
          logs.push(`run ${k + 1} starts from committed ${committed}`);
          const spawned = Date.now();
          const child = startPipelineProcess(config);
          running = child;
          await child.started;
          const joined = Date.now();
          // Kill once the output grew by a random 1 000–3 000 records (aborted and duplicate ones count
          // too): five runs make at most 15 000 of the 20 000 predictions, so every kill is mid-stream.
          const from = await endOffsetSum(admin, output);
          const threshold = from + BigInt(1000 + Math.floor(random.next() * 2000));
          let at = from;
          let finished = false;
          await waitFor(
            `the output of run ${k + 1} to pass ${threshold} (${random.replay})`,
            async () => {
              at = await endOffsetSum(admin, output);
              finished = (await groupLag(admin, applicationId, input)) === 0n;
              return at >= threshold || finished ? true : undefined;
            },
            { timeoutMs: 30_000, everyMs: 20, describe: () => `at ${at}; child output:\n${child.output()}` },
          );
          await child.kill();
          // Mid-stream: the run produced output before its kill, and input was left for the next run.
          const lagAfterKill = await groupLag(admin, applicationId, input);
          assert.ok(
            !finished && lagAfterKill > 0n,
            `run ${k + 1} finished the input before its kill point ${threshold} (${random.replay})`,
          );
          assert.ok(at > from, `run ${k + 1} was killed before producing anything (${random.replay})`);
          logs.push(child.output());
          const rewound = child.output().split('partitions rewound').length - 1;
          kills.push(
            `${at} (joined ${joined - spawned} ms, killed ${Date.now() - joined} ms later${rewound > 0 ? `, ${rewound} rewinds` : ''})`,
          );
        }
        const committed = (await admin.groupLag(applicationId, [input])).map((l) => `p${l.partition}@${l.committed}`).join(' ');
        logs.push(`last run starts from committed ${committed}`);
        const last = startPipelineProcess(config);
        running = last;
        await last.started;
        await waitForLagZero(client, applicationId, input, 60_000);
        assert.equal(await last.stop(), 0, `the last run closes cleanly:\n${last.output()}`);
        logs.push(last.output());
        running = undefined;
      } finally {
        await admin.close();
        // A failed run's child would keep this file's process alive: stop it before the next test.
        await running?.kill();
        running = undefined;
      }

      const records = await readToEnd(client, output, { isolation: guarantee === 'exactly-once' ? 'read_committed' : 'read_uncommitted' });
      const { missing, duplicates } = completeness(records, COUNT);
      t.diagnostic(
        `${guarantee}: killed at output end offsets ${kills.join(', ')}; ${records.length} outputs for ${COUNT} inputs, ${duplicates} duplicates; ${Date.now() - started} ms; ${random.replay}`,
      );
      if (missing.length > 0) {
        // Where the lost inputs sit, and what each run logged: enough to tell a consumer gap from an offset-commit bug.
        const inputs = await readToEnd(client, input);
        const lost = new Set(missing);
        const ranges = new Map<number, bigint[]>();
        for (const r of inputs) {
          if (!lost.has(inputOf(r).id)) continue;
          ranges.set(r.partition, [...(ranges.get(r.partition) ?? []), r.offset]);
        }
        const spans = (offsets: bigint[]): string => {
          const out: string[] = [];
          let from = offsets[0] as bigint;
          let to = from;
          for (const o of [...offsets.slice(1), -1n]) {
            if (o === to + 1n) to = o;
            else {
              out.push(from === to ? `${from}` : `${from}–${to}`);
              from = o;
              to = o;
            }
          }
          return out.join(', ');
        };
        const where = [...ranges].map(([p, offsets]) => `p${p}: ${offsets.length} at ${spans(offsets)}`);
        t.diagnostic(`lost inputs by partition: ${where.join('; ')}\nrun logs:\n${logs.join('\n---\n')}`);
      }
      assert.deepEqual(missing.slice(0, 20), [], `${missing.length} inputs have no prediction (${random.replay})`);
      if (guarantee === 'exactly-once') {
        assert.equal(duplicates, 0, `read_committed sees each prediction once (${random.replay})`);
        assert.equal(records.length, COUNT);
        assertPerKeyOrder(records);
      }
      for (const r of records) assertMatchesReference(outputOf(r), ref);
    });
  }
});
