/**
 * Restore speed of a state store from its changelog on a real broker (issue 17 target: ≥ 100 k
 * changelog records/s; the closing note asks for the restore time of 1 M keys), and the memory
 * it takes (target: bounded by configuration, not by the number of keys): `--keys` distinct
 * 8-byte keys with `--value-bytes` values (lz4, one value repeated: compresses ~60×, the worst
 * case for decoded memory per fetched byte) are produced to a fresh compacted changelog topic
 * (1 partition, as one store partition restores), then replayed into an empty lmdb store by the
 * runtime's restorer (src/streams/runtime/state-restorer.ts: a read_committed restore consumer,
 * 10 000-record engine transactions). Reported: records/s, CPU µs per record (user + system of
 * this process), JS heap before → peak (sampled every 10 ms, garbage included) → after GC, RSS
 * and anonymous RSS before → peak → after GC (the store's data lives in lmdb's file-backed map,
 * not in anonymous memory), and the load average (the machine is shared).
 *
 *   KAFKA_BOOTSTRAP_SERVERS=host:port nice -n 10 node --expose-gc bench/state/restore-bench.ts [--keys 1000000] [--value-bytes 100]
 *
 * `--topic T --keep` reuse a changelog produced earlier (alternating A/B runs restore the same
 * data); `--fetch-bytes` / `--buffer-bytes` set the restore consumer's maxFetchBytes /
 * maxBufferBytes.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createKafkaClient } from '../../src/kafka/index.ts';
import type { ProducerRecord } from '../../src/kafka/types.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { restoreStores } from '../../src/streams/runtime/state-restorer.ts';
import { createStreamsMetrics } from '../../src/streams/runtime/streams-metrics.ts';
import { createLmdbEngine } from '../../src/streams/state/lmdb-engine.ts';

const { values } = parseArgs({
  options: {
    keys: { type: 'string', default: '1000000' },
    'value-bytes': { type: 'string', default: '100' },
    topic: { type: 'string' },
    keep: { type: 'boolean', default: false },
    'fetch-bytes': { type: 'string' },
    'buffer-bytes': { type: 'string' },
  },
});
const keys = Number(values.keys);
const valueBytes = Number(values['value-bytes']);
const bootstrap = (process.env.KAFKA_BOOTSTRAP_SERVERS ?? '').split(',').filter(Boolean);
if (bootstrap.length === 0) throw new Error('set KAFKA_BOOTSTRAP_SERVERS (the broker to measure against)');

const mib = (n: number): string => (n / 2 ** 20).toFixed(0);
/** Anonymous resident memory (heap, malloc arenas), bytes; lmdb's map is file-backed and not in it. */
const rssAnon = (): number => {
  const line = readFileSync('/proc/self/status', 'utf8').match(/^RssAnon:\s+(\d+) kB/m);
  return line ? Number(line[1]) * 1024 : Number.NaN;
};
const client = createKafkaClient({ bootstrapServers: bootstrap, clientId: 'restore-bench' });
const topic = values.topic ?? `restore-bench-${randomUUID().slice(0, 8)}-changelog`;
const dir = mkdtempSync(join(tmpdir(), 'inflow-restore-bench-'));
const admin = client.admin();
try {
  if (values.topic === undefined) {
    await admin.createTopics([{ topic, partitions: 1, configs: { 'cleanup.policy': 'compact' } }]);
    const producer = client.producer({ compression: 'lz4' });
    const value = Buffer.alloc(valueBytes, 7);
    const t0 = Date.now();
    for (let start = 0; start < keys; start += 10_000) {
      const batch: ProducerRecord[] = [];
      for (let i = start; i < Math.min(keys, start + 10_000); i++) {
        const key = Buffer.alloc(8);
        key.writeBigUInt64BE(BigInt(i));
        batch.push({ topic, partition: 0, key, value });
      }
      await producer.send(batch);
    }
    await producer.close();
    console.log(`produced ${keys.toLocaleString('en')} changelog records to ${topic} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }

  globalThis.gc?.();
  const before = { heap: process.memoryUsage().heapUsed, rss: process.memoryUsage().rss, anon: rssAnon() };
  const engine = createLmdbEngine({ dir, name: 'bench', maxBytes: 16 * 1024 ** 3 });
  const load = loadavg()[0]?.toFixed(1);
  const peak = { ...before };
  const sample = (): void => {
    const m = process.memoryUsage();
    peak.heap = Math.max(peak.heap, m.heapUsed);
    peak.rss = Math.max(peak.rss, m.rss);
    peak.anon = Math.max(peak.anon, rssAnon());
  };
  const sampler = setInterval(sample, 10);
  const cpu0 = process.cpuUsage();
  const r0 = process.hrtime.bigint();
  const option = (name: 'fetch-bytes' | 'buffer-bytes'): number | undefined =>
    values[name] === undefined ? undefined : Number(values[name]);
  await restoreStores([{ store: 'bench', engine, topic, partition: 0, from: 0n }], {
    client,
    metrics: createStreamsMetrics(),
    labels: { pipeline: 'bench' },
    log: silentLogger,
    signal: new AbortController().signal,
    consumer: { maxFetchBytes: option('fetch-bytes'), maxBufferBytes: option('buffer-bytes') },
  });
  const seconds = Number(process.hrtime.bigint() - r0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  sample();
  // What stays: garbage collected, the store still open (its data is in lmdb's map, outside the heap).
  globalThis.gc?.();
  await new Promise((resolve) => setTimeout(resolve, 100));
  globalThis.gc?.();
  const after = { heap: process.memoryUsage().heapUsed, rss: process.memoryUsage().rss, anon: rssAnon() };
  const restored = engine.approximateCount();
  await engine.close();
  const cpuUsPerRecord = (cpu.user + cpu.system) / keys;
  console.log(
    `| keys | restore s | records/s | CPU µs/record | JS heap MiB before → peak → after GC | RSS MiB before → peak → after GC | anon RSS MiB before → peak → after GC | load avg |\n|---:|---:|---:|---:|---|---|---|---:|\n| ${keys.toLocaleString('en')} | ${seconds.toFixed(1)} | ${Math.round(keys / seconds).toLocaleString('en')} | ${cpuUsPerRecord.toFixed(1)} | ${mib(before.heap)} → ${mib(peak.heap)} → ${mib(after.heap)} | ${mib(before.rss)} → ${mib(peak.rss)} → ${mib(after.rss)} | ${mib(before.anon)} → ${mib(peak.anon)} → ${mib(after.anon)} | ${load} |`,
  );
  if (restored !== keys) throw new Error(`restored ${restored} keys, expected ${keys}`);
  if (!values.keep) await admin.deleteTopics([topic]);
} finally {
  await admin.close();
  await client.close();
  rmSync(dir, { recursive: true, force: true });
}
