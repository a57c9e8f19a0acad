/**
 * The windowed stream-stream join on the real broker, from a pipeline file: predictions joined
 * with the labels that arrive later (4 co-partitioned partitions each, exactly-once). A label
 * within the window of its prediction makes one output; one outside it makes none; a label that
 * comes before its prediction still joins. The left join gives each prediction one output.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createKafkaClient, type KafkaClient, type ProducerRecord } from '../../src/kafka/index.ts';
import { createStreamsRunner } from '../../src/streams/index.ts';
import { buildPipeline, parsePipelineConfig } from '../../src/streams/pipeline/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import { createTopics, json, produceRaw, readToEnd, uniqueName, waitForLagZero } from './fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const N = 60;
const WINDOW = 60_000;
/** The labels' timestamps go back and forth by up to 110 s (+90 s, then −20 s): a grace that covers it, so none is late. */
const GRACE = 120_000;
/** id % 3: 0 → the label 30 s after the prediction, 1 → 90 s after (outside), 2 → 20 s before it. */
const offsetOf = (id: number) => [30_000, 90_000, -20_000][id % 3] as number;

describe('windowed stream-stream join on Apache Kafka', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  let client: KafkaClient;
  before(() => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'streams-it-windowed-join' });
  });
  after(async () => {
    await client?.close();
  });

  /** Produces N predictions and their labels, runs the join step of `type`, returns the outputs. */
  async function run(type: 'inner' | 'left') {
    const predictions = uniqueName('predictions');
    const labels = uniqueName('labels');
    const output = uniqueName('scored');
    const applicationId = uniqueName('join-app');
    await createTopics(client, [predictions, labels, output, `${applicationId}-dlq`], 4);
    const t0 = Date.now() - 3_600_000;
    const records: ProducerRecord[] = [];
    for (let id = 0; id < N; id++) {
      const at = t0 + id * 1_000;
      records.push({ topic: predictions, key: Buffer.from(`tx${id}`), value: json.serialize({ id, predicted: id % 2 }), timestamp: at });
      records.push({
        topic: labels,
        key: Buffer.from(`tx${id}`),
        value: json.serialize({ label: 1 - (id % 2) }),
        timestamp: at + offsetOf(id),
      });
    }
    // Then, on every partition of both topics, a record 30 min later: it moves both stream times
    // past every window (+ grace), so a left join's unmatched predictions go out.
    for (let partition = 0; partition < 4; partition++) {
      for (const topic of [predictions, labels]) {
        const value = json.serialize({ id: -1 - partition, predicted: 0, label: 0 });
        records.push({ topic, partition, key: Buffer.from(`close${partition}`), value, timestamp: t0 + 1_800_000 });
      }
    }
    await produceRaw(client, records);
    const yaml = `
applicationId: ${applicationId}
guarantee: exactly-once
pipeline:
  - source: { topic: ${predictions}, key: string }
  - join: { name: with-label, stream: { topic: ${labels}, key: string }, type: ${type}, windowMs: ${WINDOW}, graceMs: ${GRACE}, as: label, fields: [label] }
  - to: { topic: ${output} }
`;
    const built = await buildPipeline(parsePipelineConfig(yaml, 'scored.yaml'));
    const runner = createStreamsRunner(built.topology, { client, ...built.runnerOptions, instanceId: 'only', lagIntervalMs: 0 });
    await runner.start();
    try {
      await waitForLagZero(client, applicationId, predictions);
      await waitForLagZero(client, applicationId, labels);
    } finally {
      await runner.close();
      await built.close();
    }
    const out = (await readToEnd(client, output, { isolation: 'read_committed' }))
      .map((r) => ({
        key: r.key?.toString(),
        timestamp: r.timestamp,
        value: json.deserialize(r.value) as { id: number; predicted: number; label?: { label: number } },
      }))
      .filter((o) => o.value.id >= 0);
    return { out, t0 };
  }

  it('joins each prediction with its label when they are at most the window apart, in either order, and not otherwise', async () => {
    const { out, t0 } = await run('inner');
    const want = Array.from({ length: N }, (_, id) => id).filter((id) => id % 3 !== 1);
    assert.deepEqual(
      out.map((o) => o.value.id).sort((a, b) => a - b),
      want,
      'one output per pair inside the window, none outside',
    );
    for (const o of out) {
      const id = o.value.id;
      assert.equal(o.key, `tx${id}`);
      assert.deepEqual(o.value, { id, predicted: id % 2, label: { label: 1 - (id % 2) } });
      assert.equal(o.timestamp, t0 + id * 1_000 + Math.max(0, offsetOf(id)), 'the later timestamp of the pair');
    }
  });

  it('a left join gives every prediction exactly one output: joined with its label, or alone once its window closed', async () => {
    const { out, t0 } = await run('left');
    assert.deepEqual(
      out.map((o) => o.value.id).sort((a, b) => a - b),
      Array.from({ length: N }, (_, id) => id),
      'one output per prediction, none twice (no eager unmatched result before the join)',
    );
    for (const o of out) {
      const id = o.value.id;
      if (id % 3 === 1) {
        assert.deepEqual(o.value, { id, predicted: id % 2 }, 'its label is 90 s away: alone');
        assert.equal(o.timestamp, t0 + id * 1_000, "the prediction's timestamp");
      } else assert.deepEqual(o.value, { id, predicted: id % 2, label: { label: 1 - (id % 2) } });
    }
  });
});
