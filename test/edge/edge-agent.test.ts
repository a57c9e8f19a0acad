/**
 * The edge agent against real brokers: Mosquitto (Debian) for the devices and the project's
 * Kafka broker. 1 000 device messages → predictions on MQTT and in Kafka equal to the reference;
 * malformed messages → the error topic with the reason, counted, the agent goes on; a version
 * published to the models topic → predictions switch to it; a corrupt delivery → rejected, the
 * last good version keeps serving.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { parseKey } from '../../src/delivery/delivery-format.ts';
import { flipByte, tamperingClient } from '../../src/delivery/fixtures/tamper.ts';
import { publishModel } from '../../src/delivery/index.ts';
import { type EdgeAgent, type EdgeEvent, startEdgeAgent, validateEdgeConfig } from '../../src/edge/index.ts';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import {
  agentConfig,
  collect,
  createTopics,
  type DigitsReference,
  dedupe,
  digitsReference,
  digitsRepository,
  edgeSkipReason,
  expectedIds,
  header,
  MODELS,
  type Mosquitto,
  mqttClient,
  publishDevices,
  readUntil,
  startMosquitto,
  uniqueName,
  waitFor,
} from './edge-harness.ts';

const skip = edgeSkipReason(true);
const bootstrap = brokerOrSkip()?.[0];
const COUNT = 1000;

describe('the edge agent on Mosquitto and Apache Kafka', { skip }, () => {
  let mosquitto: Mosquitto;
  let client: KafkaClient;
  let ref: DigitsReference;
  let agent: EdgeAgent;
  let device: MqttClient;
  let watcher: MqttClient;
  let repository: string;
  let outbox: string;
  const events: EdgeEvent[] = [];
  const topics = {
    readings: uniqueName('edge-readings'),
    predictions: uniqueName('edge-predictions'),
    errors: uniqueName('edge-errors'),
    models: uniqueName('edge-models'),
  };
  let predictions: Awaited<ReturnType<typeof collect>>;
  let alerts: Awaited<ReturnType<typeof collect>>;
  let errors: Awaited<ReturnType<typeof collect>>;

  before(async () => {
    process.env.ORT_DISABLE_TELEMETRY = '1';
    [mosquitto, ref, repository] = await Promise.all([startMosquitto(), digitsReference(), digitsRepository()]);
    outbox = await mkdtemp(join(tmpdir(), 'inflow-edge-outbox-'));
    client = createKafkaClient({ bootstrapServers: [bootstrap ?? ''], clientId: 'edge-it' });
    await createTopics(client, [topics.readings, topics.predictions, topics.errors]);
    const config = validateEdgeConfig(
      agentConfig({ mqttUrl: mosquitto.url, repository, outbox, kafka: bootstrap, topics }),
      'edge-agent.test',
    );
    agent = await startEdgeAgent(config, { onEvent: (e) => events.push(e) });
    [device, watcher] = await Promise.all([mqttClient(mosquitto.url), mqttClient(mosquitto.url)]);
    predictions = await collect(watcher, 'predictions/+');
    alerts = await collect(watcher, 'alerts/+');
    errors = await collect(watcher, 'edge/errors/+');
  });
  after(async () => {
    await Promise.all([device?.endAsync(), watcher?.endAsync()]);
    await agent?.close();
    const admin = client?.admin();
    await admin?.deleteTopics(Object.values(topics)).catch(() => undefined);
    await admin?.close();
    await client?.close();
    await mosquitto?.stop();
    await Promise.all([repository, outbox].filter(Boolean).map((d) => rm(d, { recursive: true, force: true })));
  });

  /** The model's answer for message `seq` equals the reference (label exactly, probabilities to 1e-5). */
  function assertReference(value: Record<string, unknown>, seq: number): void {
    const row = seq % ref.labels.length;
    assert.equal(value.label, ref.labels[row], `label of message ${seq}`);
    const p = value.probabilities as number[];
    assert.equal(p.length, 10);
    p.forEach((v, i) => assert.ok(Math.abs(v - (ref.probabilities[row]?.[i] ?? Number.NaN)) < 1e-5, `probability ${i} of message ${seq}`));
  }

  it('turns 1 000 device messages into predictions on MQTT and in Kafka equal to the reference', async (t) => {
    const started = performance.now();
    await publishDevices(device, ref, 0, COUNT);
    await predictions.until(COUNT);
    const mqttMs = performance.now() - started;
    const bySeq = new Map<number, Record<string, unknown>>();
    for (const { topic, value } of predictions.messages) {
      const seq = Number(String(value.id).split(':')[1]);
      assert.equal(topic, `predictions/${String(value.device)}`);
      assert.equal(value.id, `dev-${seq % 10}:${seq}`);
      assert.equal(value.model, 'digits-mlp');
      assert.equal(value.version, 1);
      assertReference(value, seq);
      bySeq.set(seq, value);
    }
    assert.equal(bySeq.size, COUNT, 'one prediction per message');
    // Per device, predictions arrive in the order the device sent its messages.
    const perDevice = new Map<string, number[]>();
    for (const { value } of predictions.messages)
      perDevice.set(String(value.device), [...(perDevice.get(String(value.device)) ?? []), Number(String(value.id).split(':')[1])]);
    for (const [d, seqs] of perDevice)
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
        `order of ${d}`,
      );

    const fours = [...bySeq.values()].filter((v) => v.label === 4).length;
    await alerts.until(fours);
    assert.ok(fours > 0);
    assert.ok(
      alerts.messages.every((a) => a.value.alert === 'four' && a.value.label === 4 && a.topic === `alerts/${String(a.value.device)}`),
    );

    const records = await readUntil(
      client,
      [topics.readings, topics.predictions],
      (rs) => dedupe(rs, topics.readings).ids.size >= COUNT && dedupe(rs, topics.predictions).ids.size >= COUNT,
    );
    const kafkaMs = performance.now() - started;
    const want = new Set(expectedIds(0, COUNT));
    assert.deepEqual(dedupe(records, topics.readings).ids, want, 'every reading in Kafka');
    assert.deepEqual(dedupe(records, topics.predictions).ids, want, 'every prediction in Kafka');
    for (const r of records.filter((x) => x.topic === topics.predictions)) {
      const value = JSON.parse(r.value?.toString() ?? '{}') as Record<string, unknown>;
      assert.deepEqual(value, bySeq.get(Number(String(value.id).split(':')[1])), 'Kafka holds the prediction published over MQTT');
      assert.equal(r.key?.toString(), value.device);
      assert.equal(header(r, 'inflow-model-version'), '1');
    }
    const reading = records.find((x) => x.topic === topics.readings);
    assert.equal(header(reading ?? records[0]!, 'inflow-mqtt-topic'), `devices/${reading?.key?.toString()}/digits`);
    assert.equal(agent.status().outbox.records, 0, 'the outbox is empty once Kafka has everything');
    t.diagnostic(
      `1 000 messages: all predictions on MQTT after ${mqttMs.toFixed(0)} ms, all records read back from Kafka after ${kafkaMs.toFixed(0)} ms`,
    );
  });

  it('sends malformed device messages to the error topic with the reason, counts them, and keeps going', async () => {
    const bad: [string, string, string][] = [
      ['devices/dev-1/digits', '{"seq": 5000, "pixels": [1, 2', 'json'],
      ['devices/dev-1/digits', '[1, 2, 3]', 'not-object'],
      ['devices/dev-1/digits', '{"seq": 5001}', 'inputs'],
      ['devices/dev-1/digits', JSON.stringify({ seq: 5002, pixels: new Array<number>(63).fill(0) }), 'inputs'],
      ['devices/dev-1/digits', JSON.stringify({ seq: 5003, pixels: [...new Array<number>(63).fill(0), 'x'] }), 'inputs'],
      ['devices/dev-1/digits', JSON.stringify({ pixels: new Array<number>(64).fill(0) }), 'message-id'],
    ];
    const before = predictions.messages.length;
    for (const [topic, payload] of bad) await device.publishAsync(topic, payload, { qos: 1 });
    await publishDevices(device, ref, COUNT, 1);
    await errors.until(bad.length);
    await predictions.until(before + 1);
    assert.deepEqual(
      errors.messages.map((e) => e.value.reason),
      bad.map((b) => b[2]),
    );
    const wrongSize = errors.messages[3]?.value;
    assert.equal(wrongSize?.id, 'dev-1:5002');
    assert.match(String(wrongSize?.message), /input "input": field "pixels" has 63 elements; expected 64/);
    assert.equal(wrongSize?.code, 'INVALID_ARGUMENT');
    assert.match(String(errors.messages[0]?.value.message), /is not JSON .*expected a JSON object/);
    assert.equal(predictions.messages.at(-1)?.value.id, `dev-0:${COUNT}`, 'the next good message is scored');
    const counted: Record<string, number> = {};
    for (const v of (await agent.metrics.rejected.get()).values) counted[String(v.labels.reason)] = v.value;
    assert.deepEqual(counted, { json: 1, 'not-object': 1, inputs: 3, 'message-id': 1 });
    const inKafka = await readUntil(client, [topics.errors], (rs) => rs.length >= bad.length);
    // Errors without a device id have no key, so they land on another partition: compare as sets.
    assert.deepEqual(inKafka.map((r) => header(r, 'inflow.error.reason')).sort(), bad.map((b) => b[2]).sort());
    assert.equal(inKafka.find((r) => header(r, 'inflow-message-id') === 'dev-1:5002')?.key?.toString(), 'dev-1');
  });

  it('installs a version published to the models topic and switches its predictions to it', async (t) => {
    await agent.close();
    // Restart with the models topic: the agent serves v1 from disk and follows the topic.
    const config = validateEdgeConfig(
      agentConfig({ mqttUrl: mosquitto.url, repository, outbox, kafka: bootstrap, topics, agentId: 'edge-it-models' }),
      'edge-agent.test',
    );
    agent = await startEdgeAgent(config, { onEvent: (e) => events.push(e) });
    assert.deepEqual(agent.status().model.versions, [1]);
    const modelConfig = await readFile(join(MODELS, 'repository', 'digits-mlp', 'config.yaml'), 'utf8');
    const published = performance.now();
    await publishModel({
      client,
      topic: topics.models,
      model: 'digits-mlp',
      version: 2,
      modelDir: join(repository, 'digits-mlp', '1'),
      config: modelConfig,
    });
    let seq = COUNT + 1;
    let last: Record<string, unknown> | undefined;
    // Keep sending until a prediction by version 2 arrives; the deadline bounds it.
    const deadline = Date.now() + 30_000;
    while (last?.version !== 2 && Date.now() < deadline) {
      const n = predictions.messages.length;
      await publishDevices(device, ref, seq++, 1);
      await predictions.until(n + 1);
      last = predictions.messages.at(-1)?.value;
    }
    assert.equal(last?.version, 2, 'predictions come from version 2');
    assertReference(last ?? {}, seq - 1);
    t.diagnostic(`publish of v2 → first prediction by v2 in ${(performance.now() - published).toFixed(0)} ms`);
    assert.ok(events.some((e) => e.type === 'model' && e.event.type === 'installed' && e.event.version === 2));
    assert.equal(Number((await agent.metrics.modelsInstalled.get()).values[0]?.value), 1);
  });

  it('rejects a corrupt model delivery and keeps serving the last good version', async () => {
    const corrupt = tamperingClient(client, (r) => {
      const key = parseKey(r.key ?? null);
      return key?.kind === 'chunk' && key.version === 3 && r.value ? { ...r, value: flipByte(r.value, 1000) } : r;
    });
    const modelConfig = await readFile(join(MODELS, 'repository', 'digits-mlp', 'config.yaml'), 'utf8');
    const seen = events.length;
    await publishModel({
      client: corrupt,
      topic: topics.models,
      model: 'digits-mlp',
      version: 3,
      modelDir: join(MODELS, 'repository', 'digits-mlp', '1'),
      config: modelConfig,
    });
    const rejected = await waitFor('the rejection of version 3', () =>
      events.slice(seen).find((x) => x.type === 'model' && x.event.type === 'rejected'),
    );
    assert.match(rejected.type === 'model' && rejected.event.type === 'rejected' ? rejected.event.reason : '', /sha256 mismatch/);
    await assert.rejects(stat(join(repository, 'digits-mlp', '3')), { code: 'ENOENT' });
    const n = predictions.messages.length;
    await publishDevices(device, ref, 9000, 3);
    await predictions.until(n + 3);
    assert.deepEqual(
      predictions.messages.slice(n).map((m) => m.value.version),
      [2, 2, 2],
    );
    assert.equal(Number((await agent.metrics.modelsRejected.get()).values[0]?.value), 1);
  });
});
