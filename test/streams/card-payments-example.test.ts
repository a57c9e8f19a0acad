/**
 * The stateful example end to end on the real broker (and the real Schema Registry for its Avro
 * variant): examples/pipelines/card-payments.yaml and card-payments-avro.yaml as shipped — only
 * topic names, application id and registry URL changed for the run — over the bundled 1501
 * generated payments of models/datasets/card-payments.json and its merchants table, 3 input
 * partitions, exactly-once. Every payment is scored exactly once, its features equal the pandas
 * reference models/build.py computed (exact: counts, sums, means, maxima, gaps in integers) and
 * its fraud probability Python onnxruntime's on those features.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  compareWithReference,
  loadCardPayments,
  type CardPaymentsDataset,
  type ScoredPayment,
} from '../../src/cli/demo-stateful-dataset.ts';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { createSchemaRegistryClient } from '../../src/kafka/schema-registry/registry-client.ts';
import { createRegistrySerde } from '../../src/kafka/schema-registry/registry-serde.ts';
import type { ProducerRecord } from '../../src/kafka/types.ts';
import { createStreamsRunner } from '../../src/streams/index.ts';
import { buildPipeline, parsePipelineConfig } from '../../src/streams/pipeline/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import { registryOrSkip } from '../setup/schema-registry.ts';
import { createTopics, produceRaw, ROOT, readToEnd, uniqueName, waitForLagZero } from './fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const url = registryOrSkip();
const EXAMPLES = join(ROOT, 'examples', 'pipelines');
const SCHEMAS = join(ROOT, 'examples', 'schemas');

type Codec = {
  encode(topic: string, schema: string, value: unknown): Promise<Buffer>;
  decode(topic: string, bytes: Buffer): Promise<unknown>;
};

const jsonCodec: Codec = {
  encode: async (_topic, _schema, value) => Buffer.from(JSON.stringify(value)),
  decode: async (_topic, bytes) => JSON.parse(bytes.toString('utf8')) as unknown,
};

function avroCodec(registryUrl: string): Codec {
  const client = createSchemaRegistryClient({ url: registryUrl });
  return {
    async encode(topic, schema, value) {
      const text = await readFile(join(SCHEMAS, schema), 'utf8');
      return (await createRegistrySerde({ client, format: 'avro', topic, write: { schema: text } }).serialize(value)) as Buffer;
    },
    decode: async (topic, bytes): Promise<unknown> => createRegistrySerde({ client, format: 'avro', topic }).deserialize(bytes),
  };
}

/** Runs `file` as shipped on fresh topics; returns the scored outputs. */
async function runExample(client: KafkaClient, dataset: CardPaymentsDataset, file: string, codec: Codec): Promise<ScoredPayment[]> {
  const avro = file.includes('avro');
  const prefix = uniqueName('cards');
  const applicationId = uniqueName('cards-app');
  const [payments, merchants, scored, dlq] = avro
    ? ['card-payments-avro', 'merchants-avro', 'card-payments-avro-scored', 'card-payments-avro-dlq']
    : ['card-payments', 'merchants', 'card-payments-scored', 'card-payments-dlq'];
  const topic = (t: string): string => `${prefix}-${t}`;
  let text = await readFile(join(EXAMPLES, file), 'utf8');
  // Longest names first, so "card-payments" does not rename a part of "card-payments-scored".
  for (const t of [scored, dlq, payments, merchants]) text = text.replaceAll(`topic: ${t}`, `topic: ${topic(t)}`);
  text = text
    .replace(`deadLetterTopic: ${dlq}`, `deadLetterTopic: ${topic(dlq)}`)
    .replace(/^applicationId: .*$/m, `applicationId: ${applicationId}`)
    .replace('url: http://127.0.0.1:8081/apis/ccompat/v7', `url: ${url}`);
  assert.ok(!text.includes(`topic: ${payments} `) && text.includes(topic(scored)), 'the topics were renamed');
  await createTopics(client, [topic(payments), topic(merchants), topic(scored), topic(dlq)], 3);

  // The table before the pipeline starts: the runner reads it to its end before any payment.
  const rows: ProducerRecord[] = [];
  for (const m of dataset.merchants) {
    const value = await codec.encode(topic(merchants), 'merchant.avsc', { category: m.category, risk: m.risk });
    rows.push({ topic: topic(merchants), key: Buffer.from(m.merchant), value });
  }
  await produceRaw(client, rows);
  const events: ProducerRecord[] = [];
  for (const e of dataset.events) {
    events.push({
      topic: topic(payments),
      key: Buffer.from(e.card),
      value: await codec.encode(topic(payments), 'card-payment.avsc', e),
      timestamp: e.ts,
    });
  }
  await produceRaw(client, events);

  const built = await buildPipeline(parsePipelineConfig(text, file), { baseDir: EXAMPLES, source: file });
  const runner = createStreamsRunner(built.topology, { client, ...built.runnerOptions, instanceId: 'only', lagIntervalMs: 0 });
  await runner.start();
  try {
    await waitForLagZero(client, applicationId, topic(payments));
  } finally {
    await runner.close();
    await built.close();
  }
  assert.deepEqual(await readToEnd(client, topic(dlq), { isolation: 'read_committed' }), [], 'no dead letters');
  const out = await readToEnd(client, topic(scored), { isolation: 'read_committed' });
  const values: ScoredPayment[] = [];
  for (const r of out) {
    const v = (await codec.decode(topic(scored), r.value as Buffer)) as ScoredPayment & { card?: unknown };
    assert.equal(r.key?.toString(), v.card, 'keyed by card');
    values.push(v);
  }
  return values;
}

describe('the card-payments example on Apache Kafka', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  let client: KafkaClient;
  let dataset: CardPaymentsDataset;
  before(async () => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'card-payments-it' });
    dataset = await loadCardPayments();
  });
  after(async () => {
    await client?.close();
  });

  it('scores every generated payment once with the pandas reference features and Python onnxruntime probabilities (JSON)', async () => {
    const out = await runExample(client, dataset, 'card-payments.yaml', jsonCodec);
    assert.deepEqual(compareWithReference(dataset, out).slice(0, 10), []);
    assert.equal(out.length, dataset.events.length);
  });

  it('does the same on Avro records under the Schema Registry (card-payments-avro.yaml)', {
    skip: url ? false : 'no Schema Registry',
  }, async () => {
    const out = await runExample(client, dataset, 'card-payments-avro.yaml', avroCodec(url as string));
    assert.deepEqual(compareWithReference(dataset, out).slice(0, 10), []);
    assert.equal(out.length, dataset.events.length);
    const first = out[0] as Record<string, unknown>;
    assert.equal(typeof (first.merchant_info as { category?: unknown } | null)?.category, 'string', 'the joined row, as an Avro record');
  });
});
