/**
 * examples/pipelines/digits-avro.yaml as shipped (only its topic names, application id and
 * registry URL changed for the run), on the real broker and registry: Avro digits in, Avro scored
 * digits out with the example's schema files, every prediction logged in Avro, and a record that
 * is not Avro dead-lettered with the reason.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { createSchemaRegistryClient } from '../../src/kafka/schema-registry/registry-client.ts';
import { createRegistrySerde } from '../../src/kafka/schema-registry/registry-serde.ts';
import { createStreamsRunner } from '../../src/streams/index.ts';
import { buildPipeline, parsePipelineConfig } from '../../src/streams/pipeline/index.ts';
import { DeadLetterHeader } from '../../src/streams/runtime/dead-letter.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import { registryOrSkip } from '../setup/schema-registry.ts';
import {
  assertMatchesReference,
  createTopics,
  type DigitsReference,
  digitsReference,
  keyOf,
  produceRaw,
  ROOT,
  readToEnd,
  uniqueName,
  waitForLagZero,
} from '../streams/fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const url = registryOrSkip();
const skip = !bootstrap ? 'no Kafka broker' : !url ? 'no Schema Registry' : false;
const EXAMPLE = join(ROOT, 'examples', 'pipelines', 'digits-avro.yaml');
const COUNT = 200;

describe('the Avro example pipeline', { skip }, () => {
  let client: KafkaClient;
  let ref: DigitsReference;
  before(async () => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'avro-example-it' });
    ref = await digitsReference();
  });
  after(async () => {
    await client?.close();
  });

  it('scores Avro digits into Avro scored digits, logs predictions in Avro, and dead-letters a record that is not Avro', async () => {
    const prefix = uniqueName('digits-avro');
    const applicationId = uniqueName('digits-scorer-avro');
    const text = (await readFile(EXAMPLE, 'utf8'))
      .replaceAll('digits-avro', prefix)
      .replace('applicationId: digits-scorer-avro', `applicationId: ${applicationId}`)
      .replace('url: http://127.0.0.1:8081/apis/ccompat/v7', `url: ${url}`);
    const [input, scored, log, dlq] = [prefix, `${prefix}-scored`, `${prefix}-predictions`, `${prefix}-dlq`];
    await createTopics(client, [input, scored, log, dlq], 4);

    const registry = createSchemaRegistryClient({ url: url as string });
    const digit = await readFile(join(ROOT, 'examples', 'schemas', 'digit.avsc'), 'utf8');
    const writer = createRegistrySerde({ client: registry, format: 'avro', topic: input, write: { schema: digit } });
    const records = [];
    for (let id = 0; id < COUNT; id++) {
      const value = (await writer.serialize({ id: `d-${id}`, pixels: ref.pixelsOf(id) })) as Buffer;
      records.push({ topic: input, key: Buffer.from(keyOf(id)), value });
    }
    const json = Buffer.from(JSON.stringify({ id: 'json', pixels: ref.pixelsOf(0) }));
    records.push({ topic: input, key: Buffer.from('json'), value: json });
    await produceRaw(client, records);

    const built = await buildPipeline(parsePipelineConfig(text, 'digits-avro.yaml'), {
      baseDir: join(ROOT, 'examples', 'pipelines'),
      source: 'digits-avro.yaml',
    });
    const runner = createStreamsRunner(built.topology, { client, ...built.runnerOptions, instanceId: 'only', lagIntervalMs: 0 });
    await runner.start();
    try {
      await waitForLagZero(client, applicationId, input);
    } finally {
      await runner.close();
      await built.close();
    }

    const idOf = (text: string): number | undefined => (/^d-\d+$/.test(text) ? Number(text.slice(2)) : undefined);
    const out = await readToEnd(client, scored, { isolation: 'read_committed' });
    assert.equal(out.length, COUNT);
    const reader = createRegistrySerde({ client: registry, format: 'avro', topic: scored });
    const scoredId = (await registry.latest(`${scored}-value`)).id;
    for (const r of out) {
      assert.equal((r.value as Buffer).readUInt32BE(1), scoredId, 'written with the registered ScoredDigit schema');
      const v = (await reader.deserialize(r.value)) as { id: string; label: number; probabilities: number[] };
      const id = idOf(v.id);
      assert.ok(id !== undefined, `unknown id ${v.id}`);
      assert.equal(r.key?.toString(), keyOf(id), 'keyed like the input');
      assertMatchesReference({ id, label: v.label, probabilities: [...v.probabilities] }, ref);
    }

    const logged = await readToEnd(client, log, { isolation: 'read_committed' });
    assert.equal(logged.length, COUNT, 'one Avro log entry per prediction');
    const logReader = createRegistrySerde({ client: registry, format: 'avro', topic: log });
    for (const r of logged) {
      const e = (await logReader.deserialize(r.value)) as {
        model: string;
        outputs: { label: number[] };
        source: { topic: string };
      };
      assert.equal(e.model, 'digits-mlp');
      assert.equal(e.source.topic, input);
      assert.equal(e.outputs.label.length, 1);
    }

    const dead = await readToEnd(client, dlq, { isolation: 'read_committed' });
    assert.equal(dead.length, 1);
    assert.deepEqual(dead[0]?.value, json, 'the dead letter keeps the original bytes');
    const message = dead[0]?.headers.find(([k]) => k === DeadLetterHeader.MESSAGE)?.[1].toString();
    assert.match(message ?? '', /not in the Confluent wire format: expected magic byte 0/);
  });
});
