/**
 * Model management through Kafka, end to end on the real broker: versions and routing changes
 * published to the models topic reach a running embedded pipeline under load — a new version,
 * a 10 % canary sticky per key, then the move of all traffic — with zero records failed or lost.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ensureModelsTopic, publishControl, publishModel, type RepositorySync, startRepositorySync } from '../src/delivery/index.ts';
import { createKafkaClient } from '../src/kafka/index.ts';
import { jsonSerde, stringSerde } from '../src/kafka/serdes.ts';
import type { ConsumedRecord, KafkaClient, KafkaConsumer } from '../src/kafka/types.ts';
import { loadServable } from '../src/runtime/index.ts';
import { createLocalInference, type LocalInference } from '../src/serving/local-inference.ts';
import { createStreamsBuilder, createStreamsRunner, type StreamsRunner } from '../src/streams/index.ts';
import { brokerOrSkip } from './setup/broker.ts';
import { waitFor } from './streams/fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const VERSION_DIR = join(import.meta.dirname, '..', 'models', 'repository', 'digits-mlp', '1');
const CONFIG = 'platform: onnx\nversionPolicy: { all: true }\nruntime: { file: model.onnx }\n';
const KEYS = 200;

const header = (r: ConsumedRecord, name: string): string | undefined => r.headers.find(([k]) => k === name)?.[1].toString();

describe('model management through Kafka (real broker)', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  const run = randomUUID().slice(0, 8);
  const t = { models: `models-${run}`, input: `mm-in-${run}`, output: `mm-out-${run}`, dlq: `mm-dlq-${run}` };
  let client: KafkaClient;
  let repo: string;
  let sync: RepositorySync;
  let inference: LocalInference;
  let runner: StreamsRunner;
  let reader: KafkaConsumer;
  const outputs: ConsumedRecord[] = [];
  let produced = 0;

  before(async () => {
    client = createKafkaClient({ bootstrapServers: bootstrap, clientId: 'model-management-test' });
    const admin = client.admin();
    await ensureModelsTopic(admin, t.models);
    await admin.createTopics([
      { topic: t.input, partitions: 8 },
      { topic: t.output, partitions: 8 },
      { topic: t.dlq, partitions: 1 },
    ]);
    repo = await mkdtemp(join(tmpdir(), 'inflow-mm-'));
    await publishModel({ client, topic: t.models, modelDir: VERSION_DIR, model: 'digits', version: 1, config: CONFIG });
    sync = await startRepositorySync({ client, topic: t.models, modelRepository: repo, startTimeoutMs: 20_000 });
    inference = await createLocalInference({ modelRepository: repo, load: loadServable, pollMs: 100 });
    sync.attach(inference.repository);
    const serdes = { key: stringSerde, value: jsonSerde<Record<string, unknown>>() };
    const b = createStreamsBuilder();
    b.stream(t.input, serdes)
      .predict({
        inferencer: inference,
        model: 'digits',
        inputs: { input: { field: 'pixels', shape: [64] } },
        outputs: { label: { tensor: 'label' } },
      })
      .to(t.output, serdes);
    runner = createStreamsRunner(b.build(), { client, applicationId: `mm-${run}`, deadLetterTopic: t.dlq, instanceId: 'one' });
    await runner.start();
    reader = client.consumer({ groupId: `mm-reader-${run}`, autoOffsetReset: 'earliest' });
    await reader.subscribe([t.output]);
  });

  after(async () => {
    await runner?.close();
    await reader?.close();
    await sync?.close();
    await inference?.close();
    await client
      .admin()
      .deleteTopics(Object.values(t))
      .catch(() => undefined);
    await client?.close();
    await rm(repo, { recursive: true, force: true });
  });

  /** Produces one round: one record per key. */
  async function round(tag: string): Promise<void> {
    const producer = client.producer();
    await producer.send(
      Array.from({ length: KEYS }, (_, k) => ({
        topic: t.input,
        key: Buffer.from(`user-${k}`),
        value: Buffer.from(JSON.stringify({ id: `${tag}-${k}`, pixels: new Array(64).fill(k % 17) })),
      })),
    );
    produced += KEYS;
    await producer.close();
  }

  async function drain(tag: string): Promise<ConsumedRecord[]> {
    return waitFor(`the outputs of round ${tag}`, async () => {
      outputs.push(...(await reader.poll({ maxRecords: 1000, timeoutMs: 200 })));
      const mine = outputs.filter((r) => (JSON.parse(r.value?.toString() ?? '{}') as { id: string }).id.startsWith(`${tag}-`));
      return mine.length >= KEYS ? mine : undefined;
    });
  }

  const versionsOf = (records: ConsumedRecord[]): Map<string, string> =>
    new Map(records.map((r) => [r.key?.toString() as string, header(r, 'inflow-model-version') as string]));

  it('delivers a new version, a sticky 10 % canary and the full move to a running pipeline with nothing failed or lost', async () => {
    await round('a');
    assert.ok([...versionsOf(await drain('a')).values()].every((v) => v === '1'));

    // A new version becomes the latest: time from publish to the first record it scores.
    const publishedAt = Date.now();
    await publishModel({ client, topic: t.models, modelDir: VERSION_DIR, model: 'digits', version: 2, config: CONFIG });
    let firstV2: number | undefined;
    for (let i = 0; firstV2 === undefined; i++) {
      await round(`b${i}`);
      const out = await drain(`b${i}`);
      if (out.some((r) => header(r, 'inflow-model-version') === '2')) firstV2 = Date.now();
      assert.ok(i < 200, 'version 2 never answered');
    }
    process.stderr.write(`model management: publish → first record scored by v2 ≤ ${firstV2 - publishedAt} ms\n`);

    // A 10 % canary, sticky per key.
    await publishControl({
      client,
      topic: t.models,
      model: 'digits',
      routing: {
        split: [
          { version: 1, weight: 90 },
          { version: 2, weight: 10 },
        ],
      },
    });
    await waitFor('the canary split', () => inference.router.state('digits')?.split?.length === 2 || undefined);
    await round('c1');
    await round('c2');
    const c1 = versionsOf(await drain('c1'));
    const c2 = versionsOf(await drain('c2'));
    const share = [...c1.values()].filter((v) => v === '2').length / KEYS;
    assert.ok(share > 0.03 && share < 0.2, `canary share ${share} is not near 10 %`);
    for (const [key, v] of c1) assert.equal(c2.get(key), v, `key ${key} moved between rounds`);

    // The move: all traffic to version 2.
    await publishControl({ client, topic: t.models, model: 'digits', routing: { split: [{ version: 2, weight: 100 }] } });
    await waitFor('the move', () => inference.router.state('digits')?.split?.[0]?.version === 2 || undefined);
    await round('d');
    assert.ok([...versionsOf(await drain('d')).values()].every((v) => v === '2'));

    // Nothing failed, nothing lost: every input has an output, the dead-letter topic is empty.
    const ids = new Set(outputs.map((r) => (JSON.parse(r.value?.toString() ?? '{}') as { id: string }).id));
    assert.equal(ids.size, produced);
    const dlqEnd = await client.admin().listOffsets(t.dlq, 'latest');
    assert.deepEqual(
      dlqEnd.map((o) => o.offset),
      [0n],
    );
  });
});
