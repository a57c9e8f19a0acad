/**
 * Throughput of the live-accuracy monitor (issue 18's closing figure) on a real broker:
 * `--predictions` prediction-log entries (digits-like: a class and 10 probabilities) and as many
 * labels (on time; every 10th never comes) are produced first on `--partitions` partitions each;
 * then one monitor drains both topics, joining, scoring and writing each window's report in a
 * transaction. records/s = (predictions + labels read) ÷ the time from start to the last window
 * reported. Not in `npm test`.
 *
 *   node bench/monitoring/accuracy-monitor.ts [--predictions 100000] [--partitions 4]
 * Uses KAFKA_BOOTSTRAP_SERVERS (required).
 */
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { createKafkaClient, type ProducerRecord } from '../../src/kafka/index.ts';
import { accuracyConfigSchema } from '../../src/monitoring/accuracy-config.ts';
import { createAccuracyMonitor } from '../../src/monitoring/accuracy-monitor.ts';

const { values } = parseArgs({
  options: { predictions: { type: 'string', default: '100000' }, partitions: { type: 'string', default: '4' } },
});
const n = Number(values.predictions);
const partitions = Number(values.partitions);
const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS?.split(',');
if (!bootstrap) throw new Error('set KAFKA_BOOTSTRAP_SERVERS');
const id = randomBytes(4).toString('hex');
const topics = {
  log: `bench-acc-log-${id}`,
  labels: `bench-acc-labels-${id}`,
  monitoring: `bench-acc-mon-${id}`,
  dlq: `bench-acc-dlq-${id}`,
};
const client = createKafkaClient({ bootstrapServers: bootstrap, clientId: 'bench-accuracy' });
const admin = client.admin();
await admin.createTopics([
  { topic: topics.log, partitions },
  { topic: topics.labels, partitions },
]);
const windowMs = 10_000;
const t0 = Math.floor(Date.now() / windowMs) * windowMs - 3_600_000;
// 100 predictions per second of record time: n / 100 s, so n / 1000 windows of 10 s.
const step = 10;
const producer = client.producer({ acks: 'all' });
const probs = (k: number) => Array.from({ length: 10 }, (_, j) => (j === k ? 0.91 : 0.01));
for (let i = 0; i < n; i += 5000) {
  const batch: ProducerRecord[] = [];
  for (let j = i; j < Math.min(n, i + 5000); j++) {
    const predicted = j % 10;
    const ts = t0 + j * step;
    batch.push({
      topic: topics.log,
      key: Buffer.from(`id-${j}`),
      value: Buffer.from(
        JSON.stringify({
          requestId: `id-${j}`,
          key: `id-${j}`,
          model: 'digits',
          version: 1 + (j % 2),
          outputs: { label: [predicted], probabilities: probs(predicted) },
          latencyMs: 1,
          timestamp: ts,
        }),
      ),
      timestamp: ts,
    });
    if (j % 10 !== 3)
      batch.push({
        topic: topics.labels,
        key: Buffer.from(`id-${j}`),
        value: Buffer.from(JSON.stringify({ label: (j * 7) % 10 })),
        timestamp: ts + 2_000,
      });
  }
  await producer.send(batch);
}
// Sentinels past the last window in every partition of both topics.
const end = t0 + n * step + 60_000;
await producer.send(
  Array.from({ length: partitions }, (_, p) => [
    {
      topic: topics.log,
      partition: p,
      key: Buffer.from(`s-${p}`),
      value: Buffer.from('{"model":"digits","version":1,"outputs":{"label":[0]}}'),
      timestamp: end,
    },
    { topic: topics.labels, partition: p, key: Buffer.from(`s-${p}`), value: Buffer.from('{"label":0}'), timestamp: end },
  ]).flat(),
);
await producer.close();
// Baseline: the same records drained by a bare consumer (same options, no join, no commits).
const total = n + Math.floor(n * 0.9) + 2 * partitions;
const bare = client.consumer({
  groupId: `bench-acc-bare-${id}`,
  autoOffsetReset: 'earliest',
  isolationLevel: 'read_committed',
  maxBufferedRecords: 4096,
});
await bare.subscribe([topics.log, topics.labels]);
const bareStart = performance.now();
let drained = 0;
while (drained < total) drained += (await bare.poll({ maxRecords: 1000, timeoutMs: 500 })).length;
const bareSeconds = (performance.now() - bareStart) / 1000;
await bare.close();
const windows = Math.ceil((n * step) / windowMs) * 2;
const monitor = createAccuracyMonitor({
  client,
  predictionLog: topics.log,
  groupId: `bench-acc-${id}`,
  monitoringTopic: topics.monitoring,
  registry: new Registry(),
  accuracy: accuracyConfigSchema.parse({
    labelsTopic: topics.labels,
    probabilities: 'outputs.probabilities',
    windowMs,
    labelWindowMs: 5_000,
    graceMs: 1_000,
    deadLetterTopic: topics.dlq,
  }),
});
const abort = new AbortController();
const cpu0 = process.cpuUsage();
const start = performance.now();
let last = start;
const running = monitor.run(abort.signal);
while (monitor.stats().reports < windows) {
  await new Promise((r) => setTimeout(r, 20));
  last = performance.now();
}
abort.abort();
await running;
const s = monitor.stats();
const seconds = (last - start) / 1000;
const cpu = process.cpuUsage(cpu0);
console.log(
  JSON.stringify({
    predictions: s.predictions,
    labels: s.labels,
    reports: s.reports,
    seconds: Number(seconds.toFixed(2)),
    recordsPerSecond: Math.round((s.predictions + s.labels) / seconds),
    bareConsumerRecordsPerSecond: Math.round(drained / bareSeconds),
    cpuSecondsPerSecond: Number(((cpu.user + cpu.system) / 1e6 / seconds).toFixed(2)),
    load: loadavg()[0],
  }),
);
await admin.deleteTopics(Object.values(topics));
await admin.close();
await client.close();
