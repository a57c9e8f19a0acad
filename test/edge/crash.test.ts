/**
 * `inflow edge` as a process, SIGKILLed in the middle of a stream while Kafka is unreachable (so
 * its outbox is not empty, and messages are between receipt and outbox), more messages sent while
 * it is dead, then restarted with a reachable Kafka: every reading and prediction arrives in Kafka
 * (after de-duplication by message id). Then SIGTERM: it finishes and exits 0.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { freePort } from '../../src/kafka/broker/local-broker.ts';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import {
  agentConfig,
  createTopics,
  type DigitsReference,
  dedupe,
  digitsReference,
  digitsRepository,
  edgeSkipReason,
  expectedIds,
  type Mosquitto,
  mqttClient,
  publishDevices,
  ROOT,
  readUntil,
  startMosquitto,
  uniqueName,
  waitFor,
} from './edge-harness.ts';

const skip = edgeSkipReason(true);
const bootstrap = brokerOrSkip()?.[0];
const FIRST = 600;
const WHILE_DEAD = 100;

interface Health {
  outbox: { records: number; journal: number };
  inFlight: number;
}

describe('inflow edge killed with a non-empty outbox', { skip }, () => {
  let mosquitto: Mosquitto;
  let client: KafkaClient;
  let ref: DigitsReference;
  let device: MqttClient;
  let dir: string;
  let child: ChildProcess | undefined;
  const topics = {
    readings: uniqueName('crash-readings'),
    predictions: uniqueName('crash-predictions'),
    errors: uniqueName('crash-errors'),
  };

  before(async () => {
    [mosquitto, ref] = await Promise.all([startMosquitto(), digitsReference()]);
    dir = await mkdtemp(join(tmpdir(), 'inflow-edge-crash-'));
    client = createKafkaClient({ bootstrapServers: [bootstrap ?? ''], clientId: 'edge-crash-it' });
    await createTopics(client, Object.values(topics));
    device = await mqttClient(mosquitto.url);
  });
  after(async () => {
    child?.kill('SIGKILL');
    await device?.endAsync();
    const admin = client?.admin();
    await admin?.deleteTopics(Object.values(topics)).catch(() => undefined);
    await admin?.close();
    await client?.close();
    await mosquitto?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function startAgent(file: string, args: string[]): { process: ChildProcess; exit: Promise<number | null>; output: () => string } {
    let output = '';
    const p = spawn(process.execPath, [join(ROOT, 'bin', 'inflow.js'), 'edge', file, ...args], {
      env: { ...process.env, INFLOW_LOG_LEVEL: 'warn', ORT_DISABLE_TELEMETRY: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    p.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    p.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    return { process: p, exit: new Promise((resolve) => p.once('exit', (code) => resolve(code))), output: () => output };
  }

  async function health(port: number): Promise<Health | undefined> {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      return (await res.json()) as Health;
    } catch {
      return undefined;
    }
  }

  it('loses nothing: journaled and outboxed records reach Kafka after a restart, messages sent while it was dead too', async (t) => {
    const metricsPort = await freePort();
    const deadKafka = `127.0.0.1:${await freePort()}`; // nothing listens there: Kafka is unreachable
    const repository = await digitsRepository();
    t.after(() => rm(repository, { recursive: true, force: true }));
    const file = join(dir, 'agent.yaml');
    // JSON is YAML.
    const config = agentConfig({
      mqttUrl: mosquitto.url,
      repository,
      outbox: join(dir, 'outbox'),
      kafka: deadKafka,
      topics,
      agentId: 'crash-agent',
      metricsPort,
    });
    await writeFile(file, JSON.stringify(config, null, 2));

    let agent = startAgent(file, []);
    child = agent.process;
    await waitFor('the agent to start', () => health(metricsPort), { timeoutMs: 30_000, describe: agent.output });
    const sending = publishDevices(device, ref, 0, FIRST);
    // Kill it in the middle: part of the stream in the outbox, part (maybe) journaled or not yet received.
    const atKill = await waitFor(
      'a third of the stream in the outbox',
      async () => {
        const h = await health(metricsPort);
        return h && h.outbox.records >= (2 * FIRST) / 3 ? h : undefined;
      },
      { timeoutMs: 30_000, everyMs: 5, describe: agent.output },
    );
    agent.process.kill('SIGKILL');
    assert.equal(await agent.exit, null, 'killed, not exited');
    await sending;
    await publishDevices(device, ref, FIRST, WHILE_DEAD);

    agent = startAgent(file, ['--kafka', bootstrap ?? '']);
    child = agent.process;
    const total = FIRST + WHILE_DEAD;
    const records = await readUntil(
      client,
      [topics.readings, topics.predictions],
      (rs) => dedupe(rs, topics.readings).ids.size >= total && dedupe(rs, topics.predictions).ids.size >= total,
      60_000,
    );
    const want = new Set(expectedIds(0, total));
    const readings = dedupe(records, topics.readings);
    const predictions = dedupe(records, topics.predictions);
    assert.deepEqual(readings.ids, want, `every reading arrived; agent output:\n${agent.output()}`);
    assert.deepEqual(predictions.ids, want, 'every prediction arrived');
    t.diagnostic(
      `at SIGKILL: ${atKill.outbox.records} records in the outbox, ${atKill.outbox.journal} messages journaled; after the restart: ${total} of ${total} readings and predictions, ${readings.duplicates + predictions.duplicates} duplicates removed by id`,
    );

    await waitFor('the outbox to drain', async () => ((await health(metricsPort))?.outbox.records === 0 ? true : undefined), {
      timeoutMs: 30_000,
    });
    agent.process.kill('SIGTERM');
    assert.equal(await agent.exit, 0, `SIGTERM exits 0; output:\n${agent.output()}`);
    assert.match(agent.output(), /stopped\. mqtt/);
    child = undefined;
  });
});
