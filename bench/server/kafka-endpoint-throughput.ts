/**
 * The Kafka-native endpoint vs the embedded pipeline on the same model and broker: records/s
 * of each, in one run. Requests are OIP JSON bodies of one row (what a Kafka client sends);
 * pipeline records are JSON objects with the same row. Both in this process, on the broker
 * named by KAFKA_BOOTSTRAP_SERVERS.
 *
 *   KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 node bench/server/kafka-endpoint-throughput.ts [--records 20000] [--model digits-mlp]
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseBootstrapServers } from '../../src/config/kafka-config.ts';
import { createKafkaClient } from '../../src/kafka/index.ts';
import { jsonSerde, stringSerde } from '../../src/kafka/serdes.ts';
import type { KafkaClient } from '../../src/kafka/types.ts';
import { loadServable } from '../../src/runtime/index.ts';
import { startKafkaEndpoint } from '../../src/server/kafka/kafka-endpoint-runner.ts';
import { createLocalInference } from '../../src/serving/local-inference.ts';
import { createStreamsBuilder, createStreamsRunner, type StreamsRunner } from '../../src/streams/index.ts';

const { values } = parseArgs({
  options: { records: { type: 'string', default: '20000' }, model: { type: 'string', default: 'digits-mlp' } },
});
const N = Number(values.records);
const model = values.model;
const servers = process.env.KAFKA_BOOTSTRAP_SERVERS;
if (!servers) throw new Error('set KAFKA_BOOTSTRAP_SERVERS (e.g. start one with: node bin/inflow.js kafka up)');
const client = createKafkaClient({ bootstrapServers: parseBootstrapServers(servers), clientId: 'bench-endpoint' });
const inference = await createLocalInference({
  modelRepository: join(import.meta.dirname, '..', '..', 'models', 'repository'),
  load: loadServable,
  watch: false,
});
const width = (await inference.metadata(model)).inputs[0]?.shape[1] ?? 64;
const row = Array.from({ length: width }, (_, i) => (i * 7) % 17);

async function topics(...names: string[]): Promise<void> {
  await client.admin().createTopics(names.map((topic) => ({ topic, partitions: 8 })));
}

async function produce(topic: string, value: (i: number) => Buffer, headers: [string, Buffer][] = []): Promise<void> {
  const producer = client.producer();
  for (let i = 0; i < N; i += 2000) {
    await producer.send(
      Array.from({ length: Math.min(2000, N - i) }, (_, j) => ({
        topic,
        key: Buffer.from(`k${(i + j) % 97}`),
        value: value(i + j),
        headers,
      })),
    );
  }
  await producer.close();
}

async function timeUntilDone(c: KafkaClient, group: string, topic: string, start: () => Promise<StreamsRunner>): Promise<number> {
  const t0 = performance.now();
  const runner = await start();
  for (;;) {
    const lag = await c.admin().groupLag(group, [topic]);
    if (lag.length > 0 && lag.every((l) => l.lag === 0n) && runner.stats().inFlight === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const ms = performance.now() - t0;
  await runner.close();
  return ms;
}

const run = randomUUID().slice(0, 8);
// Embedded pipeline.
const pin = `bp-in-${run}`;
const pout = `bp-out-${run}`;
await topics(pin, pout, `bp-${run}-dlq`);
await produce(pin, (i) => Buffer.from(JSON.stringify({ id: i, x: row })));
const serdes = { key: stringSerde, value: jsonSerde<Record<string, unknown>>() };
const pipelineMs = await timeUntilDone(client, `bp-${run}`, pin, async () => {
  const b = createStreamsBuilder();
  b.stream(pin, serdes)
    .predict({
      inferencer: inference,
      model,
      inputs: { input: { field: 'x', shape: [width] } },
      outputs: { label: { tensor: 'label' } },
      keepInput: false,
    })
    .to(pout, serdes);
  const r = createStreamsRunner(b.build(), { client, applicationId: `bp-${run}`, lagIntervalMs: 0 });
  await r.start();
  return r;
});
// Kafka-native endpoint.
const req = `be-req-${run}`;
const resp = `be-resp-${run}`;
const err = `be-err-${run}`;
await topics(req, resp, err);
await produce(
  req,
  (i) => Buffer.from(JSON.stringify({ id: `q${i}`, inputs: [{ name: 'input', datatype: 'FP32', shape: [1, width], data: row }] })),
  [['inflow-model', Buffer.from(model)]],
);
const endpointMs = await timeUntilDone(client, `be-${run}`, req, () =>
  startKafkaEndpoint(inference, { client, requestTopic: req, responseTopic: resp, errorTopic: err, applicationId: `be-${run}` }),
);
const rate = (ms: number): number => Math.round(N / (ms / 1000));
console.log(`model ${model}, ${N} records, 8 partitions, at-least-once, batch ≤ 64`);
console.log(`  embedded pipeline     ${rate(pipelineMs)} records/s`);
console.log(`  Kafka-native endpoint ${rate(endpointMs)} requests/s  (${(rate(endpointMs) / rate(pipelineMs)).toFixed(2)}× the pipeline)`);
await client
  .admin()
  .deleteTopics([pin, pout, `bp-${run}-dlq`, req, resp, err])
  .catch(() => undefined);
await inference.close();
await client.close();
