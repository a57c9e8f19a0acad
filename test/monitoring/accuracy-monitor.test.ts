/**
 * The live-accuracy monitor on the real broker: a prediction log and a labels topic (labels on
 * time, late, twice, never, and bad ones) give per version and window the metrics scikit-learn
 * computes offline on the same records (src/monitoring/fixtures/accuracy-golden.json, made by
 * scripts/monitoring/accuracy-golden.py); bad labels are dead letters with the reason; the
 * Prometheus gauges the rollout's accuracy guard reads say the same; a missing labels topic is a
 * clear error; a restarted monitor reports no window twice.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import type { ConsumedRecord } from '../../src/kafka/types.ts';
import { accuracyConfigSchema } from '../../src/monitoring/accuracy-config.ts';
import { assertMatchesGolden, goldenRecords, loadAccuracyGolden } from '../../src/monitoring/fixtures/accuracy-golden.ts';
import { createAccuracyMonitor } from '../../src/monitoring/accuracy-monitor.ts';
import type { AccuracyReport } from '../../src/monitoring/label-join.ts';
import { addExposition, type SignalSnapshot } from '../../src/monitoring/rollout-signals.ts';
import { brokerOrSkip } from '../setup/broker.ts';

const bootstrap = brokerOrSkip();
const golden = loadAccuracyGolden();

async function readAll(client: KafkaClient, topic: string, count: number): Promise<ConsumedRecord[]> {
  const consumer = client.consumer({ groupId: `read-${randomBytes(4).toString('hex')}`, autoOffsetReset: 'earliest' });
  const out: ConsumedRecord[] = [];
  try {
    await consumer.subscribe([topic]);
    const deadline = Date.now() + 30_000;
    while (out.length < count && Date.now() < deadline) out.push(...(await consumer.poll({ timeoutMs: 500 })));
  } finally {
    await consumer.close();
  }
  return out;
}

describe('live accuracy monitor over Apache Kafka', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  const id = randomBytes(4).toString('hex');
  const topics = {
    log: `inflow-predictions-acc-${id}`,
    labels: `inflow-labels-acc-${id}`,
    monitoring: `inflow-monitoring-acc-${id}`,
    dlq: `inflow-monitor-dlq-acc-${id}`,
  };
  let client: KafkaClient;
  const config = accuracyConfigSchema.parse({
    labelsTopic: topics.labels,
    prediction: 'outputs.label',
    probabilities: 'outputs.probabilities',
    windowMs: golden.windowMs,
    labelWindowMs: golden.labelWindowMs,
    graceMs: golden.graceMs,
    deadLetterTopic: topics.dlq,
  });

  before(async () => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'accuracy-it' });
    const admin = client.admin();
    await admin.createTopics(
      [
        { topic: topics.log, partitions: 2 },
        { topic: topics.labels, partitions: 2 },
      ],
      { ifNotExists: true },
    );
    await admin.close();
  });
  after(async () => {
    const admin = client?.admin();
    await admin?.deleteTopics(Object.values(topics)).catch(() => undefined);
    await admin?.close();
    await client?.close();
  });

  it('says which setting names a labels topic that does not exist', async () => {
    const monitor = createAccuracyMonitor({
      client,
      predictionLog: topics.log,
      groupId: `acc-missing-${id}`,
      monitoringTopic: topics.monitoring,
      accuracy: { ...config, labelsTopic: `no-such-labels-${id}` },
      registry: new Registry(),
    });
    await assert.rejects(monitor.run(AbortSignal.timeout(30_000)), {
      code: 'NOT_FOUND',
      message: `labels topic (accuracy.labelsTopic) "no-such-labels-${id}" does not exist on the cluster: create it, or name the topic that holds them`,
    });
  });

  it("equals scikit-learn's metrics per version and window, dead-letters bad labels with the reason, and reports no window twice after a restart", async () => {
    const t0 = Math.floor(Date.now() / 60_000) * 60_000 - 3_600_000;
    const { predictions, labels } = goldenRecords(golden.classification, topics, t0);
    const bad = [
      { topic: topics.labels, key: Buffer.from('nobody'), value: Buffer.from('{"label":1}'), timestamp: t0 + 5_000 },
      { topic: topics.labels, key: Buffer.from('id-7'), value: Buffer.from('{"label":[1,2]}'), timestamp: t0 + 5_000 },
      { topic: topics.labels, key: Buffer.from('id-8'), value: Buffer.from('{"label":'), timestamp: t0 + 5_000 },
    ];
    const end = Math.max(...golden.classification.predictions.map((p) => p.ts));
    const entry = (key: string, ts: number, partition: number) => ({
      topic: topics.log,
      partition,
      key: Buffer.from(key),
      value: Buffer.from(JSON.stringify({ model: 'scorer', version: 1, outputs: { label: [0], probabilities: [1, 0, 0] } })),
      timestamp: t0 + ts,
    });
    // Every partition of both topics moves past the golden windows (a side's stream time is its slowest partition's).
    const sentinels = [0, 1].flatMap((partition) => [
      entry(`sentinel-p${partition}`, end, partition),
      {
        topic: topics.labels,
        partition,
        key: Buffer.from(`sentinel-p${partition}`),
        value: Buffer.from('{"label":0}'),
        timestamp: t0 + end + 1,
      },
    ]);
    const producer = client.producer({ acks: 'all' });
    // A prediction of a far window first in partition 0: held (its window stays open), so a restart reads
    // every record of partition 0 again, the reported windows' ones included.
    await producer.send([entry('early-bird', end + 1000, 0)]);
    // Labels first: the monitor must hold labels until their predictions are read.
    await producer.send([...labels.slice(0, 100), ...bad]);
    await producer.send(predictions);
    await producer.send([...labels.slice(100), ...sentinels]);
    await producer.close();

    const start = (registry: Registry, reports: AccuracyReport[]) => {
      const monitor = createAccuracyMonitor({
        client,
        predictionLog: topics.log,
        groupId: `acc-${id}`,
        monitoringTopic: topics.monitoring,
        accuracy: config,
        registry,
        commitIntervalMs: 200,
        onReport: (r) => reports.push(r),
      });
      const abort = new AbortController();
      return { monitor, abort, running: monitor.run(abort.signal) };
    };
    const registry = new Registry();
    const reports: AccuracyReport[] = [];
    const first = start(registry, reports);
    const deadline = Date.now() + 60_000;
    while ((reports.length < 4 || first.monitor.stats().outcomes.unknown_id < 1) && Date.now() < deadline) await delay(50);
    first.abort.abort();
    await first.running;
    assertMatchesGolden(reports, golden.classification.expected, t0);
    const outcomes = first.monitor.stats().outcomes;
    assert.equal(outcomes.invalid, 2);
    assert.equal(outcomes.unknown_id, 1);

    const dead = await readAll(client, topics.dlq, 3);
    const header = (r: ConsumedRecord, name: string) => r.headers.find(([k]) => k === name)?.[1].toString('utf8');
    assert.deepEqual(dead.map((r) => [r.key?.toString(), header(r, 'inflow.error.code'), header(r, 'inflow.error.message')]).sort(), [
      ['id-7', 'INVALID_ARGUMENT', 'label of the wrong type at "label": expected a class (a number or a string), got an array'],
      ['id-8', 'INVALID_ARGUMENT', `label on ${topics.labels} is not JSON`],
      ['nobody', 'NOT_FOUND', `no prediction with id "nobody" in the prediction log within ${golden.labelWindowMs} ms before the label`],
    ]);

    // What the rollout's accuracy guard reads: the latest window of each version.
    const snapshot: SignalSnapshot = { versions: new Map(), shadow: new Map(), accuracy: new Map(), unreachable: [] };
    addExposition(snapshot, await registry.metrics(), 'scorer');
    const latest = (v: number) => golden.classification.expected.filter((e) => e.version === v).at(-1)?.accuracy;
    assert.equal(snapshot.accuracy.get(1), latest(1));
    assert.equal(snapshot.accuracy.get(2), latest(2));
    assert.match(await registry.metrics(), /inflow_live_labels_total\{outcome="duplicate"\} [1-9]/);

    // A restart reads the held records again (the sentinel's open window) but reports nothing twice.
    const again: AccuracyReport[] = [];
    const second = start(new Registry(), again);
    while (second.monitor.stats().late < 100 && Date.now() < deadline + 30_000) await delay(50);
    second.abort.abort();
    await second.running;
    assert.deepEqual(again, []);
    const onTopic = await readAll(client, topics.monitoring, 4);
    assert.equal(onTopic.length, 4);
  });
});
