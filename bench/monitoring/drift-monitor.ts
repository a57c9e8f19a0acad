/**
 * Throughput of the live drift monitor on a real broker: `--entries` prediction-log entries of a
 * digits-shaped model (64 numeric inputs, a class label output; the reference profile built from
 * the same distribution) are produced first on `--partitions` partitions; then one monitor drains
 * them, windowing per version and comparing each closed window with the profile (PSI and KS per
 * feature, a report per window). records/s = entries read ÷ the time from start to the last window
 * reported; CPU s per 1 000 records is this process's CPU time over the same span. Not in `npm test`.
 *
 *   node bench/monitoring/drift-monitor.ts [--entries 100000] [--partitions 4]
 * Uses KAFKA_BOOTSTRAP_SERVERS (required).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { createKafkaClient, type ProducerRecord } from '../../src/kafka/index.ts';
import { createDriftMonitor } from '../../src/monitoring/drift-monitor.ts';
import { monitorConfigSchema } from '../../src/monitoring/monitor-config.ts';
import { buildReferenceProfile, PROFILE_FILE } from '../../src/monitoring/reference-profile.ts';

const { values } = parseArgs({
  options: { entries: { type: 'string', default: '100000' }, partitions: { type: 'string', default: '4' } },
});
const n = Number(values.entries);
const partitions = Number(values.partitions);
const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS?.split(',');
if (!bootstrap) throw new Error('set KAFKA_BOOTSTRAP_SERVERS');
const id = randomBytes(4).toString('hex');
const topics = { log: `bench-drift-log-${id}`, monitoring: `bench-drift-mon-${id}`, alerts: `bench-drift-alerts-${id}` };
// Deterministic pseudo-random pixels 0..16 (xorshift), so runs compare.
let seed = 0x2545f491;
const rand = (): number => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
};
const row = () => Array.from({ length: 64 }, () => Math.floor(rand() * 17));
const repo = await mkdtemp(join(tmpdir(), 'inflow-bench-drift-'));
for (const version of [1, 2]) {
  const dir = join(repo, 'digits', String(version));
  await mkdir(dir, { recursive: true });
  const rows = Array.from({ length: 2000 }, () => ({ inputs: { input: row() }, outputs: { label: [Math.floor(rand() * 10)] } }));
  await writeFile(join(dir, PROFILE_FILE), JSON.stringify(buildReferenceProfile(rows, { source: 'bench', categorical: ['label'] })));
}
const client = createKafkaClient({ bootstrapServers: bootstrap, clientId: 'bench-drift' });
const admin = client.admin();
await admin.createTopics([{ topic: topics.log, partitions }]);
const windowMs = 10_000;
const t0 = Math.floor(Date.now() / windowMs) * windowMs - 3_600_000;
// 100 entries per second of record time: n / 1000 windows of 10 s per the two versions together.
const step = 10;
const producer = client.producer({ acks: 'all' });
for (let i = 0; i < n; i += 5000) {
  const batch: ProducerRecord[] = [];
  for (let j = i; j < Math.min(n, i + 5000); j++) {
    const ts = t0 + j * step;
    batch.push({
      topic: topics.log,
      key: Buffer.from(`id-${j}`),
      value: Buffer.from(
        JSON.stringify({ model: 'digits', version: 1 + (j % 2), inputs: { input: row() }, outputs: { label: [j % 10] }, latencyMs: 1 }),
      ),
      timestamp: ts,
    });
  }
  await producer.send(batch);
}
// Sentinels past the last window in every partition.
const end = t0 + n * step + 60_000;
await producer.send(
  Array.from({ length: partitions }, (_, p) => ({
    topic: topics.log,
    partition: p,
    key: Buffer.from(`s-${p}`),
    value: Buffer.from('{"model":"digits","version":1,"inputs":{"input":[0]},"outputs":{"label":[0]}}'),
    timestamp: end,
  })),
);
await producer.close();
const windows = Math.ceil((n * step) / windowMs) * 2;
const monitor = createDriftMonitor({
  client,
  registry: new Registry(),
  config: monitorConfigSchema.parse({
    predictionLog: topics.log,
    groupId: `bench-drift-${id}`,
    monitoringTopic: topics.monitoring,
    alertsTopic: topics.alerts,
    modelRepository: repo,
    windowMs,
    graceMs: 1000,
  }),
});
const abort = new AbortController();
const cpu0 = process.cpuUsage();
const start = performance.now();
let last = start;
const running = monitor.run(abort.signal);
while (monitor.stats().windows < windows) {
  await new Promise((r) => setTimeout(r, 20));
  last = performance.now();
}
const cpu = process.cpuUsage(cpu0);
abort.abort();
await running;
const s = monitor.stats();
const seconds = (last - start) / 1000;
console.log(
  JSON.stringify({
    records: s.records,
    late: s.late,
    windows: s.windows,
    seconds: Number(seconds.toFixed(2)),
    recordsPerSecond: Math.round(s.records / seconds),
    cpuSecondsPer1kRecords: Number(((cpu.user + cpu.system) / 1e6 / (s.records / 1000)).toFixed(3)),
    cpuSecondsPerSecond: Number(((cpu.user + cpu.system) / 1e6 / seconds).toFixed(2)),
    load: loadavg()[0],
  }),
);
await admin.deleteTopics(Object.values(topics));
await admin.close();
await client.close();
await rm(repo, { recursive: true, force: true });
