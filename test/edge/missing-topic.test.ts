/**
 * A forward topic that does not exist on a real Kafka broker (auto-creation off, as in the test
 * broker and most clusters): the agent keeps the records, reports the cluster as reachable with
 * the reason on /healthz, logs it once, and drains the outbox once the topic is created.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { pino } from 'pino';
import { type EdgeAgent, startEdgeAgent, validateEdgeConfig } from '../../src/edge/index.ts';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import {
  agentConfig,
  createTopics,
  type DigitsReference,
  digitsReference,
  digitsRepository,
  edgeSkipReason,
  type Mosquitto,
  mqttClient,
  publishDevices,
  startMosquitto,
  uniqueName,
  waitFor,
} from './edge-harness.ts';

const skip = edgeSkipReason(true);
const bootstrap = brokerOrSkip()?.[0];

describe('the edge agent forwarding to a topic that does not exist yet', { skip }, () => {
  let mosquitto: Mosquitto;
  let client: KafkaClient;
  let ref: DigitsReference;
  let agent: EdgeAgent;
  let device: MqttClient;
  let repository: string;
  let outbox: string;
  const lines: Record<string, unknown>[] = [];
  const topics = {
    readings: uniqueName('edge-missing-readings'),
    predictions: uniqueName('edge-missing-predictions'),
    errors: uniqueName('edge-missing-errors'),
  };

  before(async () => {
    process.env.ORT_DISABLE_TELEMETRY = '1';
    [mosquitto, ref, repository] = await Promise.all([startMosquitto(), digitsReference(), digitsRepository()]);
    outbox = await mkdtemp(join(tmpdir(), 'inflow-edge-outbox-'));
    client = createKafkaClient({ bootstrapServers: [bootstrap ?? ''], clientId: 'edge-missing-it' });
    // Only the error topic exists: readings and predictions are missing.
    await createTopics(client, [topics.errors]);
    const config = validateEdgeConfig(
      agentConfig({ mqttUrl: mosquitto.url, repository, outbox, kafka: bootstrap, topics, metricsPort: 0 }),
      'missing-topic.test',
    );
    agent = await startEdgeAgent(config, {
      logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }),
    });
    device = await mqttClient(mosquitto.url);
  });
  after(async () => {
    await device?.endAsync();
    await agent?.close();
    await client?.close();
    await mosquitto?.stop();
    for (const dir of [repository, outbox]) if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps the records, says why on /healthz and once in the log, and drains them once the topic exists', async () => {
    await publishDevices(device, ref, 0, 8);
    const health = async () => (await fetch(`http://127.0.0.1:${agent.metricsPort}/healthz`)).json() as Promise<Record<string, unknown>>;
    const failing = await waitFor('the forwarder to report the missing topic', async () => {
      const h = await health();
      return (h.forwardError as { code?: string } | undefined)?.code === 'KAFKA_TOPIC_NOT_FOUND' ? h : undefined;
    });
    assert.equal(failing.kafkaConnected, true, JSON.stringify(failing));
    assert.ok((failing.outbox as { records: number }).records > 0);
    const said = lines.filter((l) => l.code === 'KAFKA_TOPIC_NOT_FOUND');
    assert.equal(said.length, 1, JSON.stringify(said));
    assert.match(String(said[0]?.msg), /no such topic/);

    await createTopics(client, [topics.readings, topics.predictions]);
    await waitFor(
      'the outbox to drain',
      async () => (agent.status().outbox.records === 0 && !agent.status().forwardError ? true : undefined),
      { timeoutMs: 60_000 },
    );
    const h = await health();
    assert.equal(h.kafkaConnected, true);
    assert.equal(h.forwardError, undefined);
  });
});
