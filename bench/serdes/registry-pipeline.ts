/**
 * The embedded digits pipeline on Avro records next to the same pipeline on JSON records, on a
 * real broker and a real Schema Registry: `--records` inputs `{id, pixels: 64 floats}` are
 * produced first, then a fresh pipeline (a pipeline file, as `inflow stream` runs it) reads them
 * all; records/s = inputs / (start() → the group's lag is 0). Output `{id, label, probabilities}`
 * in the input's format. At-least-once, 4 partitions, predict maxBatch 64.
 *
 *   node bench/serdes/registry-pipeline.ts [--records 20000] [--formats json,avro,protobuf]
 * Uses KAFKA_BOOTSTRAP_SERVERS and SCHEMA_REGISTRY_URL when set, else starts its own.
 */
import { randomUUID } from 'node:crypto';
import { cp, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startLocalBroker } from '../../src/kafka/broker/local-broker.ts';
import { createKafkaClient, type ProducerRecord } from '../../src/kafka/index.ts';
import { createSchemaRegistryClient } from '../../src/kafka/schema-registry/registry-client.ts';
import { startLocalRegistry } from '../../src/kafka/schema-registry/local-registry.ts';
import { createRegistrySerde } from '../../src/kafka/schema-registry/registry-serde.ts';
import { jsonSerde } from '../../src/kafka/serdes.ts';
import { createStreamsRunner } from '../../src/streams/index.ts';
import { buildPipeline, parsePipelineConfig } from '../../src/streams/pipeline/index.ts';

const { values } = parseArgs({
  options: { records: { type: 'string', default: '20000' }, formats: { type: 'string', default: 'json,avro,protobuf' } },
});
const records = Number(values.records);
const ROOT = join(import.meta.dirname, '..', '..');

const broker = process.env.KAFKA_BOOTSTRAP_SERVERS ? undefined : await startLocalBroker();
const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS ?? broker?.bootstrapServers ?? '';
const local = process.env.SCHEMA_REGISTRY_URL ? undefined : await startLocalRegistry();
const url = process.env.SCHEMA_REGISTRY_URL ?? local?.url ?? '';
const client = createKafkaClient({ bootstrapServers: bootstrap.split(','), clientId: 'bench-registry-pipeline' });
const registry = createSchemaRegistryClient({ url });
const repository = await mkdtemp(join(tmpdir(), 'inflow-bench-registry-'));
await cp(join(ROOT, 'models', 'repository', 'digits-mlp'), join(repository, 'digits-mlp'), { recursive: true, preserveTimestamps: true });

const SCHEMAS: Record<string, { input: string; output: string }> = {
  avro: {
    input: JSON.stringify({
      type: 'record',
      name: 'Digit',
      fields: [
        { name: 'id', type: 'long' },
        { name: 'pixels', type: { type: 'array', items: 'float' } },
      ],
    }),
    output: JSON.stringify({
      type: 'record',
      name: 'ScoredDigit',
      fields: [
        { name: 'id', type: 'long' },
        { name: 'label', type: 'long' },
        { name: 'probabilities', type: { type: 'array', items: 'float' } },
      ],
    }),
  },
  protobuf: {
    input: 'syntax = "proto3";\nmessage Digit { int64 id = 1; repeated float pixels = 2; }\n',
    output: 'syntax = "proto3";\nmessage ScoredDigit { int64 id = 1; int64 label = 2; repeated float probabilities = 3; }\n',
  },
};

const results: string[] = [];
try {
  for (const format of (values.formats ?? '').split(',')) {
    const id = randomUUID().slice(0, 8);
    const [input, output, app] = [`bench-${format}-in-${id}`, `bench-${format}-out-${id}`, `bench-${format}-app-${id}`];
    const admin = client.admin();
    await admin.createTopics([input, output, `${app}-dlq`].map((topic) => ({ topic, partitions: 4 })));
    await admin.close();
    const serde =
      format === 'json'
        ? jsonSerde()
        : createRegistrySerde({
            client: registry,
            format: format as 'avro',
            topic: input,
            write: { schema: SCHEMAS[format]?.input as string },
          });
    const producer = client.producer();
    for (let start = 0; start < records; start += 2000) {
      const batch: ProducerRecord[] = [];
      for (let i = start; i < Math.min(records, start + 2000); i++) {
        const pixels = Array.from({ length: 64 }, (_, p) => Math.fround(((i * 31 + p * 7) % 170) / 10));
        batch.push({ topic: input, key: Buffer.from(`k${i % 37}`), value: await serde.serialize({ id: i, pixels }) });
      }
      await producer.send(batch);
    }
    await producer.close();
    const value = format === 'json' ? 'json' : `{ format: ${format} }`;
    const out = format === 'json' ? 'json' : `{ format: ${format}, schema: ${JSON.stringify(SCHEMAS[format]?.output)} }`;
    const built = await buildPipeline(
      parsePipelineConfig(
        `applicationId: ${app}
schemaRegistry: { url: "${url}" }
limits: { maxInFlight: 2048, maxPollRecords: 500 }
models: { local: { embedded: { modelRepository: ${repository}, watch: false } } }
pipeline:
  - source: { topic: ${input}, key: string, value: ${value} }
  - predict: { model: digits-mlp, using: local, inputs: { input: { field: pixels, dtype: FP32, shape: [64] } }, outputs: { label: { tensor: label }, probabilities: { tensor: probabilities } }, maxBatch: 64 }
  - select: { fields: [id, label, probabilities] }
  - to: { topic: ${output}, value: ${out} }
`,
        'bench.yaml',
      ),
    );
    const runner = createStreamsRunner(built.topology, { client, ...built.runnerOptions, instanceId: 'only', lagIntervalMs: 0 });
    const started = performance.now();
    await runner.start();
    const check = client.admin();
    for (;;) {
      const lag = await check.groupLag(app, [input]).catch(() => undefined);
      if (lag && lag.length > 0 && lag.every((l) => l.lag === 0n)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const seconds = (performance.now() - started) / 1000;
    await check.close();
    await runner.close();
    await built.close();
    results.push(`| ${format} | ${records} | ${Math.round(records / seconds).toLocaleString('en-US')} |`);
    process.stderr.write(`${format}: ${records} records in ${seconds.toFixed(1)} s\n`);
  }
} finally {
  await client.close();
  await local?.stop();
  await broker?.stop();
}
process.stdout.write(`| format | records | records/s (start → lag 0) |\n|---|---:|---:|\n${results.join('\n')}\n`);
