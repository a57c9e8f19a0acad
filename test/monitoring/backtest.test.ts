/**
 * `inflow models backtest` on the real broker with real models: the digits MLP (version 1) and a
 * copy with shuffled weights (version 2) replay the same retained records; with a labels topic
 * (labels twice, never) each version's accuracy equals an offline computation on the same records
 * and labels; a time --from replays only the later records; the production group's committed
 * offsets do not move.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadDigitsDataset } from '../../src/cli/digits-dataset.ts';
import { modelsBacktest } from '../../src/cli/models-backtest.ts';
import type { BacktestVersion } from '../../src/monitoring/backtest.ts';
import type { AccuracyReport } from '../../src/monitoring/label-join.ts';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { loadServable } from '../../src/runtime/index.ts';
import { createLocalInference } from '../../src/serving/local-inference.ts';
import { createTensor } from '../../src/tensor/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';

const bootstrap = brokerOrSkip();
const ROOT = join(import.meta.dirname, '..', '..');
const N = 200;

describe('models backtest over Apache Kafka', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  const id = randomBytes(4).toString('hex');
  const topics = { input: `digits-bt-${id}`, labels: `digits-bt-labels-${id}` };
  const production = `digits-scorer-bt-${id}`;
  let client: KafkaClient;
  let repo: string;
  let t0: number;
  const labelOf = new Map<string, number>();
  const expectedCorrect = new Map<number, { correct: number; labelled: number }>();

  before(async () => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'backtest-it' });
    repo = await mkdtemp(join(tmpdir(), 'inflow-backtest-it-'));
    await mkdir(join(repo, 'digits-mlp'), { recursive: true });
    // The repository serves only the latest version (as the shipped config says); the backtest loads both anyway.
    await writeFile(
      join(repo, 'digits-mlp', 'config.yaml'),
      await readFile(join(ROOT, 'models', 'repository', 'digits-mlp', 'config.yaml')),
    );
    await cp(join(ROOT, 'models', 'repository', 'digits-mlp', '1'), join(repo, 'digits-mlp', '1'), { recursive: true });
    await cp(join(ROOT, 'test', 'fixtures', 'monitoring', 'digits-mlp-shuffled'), join(repo, 'digits-mlp', '2'), { recursive: true });
    const admin = client.admin();
    await admin.createTopics(
      [
        { topic: topics.input, partitions: 2 },
        { topic: topics.labels, partitions: 2 },
      ],
      { ifNotExists: true },
    );
    await admin.close();

    const digits = await loadDigitsDataset();
    t0 = Date.now() - 3_600_000;
    const producer = client.producer({ acks: 'all' });
    const rows = digits.pixels.slice(0, N);
    await producer.send(
      rows.map((pixels, i) => ({
        topic: topics.input,
        key: Buffer.from(`d-${i}`),
        value: Buffer.from(JSON.stringify({ pixels })),
        timestamp: t0 + i * 10,
      })),
    );
    const labels = [];
    for (let i = 0; i < N; i++) {
      if (i % 10 === 0) continue; // never labelled
      const label = digits.labels[i] as number;
      labelOf.set(`d-${i}`, label);
      labels.push({
        topic: topics.labels,
        key: Buffer.from(`d-${i}`),
        value: Buffer.from(JSON.stringify({ label })),
        timestamp: t0 + i * 10 + 5_000,
      });
      // Twice: a second, wrong label does not count.
      if (i % 7 === 0)
        labels.push({
          topic: topics.labels,
          key: Buffer.from(`d-${i}`),
          value: Buffer.from(JSON.stringify({ label: (label + 1) % 10 })),
          timestamp: t0 + i * 10 + 6_000,
        });
    }
    await producer.send(labels);
    await producer.close();

    // Offline: every labelled record through each version, one by one, compared with its first label.
    const offline = await mkdtemp(join(tmpdir(), 'inflow-backtest-offline-'));
    await cp(repo, offline, { recursive: true });
    await writeFile(
      join(offline, 'digits-mlp', 'config.yaml'),
      'platform: onnx\nversionPolicy: { all: true }\nruntime: { file: model.onnx }\n',
    );
    const inference = await createLocalInference({
      modelRepository: offline,
      load: loadServable,
      watch: false,
      settleMs: 0,
      models: ['digits-mlp'],
    });
    try {
      for (const version of [1, 2]) {
        const e = { correct: 0, labelled: 0 };
        for (const [i, pixels] of rows.entries()) {
          const label = labelOf.get(`d-${i}`);
          if (label === undefined) continue;
          const res = await inference
            .infer({ model: 'digits-mlp', version, inputs: { input: createTensor('FP32', [1, 64], Float32Array.from(pixels)) } })
            .catch(() => undefined);
          if (!res) continue;
          e.labelled++;
          if (Number(res.outputs.label?.data[0]) === label) e.correct++;
        }
        expectedCorrect.set(version, e);
      }
    } finally {
      await inference.close();
      await rm(offline, { recursive: true, force: true });
    }

    // The production scorer's group has committed offsets of its own.
    const consumer = client.consumer({ groupId: production, autoOffsetReset: 'earliest' });
    await consumer.subscribe([topics.input]);
    for (let polled = 0; polled < 20; ) polled += (await consumer.poll({ timeoutMs: 500 })).length;
    await consumer.commit([
      { topic: topics.input, partition: 0, offset: 5n },
      { topic: topics.input, partition: 1, offset: 7n },
    ]);
    await consumer.close();
  });
  after(async () => {
    const admin = client?.admin();
    await admin?.deleteTopics(Object.values(topics)).catch(() => undefined);
    await admin?.close();
    await client?.close();
    await rm(repo, { recursive: true, force: true });
  });

  it("scores both versions side by side equal to an offline computation, and leaves the production group's offsets untouched", async () => {
    const admin = client.admin();
    const before = await admin.groupOffsets(production, [topics.input]);
    const lines: string[] = [];
    const result = await modelsBacktest(
      [
        'digits-mlp',
        '--version',
        '2',
        '--baseline',
        '1',
        '--topic',
        topics.input,
        '--from',
        'earliest',
        '--input',
        'input=pixels',
        '--labels',
        topics.labels,
        '--probabilities',
        'probabilities',
        '--repository',
        repo,
      ],
      (l) => lines.push(l),
      { client },
    );
    assert.ok(result);
    assert.equal(result.records, N);
    for (const version of [1, 2]) {
      const v: BacktestVersion | undefined = result.versions.find((x) => x.version === version);
      const e = expectedCorrect.get(version);
      assert.ok(v && e);
      assert.equal(v.predictions, N);
      const r: AccuracyReport | undefined = v.reports[0];
      assert.equal(r?.labelled, e.labelled);
      assert.equal(r?.unlabelledShare, 1 - e.labelled / N);
      assert.equal(r?.classification?.accuracy, e.correct / e.labelled);
    }
    const [v2, v1] = result.versions;
    assert.ok((v1?.reports[0]?.classification?.accuracy ?? 0) > 0.9, 'the real model is accurate');
    assert.ok((v2?.reports[0]?.classification?.accuracy ?? 1) < 0.5, 'shuffled weights are not');
    assert.ok(v1?.reports[0]?.classification?.logLoss !== undefined);
    assert.equal(result.labels?.duplicate, Math.ceil(N / 7) - Math.ceil(N / 70));
    assert.match(lines.join('\n'), /accuracy\s+\d+\.\d+ %\s+\d+\.\d+ %/);
    assert.deepEqual(await admin.groupOffsets(production, [topics.input]), before);
    await admin.close();
  });

  it('replays only the records from a time on', async () => {
    const from = new Date(t0 + 100 * 10).toISOString();
    const result = await modelsBacktest(
      ['digits-mlp', '--version', '1', '--topic', topics.input, '--from', from, '--input', 'input=pixels', '--repository', repo, '--json'],
      () => undefined,
      { client },
    );
    assert.equal(result?.records, N - 100);
  });

  it('says what is wrong with a version that does not exist or a --from it cannot read', async () => {
    await assert.rejects(
      modelsBacktest(
        ['digits-mlp', '--version', '9', '--topic', topics.input, '--from', 'earliest', '--repository', repo],
        () => undefined,
        { client },
      ),
      { code: 'NOT_FOUND', message: /model "digits-mlp" has no version 9/ },
    );
    await assert.rejects(
      modelsBacktest(
        ['digits-mlp', '--version', '1', '--topic', topics.input, '--from', 'yesterday', '--repository', repo],
        () => undefined,
        { client },
      ),
      { code: 'INVALID_ARGUMENT', message: /--from "yesterday": expected earliest, an offset or a time/ },
    );
  });
});
