/**
 * The embedded digits pipeline on the real broker: 2 000 JSON records over 8 partitions through
 * digits-mlp in the stream processor, with both guarantees. Every prediction equals Python
 * onnxruntime's for its row, none is lost or doubled, per-key order holds, and records were
 * really micro-batched.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import type { LocalInference } from '../../src/serving/local-inference.ts';
import { createStreamsRunner, type Guarantee } from '../../src/streams/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import {
  assertMatchesReference,
  assertPerKeyOrder,
  completeness,
  createTopics,
  type DigitsReference,
  digitsReference,
  digitsTopology,
  embeddedInferencer,
  produceDigits,
  readToEnd,
  uniqueName,
  outputOf,
  waitForLagZero,
} from './fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const COUNT = 2000;

describe('the embedded digits pipeline on Apache Kafka', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  let client: KafkaClient;
  let inferencer: LocalInference;
  let ref: DigitsReference;

  before(async () => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'streams-it-embedded' });
    inferencer = await embeddedInferencer();
    ref = await digitsReference();
  });
  after(async () => {
    await inferencer?.close();
    await client?.close();
  });

  for (const guarantee of ['at-least-once', 'exactly-once'] as const satisfies readonly Guarantee[]) {
    it(`predicts every record once, like Python onnxruntime, in per-key order, batched (${guarantee})`, async (t) => {
      const input = uniqueName('digits-in');
      const output = uniqueName('digits-out');
      const applicationId = uniqueName('digits-app');
      await createTopics(client, [input, output, `${applicationId}-dlq`]);
      await produceDigits(client, input, ref, COUNT);

      const runner = createStreamsRunner(digitsTopology(inferencer, input, output, { maxBatch: 64 }), {
        client,
        applicationId,
        instanceId: 'only',
        guarantee,
        lagIntervalMs: 0,
      });
      await runner.start();
      try {
        await waitForLagZero(client, applicationId, input);
      } finally {
        await runner.close();
      }
      assert.equal(runner.stats().state, 'closed');

      const records = await readToEnd(client, output, { isolation: guarantee === 'exactly-once' ? 'read_committed' : 'read_uncommitted' });
      assert.equal(records.length, COUNT, 'one output per input');
      const { missing, duplicates } = completeness(records, COUNT);
      assert.deepEqual({ missing: missing.slice(0, 10), duplicates }, { missing: [], duplicates: 0 });
      for (const r of records) assertMatchesReference(outputOf(r), ref);
      assertPerKeyOrder(records);
      for (const r of records) {
        assert.equal(r.headers.find(([k]) => k === 'inflow-model')?.[1].toString(), 'digits-mlp');
      }

      // The histogram counts inference calls by rows: fewer calls than records means batches > 1.
      const batch = await runner.metrics.batchSize.get();
      const sum = batch.values.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0;
      const calls = batch.values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
      const single =
        batch.values.find((v) => v.metricName?.endsWith('_bucket') && (v.labels as Record<string, unknown>).le === 1)?.value ?? 0;
      t.diagnostic(`${calls} inference calls for ${COUNT} records: mean ${(sum / calls).toFixed(1)} rows per call`);
      assert.equal(sum, COUNT, 'every record went through one inference call');
      assert.ok(single < calls, `some calls carried more than one row (calls ${calls}, single-row ${single})`);
      assert.ok(calls < COUNT / 2, `records were batched: ${calls} calls for ${COUNT} records (mean ${(sum / calls).toFixed(1)} rows)`);
    });
  }
});
