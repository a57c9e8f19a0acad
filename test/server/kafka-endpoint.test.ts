/**
 * The Kafka-native endpoint as a user runs it: `inflow serve --kafka` in its own process on the
 * real broker, requests produced by this process, responses and errors read back.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createKafkaClient } from '../../src/kafka/index.ts';
import type { ConsumedRecord, KafkaClient } from '../../src/kafka/types.ts';
import { brokerOrSkip } from '../setup/broker.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const bootstrap = brokerOrSkip();

interface Sample {
  inputs: { input: { data: number[] } };
  outputs: { label: { data: number[] } };
}

/** Reads `topic` from the start until `count` records arrived (bounded). */
async function readAll(client: KafkaClient, topic: string, count: number, timeoutMs = 60_000): Promise<ConsumedRecord[]> {
  const consumer = client.consumer({ groupId: `reader-${randomUUID()}`, autoOffsetReset: 'earliest' });
  try {
    await consumer.subscribe([topic]);
    const out: ConsumedRecord[] = [];
    const deadline = Date.now() + timeoutMs;
    while (out.length < count && Date.now() < deadline) out.push(...(await consumer.poll({ maxRecords: 1000, timeoutMs: 500 })));
    return out;
  } finally {
    await consumer.close();
  }
}

const header = (r: ConsumedRecord, name: string): string | undefined => r.headers.find(([k]) => k === name)?.[1].toString();

describe('inflow serve --kafka (Kafka-native endpoint, real broker)', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  const run = randomUUID().slice(0, 8);
  const topics = { requests: `kreq-${run}`, responses: `kresp-${run}`, errors: `kerr-${run}` };
  let client: KafkaClient;
  let repo: string;
  let child: ChildProcess;
  let stdout = '';

  before(async () => {
    client = createKafkaClient({ bootstrapServers: bootstrap, clientId: 'endpoint-test' });
    await client.admin().createTopics(Object.values(topics).map((topic) => ({ topic, partitions: 4 })));
    repo = await mkdtemp(join(tmpdir(), 'inflow-kendpoint-'));
    await cp(join(ROOT, 'models', 'repository', 'digits-mlp'), join(repo, 'digits-mlp'), { recursive: true });
    child = spawn(
      process.execPath,
      [
        join(ROOT, 'bin', 'inflow.js'),
        'serve',
        '--model-repository',
        repo,
        '--no-rest',
        '--no-grpc',
        '--kafka',
        (bootstrap as string[]).join(','),
        '--request-topic',
        topics.requests,
        '--response-topic',
        topics.responses,
        '--error-topic',
        topics.errors,
        '--default-model',
        'digits-mlp',
        '--group',
        `endpoint-${run}`,
      ],
      { env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.resume();
    const deadline = Date.now() + 60_000;
    while (!/Kafka .*→/.test(stdout)) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`server did not start: ${stdout}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  after(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await client
      .admin()
      .deleteTopics(Object.values(topics))
      .catch(() => undefined);
    await client.close();
    await rm(repo, { recursive: true, force: true });
  });

  it('answers requests from another process in key order and routes malformed ones to the error topic', async () => {
    const sample = JSON.parse(await readFile(join(ROOT, 'models', 'samples', 'digits-mlp.json'), 'utf8')) as Sample;
    const n = 400;
    const requests = Array.from({ length: n }, (_, i) => ({
      topic: topics.requests,
      key: Buffer.from(`device-${i % 13}`),
      value: Buffer.from(
        JSON.stringify({
          id: `q${i}`,
          inputs: [
            { name: 'input', datatype: 'FP32', shape: [1, 64], data: sample.inputs.input.data.slice((i % 8) * 64, (i % 8) * 64 + 64) },
          ],
        }),
      ),
      headers: [['inflow-request-id', Buffer.from(`q${i}`)] as const],
    }));
    const malformed = [
      {
        topic: topics.requests,
        key: Buffer.from('bad-1'),
        value: Buffer.from('{"inputs": ['),
        headers: [['inflow-request-id', Buffer.from('bad-json')] as const],
      },
      {
        topic: topics.requests,
        key: Buffer.from('bad-2'),
        value: Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 63], data: new Array(63).fill(0) }] })),
        headers: [['inflow-request-id', Buffer.from('bad-shape')] as const],
      },
      {
        topic: topics.requests,
        key: Buffer.from('bad-3'),
        value: requests[0]?.value ?? null,
        headers: [['inflow-request-id', Buffer.from('bad-model')] as const, ['inflow-model', Buffer.from('no-such-model')] as const],
      },
    ];
    const producer = client.producer();
    await producer.send([...requests.slice(0, 200), ...malformed, ...requests.slice(200)]);
    await producer.close();

    const responses = await readAll(client, topics.responses, n);
    assert.equal(responses.length, n, `responses: ${responses.length}; server output:\n${stdout.slice(-3000)}`);
    const lastByKey = new Map<string, number>();
    for (const r of responses) {
      const id = header(r, 'inflow-request-id') as string;
      const i = Number(id.slice(1));
      const body = JSON.parse(r.value?.toString() ?? '{}') as {
        id: string;
        model_version: string;
        outputs: { name: string; data: number[] }[];
      };
      assert.equal(body.id, id);
      assert.equal(body.model_version, '1');
      assert.deepEqual(body.outputs.find((o) => o.name === 'label')?.data, [sample.outputs.label.data[i % 8]]);
      const key = r.key?.toString() as string;
      assert.equal(key, `device-${i % 13}`);
      assert.ok((lastByKey.get(key) ?? -1) < i, `key ${key}: response q${i} came after q${lastByKey.get(key)}`);
      lastByKey.set(key, i);
    }

    const errors = await readAll(client, topics.errors, 3);
    const reasons: Record<string, string> = {};
    for (const e of errors)
      reasons[header(e, 'inflow-request-id') ?? ''] = `${header(e, 'inflow.error.code')}: ${header(e, 'inflow.error.message')}`;
    assert.match(reasons['bad-json'] ?? '', /^INVALID_ARGUMENT: /);
    assert.match(reasons['bad-shape'] ?? '', /^INVALID_ARGUMENT: .*63/);
    assert.match(reasons['bad-model'] ?? '', /^NOT_FOUND: /);

    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, stdout);
  });
});
