/**
 * inflow's Kafka layer against Kafka's own perf tools, on one broker, in one run:
 *   - produce: Kafka ProducerPerformance vs inflow's KafkaProducer.send (acks=all, idempotent)
 *   - consume: Kafka ConsumerPerformance vs inflow's KafkaConsumer.poll (consumer group)
 *   - exactly-once consume → produce (transaction per batch, offsets in it): inflow only
 * 1 KiB records. Prints a table with ratios (inflow / Kafka tool). Not part of `npm test`.
 *
 *   node bench/kafka/throughput.ts [--records 200000] [--batch 1000] [--inflight 4]
 * Uses KAFKA_BOOTSTRAP_SERVERS when set, else starts the project's local broker.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { ensureKafkaJars } from '../../src/kafka/broker/broker-jars.ts';
import { findJava } from '../../src/kafka/broker/java.ts';
import { startLocalBroker } from '../../src/kafka/broker/local-broker.ts';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '200000' },
    batch: { type: 'string', default: '1000' },
    inflight: { type: 'string', default: '4' },
  },
});
const N = Number(values.records);
const BATCH = Number(values.batch);
const INFLIGHT = Number(values.inflight);
const SIZE = 1024;

const broker = process.env.KAFKA_BOOTSTRAP_SERVERS ? undefined : await startLocalBroker({ heapMb: 1024 });
const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS ?? broker?.bootstrapServers ?? '';
const java = await findJava();
const lib = await ensureKafkaJars();
const client: KafkaClient = createKafkaClient({ bootstrapServers: bootstrap.split(','), clientId: 'bench' });
const admin = client.admin();
const topic = async (label: string): Promise<string> => {
  const name = `bench-${label}-${randomUUID().slice(0, 8)}`;
  await admin.createTopics([{ topic: name, partitions: 3 }]);
  return name;
};
const rows: Array<{ what: string; kafka?: number; inflow?: number }> = [];

async function kafkaTool(main: string, args: string[]): Promise<string> {
  const { stdout } = await run(java, ['-Xmx512m', '-cp', join(lib, '*'), main, ...args], { maxBuffer: 64 * 1024 * 1024, timeout: 300_000 });
  return stdout;
}

// --- produce ---------------------------------------------------------------------------
const ppTopic = await topic('pp');
const pp = await kafkaTool('org.apache.kafka.tools.ProducerPerformance', [
  '--topic',
  ppTopic,
  '--num-records',
  String(N),
  '--record-size',
  String(SIZE),
  '--throughput',
  '-1',
  '--producer-props',
  `bootstrap.servers=${bootstrap}`,
  'acks=all',
  'enable.idempotence=true',
]);
const ppRate = Number(/([\d.]+) records\/sec/.exec(pp.trim().split('\n').at(-1) ?? '')?.[1]);

const ourTopic = await topic('inflow');
const producer = client.producer({ acks: 'all' });
const value = Buffer.alloc(SIZE, 7);
const batches = Array.from({ length: Math.ceil(N / BATCH) }, (_, b) =>
  Array.from({ length: Math.min(BATCH, N - b * BATCH) }, (_, i) => ({
    topic: ourTopic,
    key: Buffer.from(`k${(b * BATCH + i) % 1000}`),
    value,
  })),
);
let next = 0;
const t0 = performance.now();
await Promise.all(
  Array.from({ length: INFLIGHT }, async () => {
    while (next < batches.length) await producer.send(batches[next++] ?? []);
  }),
);
const ourProduce = N / ((performance.now() - t0) / 1000);
rows.push({
  what: `produce 1 KiB, acks=all idempotent (inflow: batches of ${BATCH}, ${INFLIGHT} in flight)`,
  kafka: ppRate,
  inflow: ourProduce,
});

// --- consume ---------------------------------------------------------------------------
const cpStats = await kafkaTool('org.apache.kafka.tools.ConsumerPerformance', [
  '--bootstrap-server',
  bootstrap,
  '--topic',
  ppTopic,
  '--messages',
  String(N),
]);
// Summary line: start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
const summary =
  cpStats
    .trim()
    .split('\n')
    .at(-1)
    ?.split(',')
    .map((s) => s.trim()) ?? [];
const cpRate = Number(summary[9]); // fetch.nMsg.sec: excludes the group join, like our timing below

const consumer = client.consumer({ groupId: `bench-${randomUUID()}`, autoOffsetReset: 'earliest', maxBufferedRecords: 4096 });
await consumer.subscribe([ourTopic]);
let got = 0;
let t1 = 0;
while (got < N) {
  const records = await consumer.poll({ maxRecords: 2000, timeoutMs: 5000 });
  if (records.length === 0) throw new Error(`consume stalled at ${got}/${N}`);
  if (got === 0) t1 = performance.now();
  got += records.length;
}
const ourConsume = (N - 0) / ((performance.now() - t1) / 1000);
rows.push({ what: 'consume 1 KiB, consumer group (fetch time, group join excluded)', kafka: cpRate, inflow: ourConsume });
await consumer.close();

// --- exactly-once consume → produce ------------------------------------------------------
const eosN = Math.min(N, 50_000);
const eosOut = await topic('eos-out');
const eosConsumer = client.consumer({
  groupId: `bench-eos-${randomUUID()}`,
  autoOffsetReset: 'earliest',
  isolationLevel: 'read_committed',
  maxBufferedRecords: 4096,
});
await eosConsumer.subscribe([ourTopic]);
const txProducer = client.producer({ transactionalId: `bench-${randomUUID()}` });
let done = 0;
let txns = 0;
let t2 = 0;
while (done < eosN) {
  const records = await eosConsumer.poll({ maxRecords: Math.min(BATCH, eosN - done), timeoutMs: 5000 });
  if (records.length === 0) throw new Error(`eos stalled at ${done}`);
  if (done === 0) t2 = performance.now();
  const txn = await txProducer.beginTransaction();
  await txn.send(records.map((r) => ({ topic: eosOut, key: r.key, value: r.value })));
  const positions = new Map<string, { topic: string; partition: number; offset: bigint }>();
  for (const r of records) positions.set(`${r.partition}`, { topic: r.topic, partition: r.partition, offset: r.offset + 1n });
  await txn.sendOffsets(eosConsumer, [...positions.values()]);
  await txn.commit();
  done += records.length;
  txns += 1;
}
const eosRate = done / ((performance.now() - t2) / 1000);
rows.push({ what: `exactly-once consume→produce (${txns} transactions of ≤${BATCH})`, inflow: eosRate });

await client.close();
await broker?.stop();

const fmt = (n?: number): string => (n === undefined || Number.isNaN(n) ? '—' : Math.round(n).toLocaleString('en-US'));
console.log(`\nKafka ${bootstrap}, ${N} records of ${SIZE} B, node ${process.version}\n`);
console.log('| measurement | Kafka tool msgs/s | inflow msgs/s | inflow / Kafka |');
console.log('|---|---:|---:|---:|');
for (const r of rows) {
  const ratio = r.kafka && r.inflow ? `${(r.inflow / r.kafka).toFixed(2)}×` : '—';
  console.log(`| ${r.what} | ${fmt(r.kafka)} | ${fmt(r.inflow)} | ${ratio} |`);
}
