/**
 * A Schema Registry outage is not the records' fault: an Avro pipeline whose registry is
 * unreachable waits for it (retrying with backoff), shows it in the registry health its
 * readiness reads, dead-letters nothing, and scores every record once the registry is back.
 * The registry sits behind a TCP relay the test opens and closes.
 */
import assert from 'node:assert/strict';
import { createConnection, createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../src/kafka/broker/local-broker.ts';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { createSchemaRegistryClient } from '../../src/kafka/schema-registry/registry-client.ts';
import { createRegistrySerde } from '../../src/kafka/schema-registry/registry-serde.ts';
import { createStreamsRunner } from '../../src/streams/index.ts';
import { buildPipeline, parsePipelineConfig } from '../../src/streams/pipeline/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import { registryOrSkip } from '../setup/schema-registry.ts';
import {
  createTopics,
  type DigitsReference,
  digitsReference,
  endOffsetSum,
  keyOf,
  modelRepository,
  produceRaw,
  readToEnd,
  uniqueName,
  waitFor,
  waitForLagZero,
} from '../streams/fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const url = registryOrSkip();
const COUNT = 40;
const SCHEMA = JSON.stringify({
  type: 'record',
  name: 'Digit',
  namespace: 'inflow.outage',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'pixels', type: { type: 'array', items: 'float' } },
  ],
});

/** Relays 127.0.0.1:port to the registry while open. */
function relay(port: number, target: URL): { open(): Promise<void>; close(): Promise<void> } {
  let server: Server | undefined;
  return {
    open: () =>
      new Promise((resolve, reject) => {
        server = createServer((socket) => {
          const upstream = createConnection(Number(target.port), target.hostname);
          socket.pipe(upstream).pipe(socket);
          socket.on('error', () => upstream.destroy());
          upstream.on('error', () => socket.destroy());
        });
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve());
      }),
    close: () =>
      new Promise((resolve) => {
        if (!server) return resolve();
        server.close(() => resolve());
      }),
  };
}

const skip = !bootstrap ? 'no Kafka broker' : !url ? 'no Schema Registry' : false;

describe('a pipeline while its Schema Registry is unreachable', { skip }, () => {
  let client: KafkaClient;
  let ref: DigitsReference;
  let repository: string;

  before(async () => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'registry-outage' });
    ref = await digitsReference();
    repository = await modelRepository(['digits-mlp']);
  });
  after(async () => client?.close());

  it('waits for the registry, reports it unreachable, dead-letters nothing, and scores every record once it is back', async () => {
    const input = uniqueName('outage-in');
    const output = uniqueName('outage-out');
    const applicationId = uniqueName('outage-app');
    const dlq = `${applicationId}-dlq`;
    await createTopics(client, [input, output, dlq], 2);
    const real = new URL(url as string);
    const writer = createRegistrySerde({
      client: createSchemaRegistryClient({ url: real.href }),
      format: 'avro',
      topic: input,
      write: { schema: SCHEMA },
    });
    const records = [];
    for (let id = 0; id < COUNT; id++) {
      records.push({
        topic: input,
        key: Buffer.from(keyOf(id)),
        value: (await writer.serialize({ id, pixels: ref.pixelsOf(id) })) as Buffer,
      });
    }
    await produceRaw(client, records);

    const port = await freePort();
    const proxy = relay(port, real);
    const yaml = `
applicationId: ${applicationId}
schemaRegistry: { url: "http://127.0.0.1:${port}${real.pathname}", requestTimeoutMs: 2000 }
models:
  local: { embedded: { modelRepository: ${repository}, watch: false } }
pipeline:
  - source: { topic: ${input}, key: string, value: { format: avro } }
  - predict:
      model: digits-mlp
      using: local
      inputs: { input: { field: pixels, dtype: FP32, shape: [64] } }
      outputs: { label: { tensor: label } }
  - select: { fields: [id, label] }
  - to: { topic: ${output}, value: json }
`;
    const built = await buildPipeline(parsePipelineConfig(yaml, 'outage.yaml'));
    const registry = built.schemaRegistry;
    assert.ok(registry);
    const runner = createStreamsRunner(built.topology, { client, ...built.runnerOptions, instanceId: 'only', lagIntervalMs: 0 });
    await runner.start();
    try {
      // The records arrive while nothing listens on the registry's address.
      await waitFor('the registry reported unreachable', () => (registry.health().reachable ? undefined : true), {
        describe: () => JSON.stringify(runner.stats()),
      });
      assert.match(registry.health().error ?? '', /unreachable: connect ECONNREFUSED/);
      const admin = client.admin();
      try {
        assert.equal(await endOffsetSum(admin, dlq), 0n, 'nothing dead-lettered: the outage is not the records fault');
        assert.equal(await endOffsetSum(admin, output), 0n, 'nothing scored without the schema');
      } finally {
        await admin.close();
      }
      assert.equal(runner.stats().state, 'running');

      await proxy.open();
      await waitForLagZero(client, applicationId, input);
      assert.equal(registry.health().reachable, true);
    } finally {
      await runner.close();
      await built.close();
      await proxy.close();
    }
    const out = await readToEnd(client, output);
    assert.equal(out.length, COUNT, 'every record scored once the registry was back');
    assert.equal(new Set(out.map((r) => (JSON.parse(String(r.value)) as { id: number }).id)).size, COUNT);
    assert.equal((await readToEnd(client, dlq)).length, 0);
  });
});
