/**
 * `inflow serve --kafka … --models-topic …` (the Kafka-native endpoint and model sync) through a
 * broker outage, as a user runs it: its own process, on a broker of the test's own that is
 * stopped for ~10 s with its data kept and started again. The server must not exit, must answer
 * requests sent after the outage, and must install a model version published after it.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { publishModel } from '../../src/delivery/index.ts';
import { type LocalBroker, startLocalBroker } from '../../src/kafka/broker/local-broker.ts';
import { createKafkaClient, type KafkaClient, retryTransient } from '../../src/kafka/index.ts';
import type { ConsumedRecord } from '../../src/kafka/types.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import { waitFor } from '../streams/fixtures/streams-fixtures.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const javaAvailable = brokerOrSkip() !== undefined;
const topics = { requests: 'kreq', responses: 'kresp', errors: 'kerr', models: 'kmodels' };

describe('inflow serve --kafka --models-topic through a broker outage', {
  skip: javaAvailable ? false : 'no Java for a broker of our own',
}, () => {
  let dataDir: string;
  let broker: LocalBroker | undefined;
  let client: KafkaClient;
  let repo: string;
  let child: ChildProcess | undefined;
  let output = '';
  let sample: number[];

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'inflow-outage-serve-kafka-'));
    broker = await startLocalBroker({ dataDir, heapMb: 256 });
    client = createKafkaClient({ bootstrapServers: [broker.bootstrapServers], clientId: 'outage-serve-test' });
    await client.admin().createTopics([
      { topic: topics.requests, partitions: 2 },
      { topic: topics.responses, partitions: 2 },
      { topic: topics.errors, partitions: 1 },
      { topic: topics.models, partitions: 1, configs: { 'cleanup.policy': 'compact' } },
    ]);
    repo = await mkdtemp(join(tmpdir(), 'inflow-outage-serve-repo-'));
    await cp(join(ROOT, 'models', 'repository', 'digits-mlp'), join(repo, 'digits-mlp'), { recursive: true });
    const samples = JSON.parse(await readFile(join(ROOT, 'models', 'samples', 'digits-mlp.json'), 'utf8')) as {
      inputs: { input: { data: number[] } };
    };
    sample = samples.inputs.input.data.slice(0, 64);
  });

  after(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await client?.close();
    await broker?.stop();
    await rm(dataDir, { recursive: true, force: true });
    await rm(repo, { recursive: true, force: true });
  });

  const send = (ids: string[]) =>
    retryTransient(
      () =>
        client.producer().send(
          ids.map((id) => ({
            topic: topics.requests,
            key: Buffer.from(id),
            value: Buffer.from(JSON.stringify({ id, inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], data: sample }] })),
          })),
        ),
      { maxMs: 1000 },
    );

  /** Reads the responses topic from the start until every id answered. */
  const answered = async (ids: string[]): Promise<ConsumedRecord[]> => {
    const consumer = client.consumer({ groupId: `reader-${Date.now()}`, autoOffsetReset: 'earliest' });
    const seen = new Map<string, ConsumedRecord>();
    try {
      await consumer.subscribe([topics.responses]);
      await waitFor(
        `responses to ${ids.length} requests`,
        async () => {
          for (const r of await consumer.poll({ maxRecords: 1000, timeoutMs: 500 })) {
            seen.set((JSON.parse(r.value?.toString() ?? '{}') as { id?: string }).id ?? '', r);
          }
          return ids.every((id) => seen.has(id)) ? true : undefined;
        },
        { timeoutMs: 120_000, everyMs: 1, describe: () => `${seen.size} seen; server output:\n${output}` },
      );
    } finally {
      await consumer.close();
    }
    return ids.map((id) => seen.get(id) as ConsumedRecord);
  };

  it('keeps serving requests and installing published versions after the broker was away', async () => {
    const bootstrap = broker?.bootstrapServers as string;
    child = spawn(
      process.execPath,
      [
        join(ROOT, 'bin', 'inflow.js'),
        'serve',
        '--model-repository',
        repo,
        '--host',
        '127.0.0.1',
        '--rest-port',
        '0',
        '--no-grpc',
        '--kafka',
        bootstrap,
        '--request-topic',
        topics.requests,
        '--response-topic',
        topics.responses,
        '--error-topic',
        topics.errors,
        '--default-model',
        'digits-mlp',
        '--group',
        'outage-endpoint',
        '--models-topic',
        topics.models,
      ],
      { env: { ...process.env, ORT_DISABLE_TELEMETRY: '1', INFLOW_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', (d: Buffer) => void (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => void (output += d.toString()));
    const c = child;
    await waitFor('the server to start', () => (/Kafka .*→/.test(output) ? true : c.exitCode !== null ? assert.fail(output) : undefined), {
      timeoutMs: 90_000,
    });
    const rest = /REST {2}http:\/\/(\S+)/.exec(output)?.[1];
    assert.ok(rest, output);
    const readiness = async () => {
      const res = await fetch(`http://${rest}/v2/health/ready`);
      return { status: res.status, body: (await res.json()) as { ready: boolean; reason?: string } };
    };

    const before = ['b0', 'b1', 'b2', 'b3'];
    await send(before);
    await answered(before);

    assert.deepEqual(await readiness(), { status: 200, body: { ready: true } });
    const outageStart = Date.now();
    await broker?.stop({ keepData: true });
    broker = undefined;
    // Not ready, with the reason, while the cluster is away (as inflow stream's /readyz).
    const down = await waitFor(
      'readiness to say Kafka is unreachable',
      async () => {
        const r = await readiness();
        return r.status === 503 ? r : undefined;
      },
      { timeoutMs: 30_000, everyMs: 200, describe: () => output },
    );
    assert.match(down.body.reason ?? '', /^Kafka unreachable since .*; the Kafka-native endpoint and model sync wait for it$/);
    // The outage: its length is the scenario. The server must still run at its end.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 10_000 - (Date.now() - outageStart))));
    assert.equal(c.exitCode, null, `the server exited during the outage:\n${output}`);
    broker = await startLocalBroker({ dataDir, heapMb: 256 });
    assert.equal(broker.bootstrapServers, bootstrap);

    const afterIds = ['a0', 'a1', 'a2', 'a3'];
    await send(afterIds);
    const responses = await answered([...before, ...afterIds]);
    assert.equal(responses.length, 8);
    await waitFor('readiness once Kafka is back', async () => ((await readiness()).status === 200 ? true : undefined), {
      timeoutMs: 30_000,
      everyMs: 200,
      describe: () => output,
    });

    const config = await readFile(join(ROOT, 'models', 'repository', 'digits-mlp', 'config.yaml'), 'utf8');
    await retryTransient(
      () =>
        publishModel({
          client,
          topic: topics.models,
          model: 'digits-mlp',
          version: 7,
          modelDir: join(ROOT, 'models', 'repository', 'digits-mlp', '1'),
          config,
          publisher: 'outage-test',
        }),
      { maxMs: 1000 },
    );
    await waitFor(
      'model sync to install version 7 published after the outage',
      () => (existsSync(join(repo, 'digits-mlp', '7')) ? true : undefined),
      {
        timeoutMs: 120_000,
        describe: () => output,
      },
    );
    assert.equal(c.exitCode, null, `the server is still running:\n${output}`);
    assert.match(output, /unreachable; retrying with backoff/);
  });
});
