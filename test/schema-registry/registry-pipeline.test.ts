/**
 * A pipeline file whose topics are Avro / Protobuf in the Confluent wire format, on the real
 * broker and the real Schema Registry: the digits model scores every record like Python
 * onnxruntime, the outputs carry the registered output schema, and bad records (no magic byte,
 * unknown schema id) go to the dead-letter topic with the reason and their original bytes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { createSchemaRegistryClient } from '../../src/kafka/schema-registry/registry-client.ts';
import { createRegistrySerde, type SchemaFormat } from '../../src/kafka/schema-registry/registry-serde.ts';
import { DeadLetterHeader } from '../../src/streams/runtime/dead-letter.ts';
import { createStreamsRunner } from '../../src/streams/index.ts';
import { buildPipeline, parsePipelineConfig } from '../../src/streams/pipeline/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import { registryOrSkip } from '../setup/schema-registry.ts';
import {
  assertMatchesReference,
  createTopics,
  type DigitsOutput,
  type DigitsReference,
  digitsReference,
  keyOf,
  modelRepository,
  produceRaw,
  readToEnd,
  uniqueName,
  waitForLagZero,
} from '../streams/fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const url = registryOrSkip();
const COUNT = 300;

const SCHEMAS: Record<'avro' | 'protobuf', { input: string; output: string }> = {
  avro: {
    input: JSON.stringify({
      type: 'record',
      name: 'Digit',
      namespace: 'inflow.it',
      fields: [
        { name: 'id', type: 'long' },
        { name: 'pixels', type: { type: 'array', items: 'float' } },
      ],
    }),
    output: JSON.stringify({
      type: 'record',
      name: 'ScoredDigit',
      namespace: 'inflow.it',
      fields: [
        { name: 'id', type: 'long' },
        { name: 'label', type: 'long' },
        { name: 'probabilities', type: { type: 'array', items: 'float' } },
      ],
    }),
  },
  protobuf: {
    input: 'syntax = "proto3";\npackage inflow.it;\nmessage Digit { int64 id = 1; repeated float pixels = 2; }\n',
    output:
      'syntax = "proto3";\npackage inflow.it;\nmessage ScoredDigit { int64 id = 1; int64 label = 2; repeated float probabilities = 3; }\n',
  },
};

const skip = !bootstrap ? 'no Kafka broker' : !url ? 'no Schema Registry' : false;

describe('a pipeline on Schema Registry formats', { skip }, () => {
  let client: KafkaClient;
  let ref: DigitsReference;
  let repository: string;

  before(async () => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'registry-it' });
    ref = await digitsReference();
    repository = await modelRepository(['digits-mlp']);
  });
  after(async () => {
    await client?.close();
  });

  for (const format of ['avro', 'protobuf'] as const satisfies readonly SchemaFormat[]) {
    it(`scores ${format} records, writes ${format} with the registered output schema, and dead-letters unreadable records`, async () => {
      const input = uniqueName(`${format}-in`);
      const output = uniqueName(`${format}-out`);
      const applicationId = uniqueName(`${format}-app`);
      const dlq = `${applicationId}-dlq`;
      await createTopics(client, [input, output, dlq], 4);
      const registry = createSchemaRegistryClient({ url: url as string });
      const writer = createRegistrySerde({ client: registry, format, topic: input, write: { schema: SCHEMAS[format].input } });
      const records = [];
      for (let id = 0; id < COUNT; id++) {
        const value = (await writer.serialize({ id, pixels: ref.pixelsOf(id) })) as Buffer;
        records.push({ topic: input, key: Buffer.from(keyOf(id)), value });
      }
      // Two unreadable records: plain JSON (no magic byte), and a schema id the registry does not have.
      const noMagic = Buffer.from(JSON.stringify({ id: -1, pixels: [] }));
      const unknownId = Buffer.from([0, 0x7f, 0xff, 0xff, 0x00, 0x02, 0x00]);
      records.push(
        { topic: input, key: Buffer.from('bad-1'), value: noMagic },
        { topic: input, key: Buffer.from('bad-2'), value: unknownId },
      );
      await produceRaw(client, records);

      const yaml = `
applicationId: ${applicationId}
schemaRegistry: { url: "${url}" }
models:
  local: { embedded: { modelRepository: ${repository}, watch: false } }
pipeline:
  - source: { topic: ${input}, key: string, value: { format: ${format} } }
  - predict:
      model: digits-mlp
      using: local
      inputs: { input: { field: pixels, dtype: FP32, shape: [64] } }
      outputs: { label: { tensor: label }, probabilities: { tensor: probabilities } }
      maxBatch: 64
  - select: { fields: [id, label, probabilities] }
  - to:
      topic: ${output}
      value: { format: ${format}, schema: ${JSON.stringify(SCHEMAS[format].output)} }
`;
      const built = await buildPipeline(parsePipelineConfig(yaml, 'registry-pipeline.yaml'));
      const runner = createStreamsRunner(built.topology, { client, ...built.runnerOptions, instanceId: 'only', lagIntervalMs: 0 });
      await runner.start();
      try {
        await waitForLagZero(client, applicationId, input);
      } finally {
        await runner.close();
        await built.close();
      }

      const out = await readToEnd(client, output);
      assert.equal(out.length, COUNT, 'one output per readable input');
      const subject = await registry.latest(`${output}-value`);
      const reader = createRegistrySerde({ client: registry, format, topic: output });
      const seen = new Set<number>();
      for (const r of out) {
        const value = r.value as Buffer;
        assert.equal(value[0], 0, 'magic byte');
        assert.equal(value.readUInt32BE(1), subject.id, 'the registered output schema id');
        const decoded = (await reader.deserialize(value)) as { id: number; label: number; probabilities: number[] };
        seen.add(decoded.id);
        // Float32 in the output schema: within the reference's 1e-5.
        const row: DigitsOutput = { id: decoded.id, label: decoded.label, probabilities: decoded.probabilities };
        assertMatchesReference(row, ref);
      }
      assert.equal(seen.size, COUNT, 'every id once');

      const dead = await readToEnd(client, dlq);
      assert.equal(dead.length, 2);
      const header = (r: (typeof dead)[number], name: string) => r.headers.find(([k]) => k === name)?.[1].toString();
      const byKey = new Map(dead.map((r) => [r.key?.toString(), r]));
      const a = byKey.get('bad-1');
      const b = byKey.get('bad-2');
      assert.ok(a && b);
      assert.deepEqual(a.value, noMagic, 'the dead letter keeps the original bytes');
      assert.deepEqual(b.value, unknownId, 'the dead letter keeps the original bytes');
      assert.equal(header(a, DeadLetterHeader.STAGE), 'deserialize');
      assert.equal(header(a, DeadLetterHeader.CODE), 'SERIALIZATION');
      assert.match(header(a, DeadLetterHeader.MESSAGE) ?? '', /not in the Confluent wire format: expected magic byte 0/);
      assert.equal(header(b, DeadLetterHeader.CODE), 'SERIALIZATION');
      assert.match(header(b, DeadLetterHeader.MESSAGE) ?? '', /schema id 2147483392 is not in the schema registry/);
      assert.equal(header(b, DeadLetterHeader.RETRIABLE), 'false');
    });
  }
});
