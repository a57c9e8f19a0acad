/**
 * The drift monitor on the real broker: prediction-log entries (the shape pipelines write with
 * includeInputs) in windows of record time; a window like the reference raises nothing, a shifted
 * one raises alerts on the alerts topic with the evidence, a version without a reference profile
 * is reported as "drift unavailable" with the reason, and the metrics say the same.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { createDriftMonitor, type DriftReport } from '../../src/monitoring/drift-monitor.ts';
import { monitorConfigSchema } from '../../src/monitoring/monitor-config.ts';
import { buildReferenceProfile, PROFILE_FILE } from '../../src/monitoring/reference-profile.ts';
import { readTopicToEnd } from '../../src/monitoring/rollout-state.ts';
import { brokerOrSkip } from '../setup/broker.ts';

const bootstrap = brokerOrSkip();

/** Deterministic uniform numbers (mulberry32). */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const row = (r: () => number, shift: number) => ({
  inputs: { input: [r() * 10 + shift, r() * 5] },
  outputs: { label: [Math.floor(r() * 3)] },
});

describe('drift monitor over Apache Kafka', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  const id = randomBytes(4).toString('hex');
  const topics = {
    log: `inflow-predictions-drift-${id}`,
    alerts: `inflow-alerts-drift-${id}`,
    monitoring: `inflow-monitoring-drift-${id}`,
  };
  let client: KafkaClient;
  let repo: string;

  before(async () => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'drift-it' });
    repo = await mkdtemp(join(tmpdir(), 'inflow-drift-it-'));
    const r = random(1);
    const profile = buildReferenceProfile(
      Array.from({ length: 2000 }, () => row(r, 0)),
      { source: 'validation split', categorical: ['label'] },
    );
    await mkdir(join(repo, 'scorer', '1'), { recursive: true });
    await mkdir(join(repo, 'scorer', '2'), { recursive: true });
    await writeFile(join(repo, 'scorer', '1', PROFILE_FILE), JSON.stringify(profile));
    const admin = client.admin();
    await admin.createTopics([{ topic: topics.log, partitions: 2 }], { ifNotExists: true });
    await admin.close();
  });
  after(async () => {
    const admin = client?.admin();
    await admin?.deleteTopics(Object.values(topics)).catch(() => undefined);
    await admin?.close();
    await client?.close();
    await rm(repo, { recursive: true, force: true });
  });

  it('reports each window, alerts on the shifted one with the evidence, and says drift is unavailable without a profile', async () => {
    const windowMs = 60_000;
    const t0 = Math.floor(Date.now() / windowMs) * windowMs - 10 * windowMs;
    const r = random(2);
    const entry = (model: string, version: number, ts: number, shift: number, i: number) => ({
      topic: topics.log,
      key: Buffer.from(`k-${i}`),
      value: Buffer.from(JSON.stringify({ requestId: `r-${i}`, model, version, ...row(r, shift), latencyMs: 1, timestamp: ts })),
      timestamp: ts,
    });
    const records = [
      // Window 0: like the reference. Window 1: input[0] shifted by 4.
      ...Array.from({ length: 400 }, (_, i) => entry('scorer', 1, t0 + i * 100, 0, i)),
      ...Array.from({ length: 400 }, (_, i) => entry('scorer', 1, t0 + windowMs + i * 100, 4, 1000 + i)),
      ...Array.from({ length: 150 }, (_, i) => entry('scorer', 2, t0 + i * 100, 0, 2000 + i)),
      // A record past window 1's end + grace, so windows 0 and 1 close.
      entry('scorer', 1, t0 + 3 * windowMs, 0, 3000),
      // Not a prediction-log entry with inputs: skipped, nothing crashes.
      { topic: topics.log, key: null, value: Buffer.from('not json'), timestamp: t0 + 3 * windowMs },
    ];
    const producer = client.producer({ acks: 'all' });
    await producer.send(records);
    await producer.close();

    const config = monitorConfigSchema.parse({
      predictionLog: topics.log,
      groupId: `drift-it-${id}`,
      alertsTopic: topics.alerts,
      monitoringTopic: topics.monitoring,
      modelRepository: repo,
      windowMs,
      graceMs: 1000,
      models: { scorer: { drift: { minSamples: 100 } } },
    });
    const registry = new Registry();
    const reports: DriftReport[] = [];
    const monitor = createDriftMonitor({ client, config, registry, onReport: (x) => reports.push(x) });
    const abort = new AbortController();
    const running = monitor.run(abort.signal);
    const deadline = Date.now() + 60_000;
    while (reports.length < 3 && Date.now() < deadline) await delay(100);
    abort.abort();
    await running;

    const byKey = new Map(reports.map((x) => [`${x.version}@${x.window.start - t0}`, x]));
    const calm = byKey.get(`1@0`);
    const shifted = byKey.get(`1@${windowMs}`);
    const missing = byKey.get('2@0');
    assert.ok(calm && shifted && missing, JSON.stringify([...byKey.keys()]));
    assert.equal(calm.predictions, 400);
    assert.equal(calm.alerts, 0, JSON.stringify(calm.features?.filter((f) => f.breaches.length > 0)));
    const input0 = shifted.features?.find((f) => f.feature === 'input[0]');
    assert.deepEqual(input0?.breaches.map((b) => b.statistic).sort(), ['ks', 'psi']);
    assert.deepEqual(shifted.features?.find((f) => f.feature === 'input[1]')?.breaches, []);
    assert.match(
      missing.unavailable ?? '',
      /^model "scorer" version 2 has no reference profile \(reference-profile\.json in its version folder\): drift is unavailable for it/,
    );
    assert.equal(monitor.stats().skipped, 1);

    type Alert = {
      kind: string;
      version: number;
      feature: string;
      statistic: string;
      value: number;
      threshold: number;
      evidence: { reference: number[]; window: number[] };
    };
    const alerts: Alert[] = [];
    await readTopicToEnd(client, topics.alerts, (_, v) => {
      if (v) alerts.push(JSON.parse(v.toString('utf8')) as Alert);
    });
    assert.deepEqual(alerts.map((a) => `${a.version} ${a.feature} ${a.statistic}`).sort(), ['1 input[0] ks', '1 input[0] psi']);
    const psiAlert = alerts.find((a) => a.statistic === 'psi');
    assert.ok(psiAlert && psiAlert.value > psiAlert.threshold && psiAlert.evidence.window.length === psiAlert.evidence.reference.length);
    const text = await registry.metrics();
    assert.match(text, /inflow_drift_alerts_total\{model="scorer",version="1",statistic="psi"\} 1/);
    assert.match(text, /inflow_drift_unavailable\{model="scorer",version="2"\} 1/);
    let monitoringRecords = 0;
    await readTopicToEnd(client, topics.monitoring, () => monitoringRecords++);
    assert.equal(monitoringRecords, 3);
  });
});
