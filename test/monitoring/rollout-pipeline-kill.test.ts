/**
 * A guarded rollout over two `inflow stream` instances of one exactly-once pipeline with an
 * embedded model that follows the models topic, on the real broker: one instance is SIGKILLed at
 * the 50 % step (its repository on disk then says 50/50) and started again only once the rollout
 * has moved on to 100 % while it was dead.
 * The rollout goes on to its end (promoted: the two versions are the same model), the restarted
 * instance routes by the split on the models topic now — not the one on its disk from before the
 * kill, nor the initial one — and every input has exactly one output.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { publishControl, publishModel, readModelsTopic } from '../../src/delivery/index.ts';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { readRolloutState } from '../../src/monitoring/rollout-state.ts';
import { parsePrometheusText } from '../../src/monitoring/prometheus-text.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import {
  completeness,
  createTopics,
  digitsReference,
  keyOf,
  ROOT,
  readToEnd,
  uniqueName,
  waitFor,
  waitForLagZero,
} from '../streams/fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const BIN = join(ROOT, 'bin', 'inflow.js');
const V1_DIR = join(ROOT, 'models', 'repository', 'digits-mlp', '1');
const CONFIG = { platform: 'onnx', versionPolicy: { all: true }, runtime: { file: 'model.onnx' }, warmup: { rows: 1, runs: 200 } };

/** A TCP port free now (the instance killed and started again binds the same one: the rollout scrapes fixed URLs). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 0;
}

interface Child {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
  /** Resolves with the first stdout line matching `re`; rejects if the process exits first. */
  line: (re: RegExp) => Promise<string>;
}

function spawnInflow(args: string[]): Child {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, INFLOW_LOG_LEVEL: 'silent', ORT_DISABLE_TELEMETRY: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  let buffer = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString('utf8')).slice(-8000);
    buffer += chunk.toString('utf8');
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      const l = buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
      for (const w of waiters.filter((x) => x.re.test(l))) w.resolve(l);
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString('utf8')).slice(-8000);
  });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output: () => log,
    exit,
    line: (re) =>
      new Promise((resolve, reject) => {
        waiters.push({ re, resolve });
        void exit.then((code) => reject(new Error(`inflow ${args.slice(0, 3).join(' ')} exited (${code}) first:\n${log}`)));
      }),
  };
}

/** `inflow_inference_request_success_total` per version of digits-mlp at one metrics endpoint. */
async function answeredByVersion(url: string): Promise<Map<number, number>> {
  const res = await fetch(url);
  const out = new Map<number, number>();
  for (const s of parsePrometheusText(await res.text())) {
    if (s.name === 'inflow_inference_request_success_total' && s.labels.model === 'digits-mlp') {
      const v = Number(s.labels.version);
      out.set(v, (out.get(v) ?? 0) + s.value);
    }
  }
  return out;
}

describe('a guarded rollout over a pipeline instance killed mid-rollout', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  const id = uniqueName('rk');
  const topics = { models: `${id}-models`, rollouts: `${id}-rollouts`, alerts: `${id}-alerts`, input: `${id}-in`, output: `${id}-out` };
  const applicationId = `${id}-app`;
  let client: KafkaClient;
  let dir: string;
  const children: Child[] = [];

  before(async () => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'rollout-kill-it' });
    dir = await mkdtemp(join(tmpdir(), 'inflow-rollout-kill-'));
    await createTopics(client, [topics.input, topics.output, `${applicationId}-dlq`], 4);
    const admin = client.admin();
    await admin.createTopics([{ topic: topics.models, partitions: 1, configs: { 'cleanup.policy': 'compact' } }]);
    await admin.close();
    for (const version of [1, 3]) {
      await publishModel({
        client,
        topic: topics.models,
        model: 'digits-mlp',
        version,
        modelDir: V1_DIR,
        config: CONFIG,
        publisher: 'rollout-kill-it',
      });
    }
    await publishControl({ client, topic: topics.models, model: 'digits-mlp', routing: { split: [{ version: 1, weight: 100 }] } });
  });

  after(async () => {
    for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    await Promise.all(children.map((c) => c.exit));
    const admin = client?.admin();
    await admin?.deleteTopics([...Object.values(topics), `${applicationId}-dlq`]).catch(() => undefined);
    await admin?.close();
    await client?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** One instance's pipeline file: its own instance id (transactional id) and model repository, the shared models topic. */
  async function pipelineFile(instance: string): Promise<string> {
    const file = join(dir, `${instance}.json`);
    await writeFile(
      file,
      JSON.stringify({
        applicationId,
        instanceId: instance,
        kafka: { bootstrapServers: bootstrap },
        guarantee: 'exactly-once',
        errors: { policy: 'dlq', deadLetterTopic: `${applicationId}-dlq` },
        limits: { commitIntervalMs: 100, sessionTimeoutMs: 6000 },
        models: { local: { embedded: { modelRepository: join(dir, `repo-${instance}`), modelsTopic: topics.models } } },
        pipeline: [
          { source: { topic: topics.input, key: 'string', value: 'json' } },
          {
            predict: {
              name: 'predict-digit',
              model: 'digits-mlp',
              using: 'local',
              inputs: { input: { field: 'pixels', dtype: 'FP32', shape: [64] } },
              outputs: { label: { tensor: 'label' } },
            },
          },
          { select: { fields: ['id', 'label'] } },
          { to: { topic: topics.output } },
        ],
      }),
    );
    return file;
  }

  async function startInstance(file: string, port: number): Promise<Child> {
    const c = spawnInflow(['stream', file, '--metrics-port', String(port)]);
    children.push(c);
    await c.line(/^pipeline .* running/);
    return c;
  }

  it('goes on to its end; the restarted instance routes by the split now on the models topic; every input has exactly one output', async (t) => {
    const ref = await digitsReference();
    const files = { a: await pipelineFile('a'), b: await pipelineFile('b') };
    const ports = { a: await freePort(), b: await freePort() };
    const url = (port: number) => `http://127.0.0.1:${port}/metrics`;
    const a = await startInstance(files.a, ports.a);
    let b = await startInstance(files.b, ports.b);

    // Inputs all along: 20 records every 50 ms until the rollout ended and the restarted instance answered.
    let producing = true;
    let sent = 0;
    const producer = client.producer();
    const feeding = (async () => {
      while (producing) {
        const records = Array.from({ length: 20 }, (_, i) => {
          const n = sent + i;
          return {
            topic: topics.input,
            key: Buffer.from(keyOf(n)),
            value: Buffer.from(JSON.stringify({ id: n, pixels: ref.pixelsOf(n) })),
          };
        });
        await producer.send(records);
        sent += records.length;
        await delay(50);
      }
    })();

    const rollout = spawnInflow([
      'models',
      'rollout',
      'digits-mlp',
      '--to',
      '3',
      '--steps',
      '50,100',
      '--interval',
      '5s',
      '--check-every',
      '250ms',
      '--min-samples',
      '30',
      '--metrics',
      url(ports.a),
      '--metrics',
      url(ports.b),
      '--kafka',
      (bootstrap ?? []).join(','),
      '--topic',
      topics.models,
      '--rollouts-topic',
      topics.rollouts,
      '--alerts-topic',
      topics.alerts,
      '--json',
    ]);
    children.push(rollout);
    try {
      await rollout.line(/"event":"step".*"stepIndex":0/);
      b.child.kill('SIGKILL');
      await b.exit;
      const killedAt = Date.now();
      // While b is dead the rollout moves on to 100 %: b's repository on disk still says 50/50.
      await rollout.line(/"event":"step".*"stepIndex":1/);
      assert.deepEqual((await readModelsTopic({ client, topic: topics.models })).controls.get('digits-mlp')?.routing?.split, [
        { version: 3, weight: 100 },
      ]);
      b = await startInstance(files.b, ports.b);
      const restartedAfterMs = Date.now() - killedAt;
      // The restarted instance answers (it got partitions back), and every answer is by version 3.
      const answered = await waitFor(
        'the restarted instance to answer 100 records',
        async () => {
          const v = await answeredByVersion(url(ports.b));
          return [...v.values()].reduce((s, x) => s + x, 0) >= 100 ? v : undefined;
        },
        { timeoutMs: 60_000, everyMs: 200, describe: () => b.output() },
      );
      assert.deepEqual(
        [...answered].filter(([, n]) => n > 0).map(([v]) => v),
        [3],
        `the restarted instance answered by version: ${JSON.stringify([...answered])}`,
      );
      assert.equal(await rollout.exit, 0, rollout.output());
      assert.match(rollout.output(), /"event":"promoted"/);
      assert.equal((await readRolloutState(client, topics.rollouts, 'digits-mlp'))?.status, 'promoted');
      t.diagnostic(
        `instance b killed at 50 %, started again ${restartedAfterMs} ms later at 100 %; it answered ${JSON.stringify([...answered])}`,
      );
    } finally {
      producing = false;
      await feeding;
      await producer.close();
    }
    await waitForLagZero(client, applicationId, topics.input, 60_000);
    const outputs = await readToEnd(client, topics.output, { isolation: 'read_committed' });
    const { missing, duplicates } = completeness(outputs, sent);
    assert.deepEqual(
      { missing: missing.slice(0, 20), duplicates },
      { missing: [], duplicates: 0 },
      `${outputs.length} outputs for ${sent} inputs`,
    );
    for (const c of [a, b]) {
      c.child.kill('SIGTERM');
      assert.equal(await c.exit, 0, c.output());
    }
  });
});
