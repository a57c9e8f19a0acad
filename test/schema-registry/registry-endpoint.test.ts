/**
 * The Kafka-native endpoint on Schema Registry formats, on the real broker and registry: Avro
 * requests whose fields are the model's inputs are answered with Avro responses whose fields are
 * its outputs (as Python onnxruntime computes them), every prediction is logged in Avro under
 * the log's own schema, and a request without the input field dead-letters with the reason.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { createSchemaRegistryClient } from '../../src/kafka/schema-registry/registry-client.ts';
import { createRegistrySerde } from '../../src/kafka/schema-registry/registry-serde.ts';
import { startKafkaEndpoint } from '../../src/server/kafka/kafka-endpoint-runner.ts';
import type { LocalInference } from '../../src/serving/local-inference.ts';
import { DeadLetterHeader } from '../../src/streams/runtime/dead-letter.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import { registryOrSkip } from '../setup/schema-registry.ts';
import {
  assertMatchesReference,
  createTopics,
  type DigitsReference,
  digitsReference,
  embeddedInferencer,
  keyOf,
  produceRaw,
  readToEnd,
  uniqueName,
  waitForLagZero,
} from '../streams/fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const url = registryOrSkip();
const COUNT = 120;
const floats = { type: 'array', items: 'float' };

const REQUEST = JSON.stringify({ type: 'record', name: 'DigitRequest', namespace: 'inflow.it', fields: [{ name: 'input', type: floats }] });
const RESPONSE = JSON.stringify({
  type: 'record',
  name: 'DigitResponse',
  namespace: 'inflow.it',
  fields: [
    { name: 'label', type: 'long' },
    { name: 'probabilities', type: floats },
  ],
});
const LOG = JSON.stringify({
  type: 'record',
  name: 'PredictionLogEntry',
  namespace: 'inflow.it',
  fields: [
    { name: 'requestId', type: 'string' },
    { name: 'key', type: ['null', 'string'] },
    { name: 'model', type: 'string' },
    { name: 'version', type: 'int' },
    {
      name: 'outputs',
      type: {
        type: 'record',
        name: 'DigitOutputs',
        fields: [
          { name: 'label', type: { type: 'array', items: 'long' } },
          { name: 'probabilities', type: floats },
        ],
      },
    },
    { name: 'latencyMs', type: 'double' },
    { name: 'timestamp', type: 'long' },
    { name: 'loggedAt', type: 'long' },
    {
      name: 'source',
      type: {
        type: 'record',
        name: 'Source',
        fields: [
          { name: 'topic', type: 'string' },
          { name: 'partition', type: 'int' },
          { name: 'offset', type: 'string' },
        ],
      },
    },
  ],
});

const skip = !bootstrap ? 'no Kafka broker' : !url ? 'no Schema Registry' : false;

describe('the Kafka-native endpoint on Schema Registry formats', { skip }, () => {
  let client: KafkaClient;
  let ref: DigitsReference;
  let inference: LocalInference;

  before(async () => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'registry-endpoint-it' });
    ref = await digitsReference();
    inference = await embeddedInferencer();
  });
  after(async () => {
    await inference?.close();
    await client?.close();
  });

  it('answers Avro requests field by field in Avro, logs each prediction in Avro, and dead-letters a request without the input field', async () => {
    const requests = uniqueName('avro-requests');
    const responses = uniqueName('avro-responses');
    const log = uniqueName('avro-prediction-log');
    const errors = uniqueName('avro-errors');
    const applicationId = uniqueName('avro-endpoint');
    await createTopics(client, [requests, responses, log, errors], 4);
    const registry = createSchemaRegistryClient({ url: url as string });
    const writer = createRegistrySerde({ client: registry, format: 'avro', topic: requests, write: { schema: REQUEST } });
    const headers = (id: number | string) =>
      [
        ['inflow-model', Buffer.from('digits-mlp')],
        ['inflow-request-id', Buffer.from(String(id))],
      ] as const;
    const records = [];
    for (let id = 0; id < COUNT; id++) {
      const value = (await writer.serialize({ input: ref.pixelsOf(id) })) as Buffer;
      records.push({ topic: requests, key: Buffer.from(keyOf(id)), value, headers: [...headers(id)] });
    }
    // A record of another schema: its fields are not the model's inputs.
    const other = createRegistrySerde({
      client: registry,
      format: 'avro',
      topic: `${requests}-other`,
      write: { schema: JSON.stringify({ type: 'record', name: 'Pixels', fields: [{ name: 'pixels', type: floats }] }) },
    });
    const wrong = (await other.serialize({ pixels: ref.pixelsOf(0) })) as Buffer;
    records.push({ topic: requests, key: Buffer.from('bad'), value: wrong, headers: [...headers('bad')] });
    await produceRaw(client, records);

    const runner = await startKafkaEndpoint(inference, {
      client,
      requestTopic: requests,
      responseTopic: responses,
      errorTopic: errors,
      applicationId,
      predictionLogTopic: log,
      formats: {
        request: { format: 'avro' },
        response: { format: 'avro', schema: RESPONSE },
        predictionLog: { format: 'avro', schema: LOG },
      },
      registry: { client: registry, baseDir: process.cwd() },
    });
    try {
      await waitForLagZero(client, applicationId, requests);
    } finally {
      await runner.close();
    }

    const reader = (topic: string) => createRegistrySerde({ client: registry, format: 'avro', topic });
    const out = await readToEnd(client, responses);
    assert.equal(out.length, COUNT, 'one response per readable request');
    const responseId = (await registry.latest(`${responses}-value`)).id;
    const responseReader = reader(responses);
    for (const r of out) {
      const id = Number(r.headers.find(([k]) => k === 'inflow-request-id')?.[1].toString());
      assert.equal(r.key?.toString(), keyOf(id), 'keyed like the request');
      assert.equal((r.value as Buffer).readUInt32BE(1), responseId, 'framed with the registered response schema id');
      assert.equal(r.headers.find(([k]) => k === 'content-type')?.[1].toString(), 'application/vnd.confluent.avro');
      const v = (await responseReader.deserialize(r.value)) as { label: number; probabilities: number[] };
      assertMatchesReference({ id, label: v.label, probabilities: [...v.probabilities] }, ref);
    }

    const logged = await readToEnd(client, log);
    assert.equal(logged.length, COUNT, 'one log entry per prediction');
    const logReader = reader(log);
    for (const r of logged) {
      const e = (await logReader.deserialize(r.value)) as {
        requestId: string;
        model: string;
        outputs: { label: number[]; probabilities: number[] };
        source: { topic: string };
      };
      assert.equal(e.model, 'digits-mlp');
      assert.equal(e.source.topic, requests);
      const id = Number(e.requestId);
      assert.deepEqual(e.outputs.label, [ref.expected(id).label]);
      assert.equal(e.outputs.probabilities.length, 10);
    }

    const dead = await readToEnd(client, errors);
    assert.equal(dead.length, 1);
    const d = dead[0];
    assert.deepEqual(d?.value, wrong, 'the dead letter keeps the original bytes');
    const header = (name: string) => d?.headers.find(([k]) => k === name)?.[1].toString();
    assert.equal(header(DeadLetterHeader.CODE), 'INVALID_ARGUMENT');
    assert.match(header(DeadLetterHeader.MESSAGE) ?? '', /input "input": field "input" is missing from the record/);
  });
});
