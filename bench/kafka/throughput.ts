/**
 * inflow's Kafka layer against Kafka's own perf tools, on one broker, in one run:
 *   - produce: Kafka ProducerPerformance vs inflow's KafkaProducer.send (acks=all, idempotent)
 *   - consume: Kafka ConsumerPerformance vs inflow's KafkaConsumer.poll (consumer group)
 *   - exactly-once consume → produce (transaction per batch, offsets in it): inflow only
 * 1 KiB records, 3 partitions. A warm-up round first (the broker's JIT is cold after start),
 * then `--reps` rounds alternating which side goes first; the table shows medians and every run.
 * Not part of `npm test`.
 *
 *   node bench/kafka/throughput.ts [--records 200000] [--batch 1000] [--inflight 4] [--reps 3] [--json out.json]
 * Uses KAFKA_BOOTSTRAP_SERVERS when set, else starts the project's local broker.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
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
    reps: { type: 'string', default: '3' },
    json: { type: 'string', default: '' },
  },
});
const N = Number(values.records);
const BATCH = Number(values.batch);
const INFLIGHT = Number(values.inflight);
const REPS = Number(values.reps);
const SIZE = 1024;
const EOS_N = Math.min(N, 50_000);

const broker = process.env.KAFKA_BOOTSTRAP_SERVERS ? undefined : await startLocalBroker({ heapMb: 1024 });
const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS ?? broker?.bootstrapServers ?? '';
const java = await findJava();
const lib = await ensureKafkaJars();
const client: KafkaClient = createKafkaClient({ bootstrapServers: bootstrap.split(','), clientId: 'bench' });
const admin = client.admin();

async function topic(label: string): Promise<string> {
  const name = `bench-${label}-${randomUUID().slice(0, 8)}`;
  await admin.createTopics([{ topic: name, partitions: 3 }]);
  return name;
}

async function kafkaTool(main: string, args: string[]): Promise<string> {
  const { stdout } = await run(java, ['-Xmx512m', '-cp', join(lib, '*'), main, ...args], { maxBuffer: 64 * 1024 * 1024, timeout: 300_000 });
  return stdout;
}

/**
 * ProducerPerformance, acks=all idempotent, with batches as large as ours (batch.size 1 MiB,
 * linger.ms 5) so it is a ceiling, not Kafka's 16 KiB default; its own records/sec, which
 * includes its JVM's warm-up.
 */
async function kafkaProduce(t: string, n: number): Promise<number> {
  const out = await kafkaTool('org.apache.kafka.tools.ProducerPerformance', [
    '--topic',
    t,
    '--num-records',
    String(n),
    '--record-size',
    String(SIZE),
    '--throughput',
    '-1',
    '--producer-props',
    `bootstrap.servers=${bootstrap}`,
    'acks=all',
    'enable.idempotence=true',
    'batch.size=1048576',
    'linger.ms=5',
  ]);
  return Number(/([\d.]+) records\/sec/.exec(out.trim().split('\n').at(-1) ?? '')?.[1]);
}

/** inflow send(): batches of BATCH, INFLIGHT sends in flight; first send to last ack. */
async function inflowProduce(t: string, n: number): Promise<number> {
  const producer = client.producer({ acks: 'all' });
  const value = Buffer.alloc(SIZE, 7);
  const batches = Array.from({ length: Math.ceil(n / BATCH) }, (_, b) =>
    Array.from({ length: Math.min(BATCH, n - b * BATCH) }, (_, i) => ({ topic: t, key: Buffer.from(`k${(b * BATCH + i) % 1000}`), value })),
  );
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: INFLIGHT }, async () => {
      while (next < batches.length) await producer.send(batches[next++] ?? []);
    }),
  );
  const rate = n / ((performance.now() - started) / 1000);
  await producer.close();
  return rate;
}

/** ConsumerPerformance fetch.nMsg.sec (group join excluded). */
async function kafkaConsume(t: string, n: number): Promise<number> {
  const out = await kafkaTool('org.apache.kafka.tools.ConsumerPerformance', [
    '--bootstrap-server',
    bootstrap,
    '--topic',
    t,
    '--messages',
    String(n),
  ]);
  // start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
  return Number(out.trim().split('\n').at(-1)?.split(',')[9]);
}

/** inflow poll(): first record to the n-th (group join excluded, like fetch.nMsg.sec). */
async function inflowConsume(t: string, n: number): Promise<number> {
  const consumer = client.consumer({ groupId: `bench-${randomUUID()}`, autoOffsetReset: 'earliest', maxBufferedRecords: 4096 });
  await consumer.subscribe([t]);
  let got = 0;
  let started = 0;
  while (got < n) {
    const records = await consumer.poll({ maxRecords: 2000, timeoutMs: 10_000 });
    if (records.length === 0) throw new Error(`consume stalled at ${got}/${n}`);
    if (got === 0) started = performance.now();
    got += records.length;
  }
  const rate = n / ((performance.now() - started) / 1000);
  await consumer.close();
  return rate;
}

/** Exactly-once: poll ≤BATCH, one transaction with the outputs and the offsets, commit. */
async function inflowEos(input: string, n: number): Promise<number> {
  const output = await topic('eos-out');
  const consumer = client.consumer({ groupId: `bench-eos-${randomUUID()}`, autoOffsetReset: 'earliest', isolationLevel: 'read_committed' });
  await consumer.subscribe([input]);
  const producer = client.producer({ transactionalId: `bench-${randomUUID()}` });
  let done = 0;
  let started = 0;
  while (done < n) {
    const records = await consumer.poll({ maxRecords: Math.min(BATCH, n - done), timeoutMs: 10_000 });
    if (records.length === 0) throw new Error(`eos stalled at ${done}`);
    if (done === 0) started = performance.now();
    const txn = await producer.beginTransaction();
    await txn.send(records.map((r) => ({ topic: output, key: r.key, value: r.value })));
    const positions = new Map<number, { topic: string; partition: number; offset: bigint }>();
    for (const r of records) positions.set(r.partition, { topic: r.topic, partition: r.partition, offset: r.offset + 1n });
    await txn.sendOffsets(consumer, [...positions.values()]);
    await txn.commit();
    done += records.length;
  }
  const rate = done / ((performance.now() - started) / 1000);
  await Promise.all([consumer.close(), producer.close()]);
  return rate;
}

const results = {
  kafkaProduce: [] as number[],
  inflowProduce: [] as number[],
  kafkaConsume: [] as number[],
  inflowConsume: [] as number[],
  eos: [] as number[],
};

// Warm-up round (discarded): the broker's JIT and page cache are cold right after start.
{
  const warm = await topic('warm');
  await kafkaProduce(warm, Math.min(N, 50_000));
  await inflowProduce(warm, Math.min(N, 50_000));
  await inflowConsume(warm, Math.min(N, 50_000));
}
for (let rep = 0; rep < REPS; rep++) {
  const a = await topic('kafka');
  const b = await topic('inflow');
  // Alternate which side goes first so neither always meets a busier broker.
  if (rep % 2 === 0) {
    results.kafkaProduce.push(await kafkaProduce(a, N));
    results.inflowProduce.push(await inflowProduce(b, N));
    results.kafkaConsume.push(await kafkaConsume(a, N));
    results.inflowConsume.push(await inflowConsume(b, N));
  } else {
    results.inflowProduce.push(await inflowProduce(b, N));
    results.kafkaProduce.push(await kafkaProduce(a, N));
    results.inflowConsume.push(await inflowConsume(b, N));
    results.kafkaConsume.push(await kafkaConsume(a, N));
  }
  results.eos.push(await inflowEos(b, EOS_N));
  process.stderr.write(`round ${rep + 1}/${REPS} done\n`);
}

await client.close();
await broker?.stop();

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? Number.NaN;
const fmt = (n: number): string => (Number.isNaN(n) ? '—' : Math.round(n).toLocaleString('en-US'));
const runs = (xs: number[]): string => xs.map(fmt).join(' / ');
console.log(`\nKafka ${bootstrap}, ${N} records of ${SIZE} B, 3 partitions, ${REPS} rounds after a warm-up, node ${process.version}\n`);
console.log('| measurement | Kafka tool msgs/s (median) | inflow msgs/s (median) | inflow / Kafka | Kafka runs | inflow runs |');
console.log('|---|---:|---:|---:|---|---|');
const row = (what: string, k: number[], i: number[]): void =>
  console.log(`| ${what} | ${fmt(median(k))} | ${fmt(median(i))} | ${(median(i) / median(k)).toFixed(2)}× | ${runs(k)} | ${runs(i)} |`);
row(`produce, acks=all idempotent (inflow: send() of ${BATCH}, ${INFLIGHT} in flight)`, results.kafkaProduce, results.inflowProduce);
row('consume, consumer group (group join excluded)', results.kafkaConsume, results.inflowConsume);
console.log(
  `| exactly-once consume→produce, ${EOS_N} records, transactions of ≤${BATCH} | — | ${fmt(median(results.eos))} | — | — | ${runs(results.eos)} |`,
);
if (values.json) {
  await writeFile(
    values.json,
    JSON.stringify(
      {
        kind: 'kafka',
        bootstrap,
        records: N,
        recordBytes: SIZE,
        partitions: 3,
        batch: BATCH,
        inflight: INFLIGHT,
        reps: REPS,
        eosRecords: EOS_N,
        node: process.version,
        results,
      },
      null,
      1,
    ),
  );
}
