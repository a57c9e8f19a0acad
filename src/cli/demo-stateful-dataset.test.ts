/**
 * examples/pipelines/card-payments.yaml on the test driver with the real card-fraud-gbt model:
 * the features it computes for every payment of the bundled dataset equal the pandas reference
 * models/build.py wrote, and the fraud probabilities Python onnxruntime's.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { jsonSerde, stringSerde } from '../kafka/serdes.ts';
import { silentLogger } from '../observability/logger.ts';
import { setRuntimeLogger } from '../runtime/index.ts';
import { createLocalInference } from '../serving/local-inference.ts';
import { buildPipeline, loadPipelineFile } from '../streams/pipeline/index.ts';
import { createTopologyTestDriver } from '../streams/testing/topology-test-driver.ts';
import { compareWithReference, loadCardPayments } from './demo-stateful-dataset.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const PIPELINE = join(ROOT, 'examples', 'pipelines', 'card-payments.yaml');

describe('the card-payments example', () => {
  it('computes the pandas reference features for every payment and scores each once, like Python onnxruntime', async () => {
    setRuntimeLogger(silentLogger);
    const dataset = await loadCardPayments();
    const repo = await mkdtemp(join(tmpdir(), 'inflow-cards-'));
    await cp(join(ROOT, 'models', 'repository', 'card-fraud-gbt'), join(repo, 'card-fraud-gbt'), {
      recursive: true,
      preserveTimestamps: true,
    });
    const built = await buildPipeline(await loadPipelineFile(PIPELINE), {
      baseDir: dirname(PIPELINE),
      source: PIPELINE,
      createLocalInference: (o) => createLocalInference({ ...o, modelRepository: repo, watch: false }),
    });
    const driver = await createTopologyTestDriver(built.topology, { applicationId: 'card-payments-scorer', partitions: 3 });
    try {
      const serdes = { key: stringSerde, value: jsonSerde<Record<string, unknown>>() };
      for (const m of dataset.merchants) await driver.pipe('merchants', m.merchant, { category: m.category, risk: m.risk }, { serdes });
      // The table first, as a deployment would have it: then every payment finds its merchant.
      await driver.flush();
      for (const e of dataset.events) await driver.pipe('card-payments', e.card, { ...e }, { serdes, timestamp: e.ts });
      await driver.flush();
      driver.advanceTime(2);
      await driver.flush();
      const scored = (await driver.read('card-payments-scored', serdes)).map((r) => r.value ?? {});
      assert.deepEqual(compareWithReference(dataset, scored).slice(0, 10), []);
      assert.equal(scored.length, dataset.events.length);
      assert.deepEqual(await driver.deadLetters(), []);
      // The features the model saw are in the output, with the joined merchant row.
      const first = scored[0] as Record<string, unknown>;
      assert.deepEqual(Object.keys(first), [
        'id',
        'card',
        'ts',
        'amount',
        'n_10m',
        'sum_amount_10m',
        'mean_amount_10m',
        'max_amount_10m',
        'gap_ms',
        'merchant',
        'merchant_info',
        'fraud',
        'fraud_probability',
      ]);
      const merchant = dataset.merchants.find((m) => m.merchant === first.merchant);
      assert.deepEqual(first.merchant_info, { category: merchant?.category, risk: merchant?.risk });
      // The model is worth running: better than calling every payment legitimate, and it finds most frauds.
      const labels = new Map(dataset.events.map((e, i) => [e.id, dataset.labels[i]]));
      const correct = scored.filter((o) => o.fraud === labels.get(o.id as string)).length / scored.length;
      const legit = dataset.labels.filter((l) => l === 0).length / dataset.labels.length;
      const frauds = scored.filter((o) => labels.get(o.id as string) === 1);
      const recall = frauds.filter((o) => o.fraud === 1).length / frauds.length;
      assert.ok(correct > legit && recall > 0.6, `accuracy ${correct} (${legit} calling everything legitimate), fraud recall ${recall}`);
    } finally {
      await driver.close();
      await built.close();
      await rm(repo, { recursive: true, force: true });
    }
  });
});
