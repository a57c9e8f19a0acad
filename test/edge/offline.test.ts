/**
 * Offline first, on a Kafka broker of this test's own (stopped and started again with its data
 * in the middle of the run) and a real Mosquitto: while Kafka is down, local predictions go on
 * and the outbox grows; once it is back the outbox drains and every record arrives — none twice
 * after de-duplication by the `inflow-message-id` header. Then a full outbox under each policy.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { pino } from 'pino';
import { type EdgeAgent, type EdgeEvent, startEdgeAgent, validateEdgeConfig } from '../../src/edge/index.ts';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
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
  type Mosquitto,
  mqttClient,
  publishDevices,
  type RestartableKafka,
  readUntil,
  startMosquitto,
  startRestartableKafka,
  uniqueName,
  waitFor,
} from './edge-harness.ts';

// This suite starts a broker of its own (Java); it runs where the run's broker runs (so Java is there).
const skip = edgeSkipReason(true);
const BEFORE = 300;
const DURING = 400;

describe('the edge agent while Kafka is down', { skip }, () => {
  let mosquitto: Mosquitto;
  let kafka: RestartableKafka;
  let client: KafkaClient;
  let ref: DigitsReference;
  let agent: EdgeAgent | undefined;
  let device: MqttClient;
  let watcher: MqttClient;
  const dirs: string[] = [];
  const topics = { readings: uniqueName('readings'), predictions: uniqueName('predictions'), errors: uniqueName('errors') };

  before(async () => {
    process.env.ORT_DISABLE_TELEMETRY = '1';
    [mosquitto, kafka, ref] = await Promise.all([startMosquitto(), startRestartableKafka(), digitsReference()]);
    client = createKafkaClient({ bootstrapServers: [kafka.bootstrapServers], clientId: 'edge-offline-it', requestTimeoutMs: 5000 });
    await createTopics(client, Object.values(topics));
    [device, watcher] = await Promise.all([mqttClient(mosquitto.url), mqttClient(mosquitto.url)]);
  });
  after(async () => {
    await Promise.all([device?.endAsync(), watcher?.endAsync()]);
    await agent?.close();
    await client?.close();
    await Promise.all([kafka?.dispose(), mosquitto?.stop()]);
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('keeps predicting while Kafka is stopped, holds the records in the outbox, and delivers every one after it returns', async (t) => {
    const repository = await digitsRepository();
    const outbox = await mkdtemp(join(tmpdir(), 'inflow-edge-outbox-'));
    dirs.push(repository, outbox);
    let forwarded = 0;
    const config = validateEdgeConfig(
      agentConfig({ mqttUrl: mosquitto.url, repository, outbox, kafka: kafka.bootstrapServers, topics }),
      'offline.test',
    );
    const lines: Array<{ level: number; msg: string; component?: string }> = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { level: number; msg: string }) });
    agent = await startEdgeAgent(config, { logger, onEvent: (e: EdgeEvent) => (forwarded += e.type === 'forwarded' ? e.count : 0) });
    const a = agent;
    const predictions = await collect(watcher, 'predictions/+');

    await publishDevices(device, ref, 0, BEFORE);
    await predictions.until(BEFORE);
    await waitFor('the first records to reach Kafka', () => (forwarded >= 2 * BEFORE ? true : undefined), {
      describe: () => `${forwarded} forwarded`,
    });

    const stopped = performance.now();
    await kafka.stop();
    await publishDevices(device, ref, BEFORE, DURING);
    await predictions.until(BEFORE + DURING);
    const localMs = performance.now() - stopped;
    // Every message of the outage was scored locally; its records wait on disk.
    await waitFor('the outbox to hold the outage', () => (a.status().outbox.records === 2 * DURING ? true : undefined), {
      describe: () => JSON.stringify(a.status()),
    });
    assert.equal(forwarded, 2 * BEFORE, 'nothing was acknowledged while Kafka was down');
    await waitFor('the agent to notice Kafka is down', () => (a.status().kafkaConnected === false ? true : undefined), {
      timeoutMs: 20_000,
    });
    const failures = (await a.metrics.forwardFailures.get()).values.reduce((s, v) => s + v.value, 0);
    assert.ok(failures >= 1);
    const metricsText = await a.metrics.registry.metrics();
    assert.match(metricsText, new RegExp(`inflow_edge_outbox_records ${2 * DURING}\\b`));
    assert.match(metricsText, /inflow_edge_kafka_connected 0\b/);

    const restarted = performance.now();
    await kafka.start();
    await waitFor('the outbox to drain', () => (a.status().outbox.records === 0 ? true : undefined), {
      timeoutMs: 60_000,
      everyMs: 100,
      describe: () => JSON.stringify(a.status().outbox),
    });
    const drainMs = performance.now() - restarted;
    const total = BEFORE + DURING;
    const records = await readUntil(
      client,
      [topics.readings, topics.predictions],
      (rs) => dedupe(rs, topics.readings).ids.size >= total && dedupe(rs, topics.predictions).ids.size >= total,
      30_000,
    );
    const want = new Set(expectedIds(0, total));
    const readings = dedupe(records, topics.readings);
    const preds = dedupe(records, topics.predictions);
    assert.deepEqual(readings.ids, want, 'every reading arrived');
    assert.deepEqual(preds.ids, want, 'every prediction arrived');
    // Per device (one key → one partition) Kafka holds the records in the order the device sent them.
    const seqs = new Map<string, number[]>();
    for (const r of records.filter((x) => x.topic === topics.readings)) {
      const key = r.key?.toString() ?? '';
      seqs.set(key, [...(seqs.get(key) ?? []), (JSON.parse(r.value?.toString() ?? '{}') as { seq: number }).seq]);
    }
    for (const [key, s] of seqs) {
      const firsts = s.filter((v, i) => s.indexOf(v) === i);
      assert.deepEqual(
        firsts,
        [...firsts].sort((x, y) => x - y),
        `order of ${key}`,
      );
    }
    assert.equal(a.status().kafkaConnected, true);
    // At-least-once with the same message id: a record sent twice (an acknowledgement lost in the
    // outage) is the same record twice, never a different one under a seen id.
    for (const topic of [topics.readings, topics.predictions]) {
      const first = new Map<string, string>();
      for (const r of records.filter((x) => x.topic === topic)) {
        const id = r.headers.find(([k]) => k === 'inflow-message-id')?.[1].toString() ?? '';
        const value = r.value?.toString() ?? '';
        assert.equal(first.get(id) ?? value, value, `${topic}: every copy of ${id} is the same record`);
        first.set(id, value);
      }
    }
    // However many retries the outage took, the forwarder said it once each way (the Kafka layer's connection state).
    const forwarderLines = lines
      .filter((l) => l.component === 'edge-forwarder')
      .map((l) => [l.level, l.msg.replace(/after [\d.]+ s/, 'after N s')]);
    assert.deepEqual(forwarderLines, [
      [30, 'Kafka reachable: draining the outbox'],
      [40, 'Kafka (edge outbox) unreachable; retrying with backoff until it is back'],
      [30, 'Kafka (edge outbox) reachable again after N s'],
    ]);
    const retries = (await a.metrics.forwardFailures.get()).values.reduce((sum, v) => sum + v.value, 0);
    const line = `Kafka down: ${DURING} messages scored locally in ${localMs.toFixed(0)} ms, outbox held ${2 * DURING} records; after the restart it drained in ${drainMs.toFixed(0)} ms; duplicates before de-dup: ${readings.duplicates + preds.duplicates}; ${retries} failed produce attempts, ${forwarderLines.length} forwarder log lines`;
    t.diagnostic(line);
  });

  it('drops the oldest records of a full outbox (drop-oldest), counts them, and never crashes', async () => {
    await agent?.close();
    const repository = await digitsRepository();
    const outbox = await mkdtemp(join(tmpdir(), 'inflow-edge-outbox-'));
    dirs.push(repository, outbox);
    await kafka.stop();
    const config = validateEdgeConfig(
      {
        ...agentConfig({ mqttUrl: mosquitto.url, repository, outbox, kafka: kafka.bootstrapServers, topics }),
        outbox: { path: outbox, maxRecords: 50, overflow: 'drop-oldest' },
      },
      'offline.test',
    );
    agent = await startEdgeAgent(config);
    const a = agent;
    const predictions = await collect(watcher, 'predictions/+');
    await publishDevices(device, ref, 10_000, 100);
    await predictions.until(100);
    await waitFor('all 100 messages to be completed', () => (a.status().inFlight === 0 ? true : undefined));
    const s = a.status().outbox;
    assert.equal(s.records, 50);
    assert.equal(s.dropped, 150);
    assert.equal(
      (await a.metrics.outboxDropped.get()).values.reduce((x, v) => x + v.value, 0),
      150,
    );
    await kafka.start();
    await waitFor('the outbox to drain', () => (a.status().outbox.records === 0 ? true : undefined), { timeoutMs: 60_000, everyMs: 100 });
    // The newest 25 messages (two records each) survived.
    const records = await readUntil(client, [topics.readings], (rs) =>
      [...dedupe(rs, topics.readings).ids].some((id) => id.endsWith(':10099')),
    );
    const ids = dedupe(records, topics.readings).ids;
    for (const id of expectedIds(10_075, 10_100)) assert.ok(ids.has(id), `${id} kept`);
    assert.ok(!ids.has('dev-0:10000'), 'the oldest was dropped');
  });
});
