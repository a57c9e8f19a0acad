// @confluentinc/kafka-javascript side of the bake-off, using its KafkaJS-compatible promise API
// (`require('@confluentinc/kafka-javascript').KafkaJS`). Usage: node ckjs.mjs <op> key=value ...
import ckjs from '@confluentinc/kafka-javascript';
import { BOOTSTRAP, SEND_BATCH, SEND_WINDOW, TXN_EVERY, emit, parseArgs, payload, rate, transform, watchdog, windowed } from './common.mjs';

const { Kafka, logLevel } = ckjs.KafkaJS;
const args = parseArgs();
const n = Number(args.n);
const kafka = new Kafka({ kafkaJS: { brokers: [BOOTSTRAP], clientId: 'bench-ckjs', logLevel: logLevel.ERROR } });
watchdog();

async function produce() {
  const idem = args.idem === '1';
  const producer = kafka.producer({
    kafkaJS: { acks: args.acks === 'all' ? -1 : 1, idempotent: idem, allowAutoTopicCreation: false },
    'linger.ms': 5, // librdkafka default, stated explicitly
    'batch.size': 1_000_000, // librdkafka default, stated explicitly
  });
  await producer.connect();
  const value = payload();
  const t0 = performance.now();
  await windowed(n, SEND_BATCH, SEND_WINDOW, (count) => {
    const messages = new Array(count);
    for (let i = 0; i < count; i++) messages[i] = { value };
    return producer.send({ topic: args.topic, messages });
  });
  await producer.flush({ timeout: 30_000 });
  const ms = performance.now() - t0;
  await producer.disconnect();
  emit({ client: 'confluent', op: 'produce', n, ms, ...rate(n, ms) });
}

async function consume() {
  const consumer = kafka.consumer({ kafkaJS: { groupId: args.group, fromBeginning: true, autoCommit: true, autoCommitInterval: 5000 } });
  await consumer.connect();
  const t0 = performance.now();
  await consumer.subscribe({ topics: [args.topic] });
  let count = 0;
  let bytes = 0;
  let tFirst = 0;
  let done;
  const finished = new Promise((resolve) => {
    done = resolve;
  });
  const onMessage = (m) => {
    if (count === 0) tFirst = performance.now();
    count++;
    bytes += m.value.length;
    if (count === n) done();
  };
  if (args.mode === 'eachMessage') {
    consumer.run({ eachMessage: async ({ message }) => onMessage(message) });
  } else {
    consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) onMessage(m);
      },
    });
  }
  await finished;
  const tEnd = performance.now();
  await consumer.disconnect();
  // Primary figure: subscribe() call -> N-th record (group join + fetches). Also report first->last.
  const ms = tEnd - t0;
  emit({
    client: 'confluent',
    op: 'consume',
    mode: args.mode ?? 'eachBatch',
    n: count,
    bytes,
    ms,
    firstToLastMs: tEnd - tFirst,
    ...rate(count, ms),
    steadyMsgsPerSec: count / ((tEnd - tFirst) / 1000),
  });
}

async function txn() {
  const groupId = args.group;
  const consumer = kafka.consumer({ kafkaJS: { groupId, fromBeginning: true, autoCommit: false } }); // readUncommitted=false => read_committed
  const producer = kafka.producer({
    kafkaJS: { transactionalId: `bench-ckjs-${groupId}`, idempotent: true, acks: -1, allowAutoTopicCreation: false },
    'linger.ms': 5,
  });
  await producer.connect();
  await consumer.connect();
  const t0 = performance.now();
  await consumer.subscribe({ topics: [args.in] });
  let processed = 0;
  let txns = 0;
  let tFirst = 0;
  let pending = [];
  let last = new Map(); // partition -> last offset (string) seen in this transaction
  let done, fail;
  const finished = new Promise((resolve, reject) => {
    done = resolve;
    fail = reject;
  });
  consumer.run({
    eachBatch: async ({ batch }) => {
      try {
        for (const m of batch.messages) {
          if (processed === 0) tFirst = performance.now();
          processed++;
          pending.push({ key: m.key, value: transform(batch.partition, m.offset, m.value) });
          last.set(batch.partition, m.offset);
          if (pending.length >= TXN_EVERY || processed === n) {
            const tx = await producer.transaction();
            try {
              await tx.send({ topic: args.out, messages: pending });
              await tx.sendOffsets({
                consumer,
                topics: [
                  {
                    topic: args.in,
                    partitions: [...last].map(([partition, offset]) => ({ partition, offset: (BigInt(offset) + 1n).toString() })),
                  },
                ],
              });
              await tx.commit();
            } catch (e) {
              await tx.abort().catch(() => {});
              throw e;
            }
            txns++;
            pending = [];
            last = new Map();
            if (processed === n) done();
          }
        }
      } catch (e) {
        fail(e);
      }
    },
  });
  await finished;
  const tEnd = performance.now();
  await consumer.disconnect();
  await producer.disconnect();
  const ms = tEnd - t0;
  emit({ client: 'confluent', op: 'txn', n: processed, txns, ms, firstToLastMs: tEnd - tFirst, ...rate(processed, ms) });
}

const ops = { produce, consume, txn };
ops[args.op]().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
