/**
 * Restore speed of a state store from its changelog on a real broker (issue 17 target: ≥ 100 k
 * changelog records/s; the closing note asks for the restore time of 1 M keys), and the memory
 * it takes: `--keys` distinct 8-byte keys with `--value-bytes` values are produced to a fresh
 * compacted changelog topic (1 partition, as one store partition restores), then replayed into an
 * empty lmdb store by the runtime's restorer (src/streams/runtime/state-restorer.ts: a
 * read_committed restore consumer, 10 000-record engine transactions). Reported: records/s,
 * seconds, JS heap and RSS before and after (the store's data lives in lmdb's memory map, so heap
 * must not grow with the key count), and the load average (the machine is shared).
 *
 *   KAFKA_BOOTSTRAP_SERVERS=host:port nice -n 10 node --expose-gc bench/state/restore-bench.ts [--keys 1000000] [--value-bytes 100]
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
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
  options: { keys: { type: 'string', default: '1000000' }, 'value-bytes': { type: 'string', default: '100' } },
});
const keys = Number(values.keys);
const valueBytes = Number(values['value-bytes']);
const bootstrap = (process.env.KAFKA_BOOTSTRAP_SERVERS ?? '').split(',').filter(Boolean);
if (bootstrap.length === 0) throw new Error('set KAFKA_BOOTSTRAP_SERVERS (the broker to measure against)');

const mib = (n: number): string => `${(n / 2 ** 20).toFixed(0)} MiB`;
const client = createKafkaClient({ bootstrapServers: bootstrap, clientId: 'restore-bench' });
const topic = `restore-bench-${randomUUID().slice(0, 8)}-changelog`;
const dir = mkdtempSync(join(tmpdir(), 'inflow-restore-bench-'));
try {
  const admin = client.admin();
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
  console.log(`produced ${keys.toLocaleString('en')} changelog records in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  globalThis.gc?.();
  const before = process.memoryUsage();
  const engine = createLmdbEngine({ dir, name: 'bench', maxBytes: 16 * 1024 ** 3 });
  const load = loadavg()[0]?.toFixed(1);
  let peakHeap = before.heapUsed;
  const sampler = setInterval(() => (peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed)), 50);
  const r0 = process.hrtime.bigint();
  await restoreStores([{ store: 'bench', engine, topic, partition: 0, from: 0n }], {
    client,
    metrics: createStreamsMetrics(),
    labels: { pipeline: 'bench' },
    log: silentLogger,
    signal: new AbortController().signal,
  });
  const seconds = Number(process.hrtime.bigint() - r0) / 1e9;
  clearInterval(sampler);
  const afterRaw = process.memoryUsage();
  // What stays: garbage collected, the store still open (its data is in lmdb's map, outside the heap).
  globalThis.gc?.();
  const after = process.memoryUsage();
  const restored = engine.approximateCount();
  await engine.close();
  console.log(
    `| keys | value bytes | restore s | records/s | heap before → at end → after GC | RSS before → after | load avg |\n|---:|---:|---:|---:|---|---|---:|\n| ${keys.toLocaleString('en')} | ${valueBytes} | ${seconds.toFixed(1)} | ${Math.round(keys / seconds).toLocaleString('en')} | ${mib(before.heapUsed)} → ${mib(Math.max(peakHeap, afterRaw.heapUsed))} → ${mib(after.heapUsed)} | ${mib(before.rss)} → ${mib(after.rss)} | ${load} |`,
  );
  if (restored !== keys) throw new Error(`restored ${restored} keys, expected ${keys}`);
  await admin.deleteTopics([topic]);
  await admin.close();
} finally {
  await client.close();
  rmSync(dir, { recursive: true, force: true });
}
