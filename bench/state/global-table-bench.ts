/**
 * Memory of a global table (issue 17: memory bounded by configuration, not by rows): `--rows`
 * rows (string keys, ~40-byte JSON values, lz4) are produced to a compacted topic (3
 * partitions), then loaded by the runtime's global tables (src/streams/runtime/global-tables.ts)
 * in memory (`--engine memory`: no state directory) or on lmdb (`--engine lmdb`: a state
 * directory). Reported: load time, rows/s, JS heap before → peak (sampled every 10 ms, garbage
 * included) → with the table loaded after GC, anonymous RSS before → after GC (lmdb's map is
 * file-backed, not in it), a lookup checked, and the load average.
 *
 *   KAFKA_BOOTSTRAP_SERVERS=host:port nice -n 10 node --expose-gc bench/state/global-table-bench.ts [--rows 1000000] [--engine lmdb|memory] [--topic T --keep]
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createKafkaClient } from '../../src/kafka/index.ts';
import { jsonSerde, stringSerde } from '../../src/kafka/serdes.ts';
import type { ProducerRecord } from '../../src/kafka/types.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { createStreamsBuilder } from '../../src/streams/api/streams-builder.ts';
import { createGlobalTables } from '../../src/streams/runtime/global-tables.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    engine: { type: 'string', default: 'lmdb' },
    topic: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const rows = Number(values.rows);
if (values.engine !== 'lmdb' && values.engine !== 'memory') throw new Error(`--engine ${values.engine}: expected lmdb or memory`);
const bootstrap = (process.env.KAFKA_BOOTSTRAP_SERVERS ?? '').split(',').filter(Boolean);
if (bootstrap.length === 0) throw new Error('set KAFKA_BOOTSTRAP_SERVERS (the broker to measure against)');

const mib = (n: number): string => (n / 2 ** 20).toFixed(0);
const rssAnon = (): number => Number(readFileSync('/proc/self/status', 'utf8').match(/^RssAnon:\s+(\d+) kB/m)?.[1] ?? Number.NaN) * 1024;
const rowSerdes = { key: stringSerde, value: jsonSerde<{ segment: string; age: number }>() };
const client = createKafkaClient({ bootstrapServers: bootstrap, clientId: 'global-table-bench' });
const topic = values.topic ?? `global-table-bench-${randomUUID().slice(0, 8)}`;
const stateDir = mkdtempSync(join(tmpdir(), 'inflow-global-table-bench-'));
const admin = client.admin();
try {
  if (values.topic === undefined) {
    await admin.createTopics([{ topic, partitions: 3, configs: { 'cleanup.policy': 'compact' } }]);
    const producer = client.producer({ compression: 'lz4' });
    for (let start = 0; start < rows; start += 10_000) {
      const batch: ProducerRecord[] = [];
      for (let i = start; i < Math.min(rows, start + 10_000); i++) {
        batch.push({
          topic,
          key: Buffer.from(`customer-${i}`),
          value: Buffer.from(JSON.stringify({ segment: `s${i % 7}`, age: 18 + (i % 60) })),
        });
      }
      await producer.send(batch);
    }
    await producer.close();
    console.log(`produced ${rows.toLocaleString('en')} rows to ${topic}`);
  }
  const b = createStreamsBuilder();
  const table = b.globalTable(topic, rowSerdes, { name: 'bench-table' });
  b.stream('unused-bench-input', rowSerdes)
    .leftJoin(table, { key: (r) => r.key as string, joiner: (v) => v }, { name: 'enrich' })
    .to('unused-bench-output', rowSerdes);
  const tables = createGlobalTables({
    topology: b.build(),
    client,
    log: silentLogger,
    onBadRecord: async (_r, _t, e) => {
      throw e;
    },
    onFatal: (e) => {
      throw e;
    },
    applicationId: 'bench',
    ...(values.engine === 'lmdb' ? { stateDir, maxStoreBytes: 8 * 1024 ** 3 } : {}),
  });
  globalThis.gc?.();
  const before = { heap: process.memoryUsage().heapUsed, anon: rssAnon() };
  let peak = before.heap;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed)), 10);
  const load = loadavg()[0]?.toFixed(1);
  const t0 = process.hrtime.bigint();
  await tables.start(new AbortController().signal);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  clearInterval(sampler);
  globalThis.gc?.();
  await new Promise((resolve) => setTimeout(resolve, 100));
  globalThis.gc?.();
  const loaded = { heap: process.memoryUsage().heapUsed, anon: rssAnon() };
  const probe = tables.store('bench-table')?.get(`customer-${rows - 1}`) as { age: number } | undefined;
  if (probe?.age !== 18 + ((rows - 1) % 60)) throw new Error(`lookup of the last row gave ${JSON.stringify(probe)}`);
  await tables.close();
  console.log(
    `| engine | rows | load s | rows/s | JS heap MiB before → peak → loaded, after GC | anon RSS MiB before → loaded, after GC | load avg |\n|---|---:|---:|---:|---|---|---:|\n| ${values.engine} | ${rows.toLocaleString('en')} | ${seconds.toFixed(1)} | ${Math.round(rows / seconds).toLocaleString('en')} | ${mib(before.heap)} → ${mib(peak)} → ${mib(loaded.heap)} | ${mib(before.anon)} → ${mib(loaded.anon)} | ${load} |`,
  );
  if (!values.keep) await admin.deleteTopics([topic]);
} finally {
  await admin.close();
  await client.close();
  rmSync(stateDir, { recursive: true, force: true });
}
