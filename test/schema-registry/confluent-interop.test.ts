/**
 * Interop with Confluent's Python client (confluent-kafka, the reference for the wire format):
 * records its AvroSerializer / ProtobufSerializer / JSONSerializer produce are scored by an inflow
 * pipeline on the real broker and the real Schema Registry, and inflow's outputs are read back
 * by its AvroDeserializer / ProtobufDeserializer / JSONDeserializer. Python's Protobuf serializer
 * registers a base64 FileDescriptorProto, not .proto text: inflow reads that too.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
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
  modelRepository,
  uniqueName,
  waitForLagZero,
} from '../streams/fixtures/streams-fixtures.ts';

const run = promisify(execFile);
const bootstrap = brokerOrSkip();
const url = registryOrSkip();
const COUNT = 60;

const OUTPUT = {
  avro: JSON.stringify({
    type: 'record',
    name: 'ScoredDigit',
    namespace: 'inflow.interop',
    fields: [
      { name: 'id', type: 'long' },
      { name: 'label', type: 'long' },
      { name: 'probabilities', type: { type: 'array', items: 'float' } },
    ],
  }),
  // The message Python's ScoredDigit class decodes (test/schema-registry/confluent_client.py).
  protobuf:
    'syntax = "proto3";\npackage inflow.interop;\nmessage ScoredDigit { int64 id = 1; int64 label = 2; repeated float probabilities = 3; }\n',
  'json-schema': JSON.stringify({
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'ScoredDigit',
    type: 'object',
    properties: { id: { type: 'integer' }, label: { type: 'integer' }, probabilities: { type: 'array', items: { type: 'number' } } },
    required: ['id', 'label', 'probabilities'],
  }),
} as const;

async function confluentPython(): Promise<string | undefined> {
  try {
    const { stdout } = await run('bash', [join(import.meta.dirname, 'setup-venv.sh')], { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 });
    return stdout.trim().split('\n').at(-1);
  } catch (error) {
    if (process.env.CI === 'true') throw error;
    process.stderr.write(`\n!!! Confluent Python interop SKIPPED: cannot build its virtualenv: ${(error as Error).message}\n\n`);
    return undefined;
  }
}

const skip = !bootstrap ? 'no Kafka broker' : !url ? 'no Schema Registry' : false;

describe("Confluent's Python client and inflow on Schema Registry formats", { skip }, () => {
  let client: KafkaClient;
  let ref: DigitsReference;
  let repository: string;
  let py: string | undefined;
  const script = join(import.meta.dirname, 'confluent_client.py');

  before(async () => {
    py = await confluentPython();
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'registry-interop' });
    ref = await digitsReference();
    repository = await modelRepository(['digits-mlp']);
  });
  after(async () => client?.close());

  for (const format of ['avro', 'protobuf', 'json-schema'] as const) {
    it(`scores ${format} records from confluent-kafka and its deserializer reads inflow's ${format} outputs`, async (t) => {
      if (!py) return t.skip('no Confluent Python client virtualenv');
      const input = uniqueName(`py-${format}-in`);
      const output = uniqueName(`py-${format}-out`);
      const applicationId = uniqueName(`py-${format}-app`);
      await createTopics(client, [input, output, `${applicationId}-dlq`], 2);
      const servers = (bootstrap ?? []).join(',');
      const recordsFile = join(await mkdtemp(join(tmpdir(), 'inflow-py-interop-')), 'records.json');
      await writeFile(recordsFile, JSON.stringify(Array.from({ length: COUNT }, (_, id) => ({ id, pixels: ref.pixelsOf(id) }))));
      await run(py, [script, 'produce', format, servers, url as string, input, recordsFile], { timeout: 120_000 });

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
  - select: { fields: [id, label, probabilities] }
  - to: { topic: ${output}, value: { format: ${format}, schema: ${JSON.stringify(OUTPUT[format])} } }
`;
      const built = await buildPipeline(parsePipelineConfig(yaml, `interop-${format}.yaml`));
      const runner = createStreamsRunner(built.topology, { client, ...built.runnerOptions, instanceId: 'only', lagIntervalMs: 0 });
      await runner.start();
      try {
        await waitForLagZero(client, applicationId, input);
      } finally {
        await runner.close();
        await built.close();
      }
      assert.equal(runner.stats().state, 'closed');

      const { stdout } = await run(py, [script, 'consume', format, servers, url as string, output, String(COUNT)], {
        timeout: 120_000,
        maxBuffer: 16 * 1024 * 1024,
      });
      const rows = stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as DigitsOutput);
      assert.equal(rows.length, COUNT);
      assert.deepEqual(new Set(rows.map((r) => r.id)).size, COUNT, 'every input scored once');
      for (const row of rows) assertMatchesReference(row, ref);
    });
  }
});
