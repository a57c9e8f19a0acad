// @platformatic/kafka side of the bake-off. Usage: node plt.mjs <op> key=value ...
import { Consumer, FetchIsolationLevels, ProduceAcks, Producer, findErrorBy } from '@platformatic/kafka';
import { BOOTSTRAP, SEND_BATCH, SEND_WINDOW, TXN_EVERY, emit, parseArgs, payload, rate, transform, watchdog, windowed } from './common.mjs';

const args = parseArgs();
const n = Number(args.n);
const bootstrapBrokers = [BOOTSTRAP];

// Workaround (see README / ADR): after EndTxn the broker answers the next AddPartitionsToTxn with
// CONCURRENT_TRANSACTIONS until the markers are written; the client retries it with the generic
// `retryDelay` (default 1000 ms), so every transaction after the first stalls ~1 s in send().
// The Java client backs off 20 ms for this error; do the same. Set PLT_TXN_FIX=0 to see the default.
const txnRetryDelay = (_client, _op, _attempt, _retries, error) => (findErrorBy(error, 'apiId', 'CONCURRENT_TRANSACTIONS') ? 20 : 1000);
watchdog();

async function produce() {
  const idem = args.idem === '1';
  const acks = args.acks === 'all' ? ProduceAcks.ALL : ProduceAcks.LEADER;
  const producer = new Producer({ clientId: 'bench-plt', bootstrapBrokers, acks, idempotent: idem, autocreateTopics: false });
  await producer.metadata({ topics: [args.topic] }); // connect + warm metadata outside the timed region
  const value = payload();
  const t0 = performance.now();
  if (args.mode === 'stream') {
    // Per-record writes; the library batches (batchSize/batchTime) like a linger.
    // highWaterMark must be raised too: with the default (16) the stream flushes 16-record batches.
    const stream = producer.asStream({ batchSize: SEND_BATCH, batchTime: 5, highWaterMark: SEND_BATCH * SEND_WINDOW, reportMode: 'none' });
    let err = null;
    stream.on('error', (e) => {
      err = e;
    });
    for (let i = 0; i < n; i++) {
      if (!stream.write({ topic: args.topic, value })) await new Promise((resolve) => stream.once('drain', resolve));
      if (err) throw err;
    }
    await stream.close();
    if (err) throw err;
  } else {
    await windowed(n, SEND_BATCH, SEND_WINDOW, (count) => {
      const messages = new Array(count);
      for (let i = 0; i < count; i++) messages[i] = { topic: args.topic, value };
      return producer.send({ messages });
    });
  }
  const ms = performance.now() - t0;
  await producer.close();
  emit({ client: 'platformatic', op: 'produce', n, ms, ...rate(n, ms) });
}

async function consume() {
  const consumer = new Consumer({ groupId: args.group, clientId: 'bench-plt', bootstrapBrokers, autocommit: 5000 });
  const t0 = performance.now();
  const stream = await consumer.consume({ topics: [args.topic], mode: 'committed', fallbackMode: 'earliest' });
  let count = 0;
  let bytes = 0;
  let tFirst = 0;
  await new Promise((resolve, reject) => {
    stream.on('error', reject);
    stream.on('data', (m) => {
      if (count === 0) tFirst = performance.now();
      count++;
      bytes += m.value.length;
      if (count === n) resolve();
    });
  });
  const tEnd = performance.now();
  await stream.close();
  await consumer.close(true);
  // Primary figure: consume() call -> N-th record (group join + fetches). Also report first->last.
  const ms = tEnd - t0;
  emit({
    client: 'platformatic',
    op: 'consume',
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
  const consumer = new Consumer({
    groupId,
    clientId: 'bench-plt-txn',
    bootstrapBrokers,
    autocommit: false,
    isolationLevel: FetchIsolationLevels.READ_COMMITTED,
  });
  const producer = new Producer({
    clientId: 'bench-plt-txn',
    bootstrapBrokers,
    idempotent: true,
    acks: ProduceAcks.ALL,
    transactionalId: `bench-plt-${groupId}`,
    autocreateTopics: false,
    ...(process.env.PLT_TXN_FIX === '0' ? {} : { retryDelay: txnRetryDelay }),
  });
  await producer.metadata({ topics: [args.out] });
  const t0 = performance.now();
  const stream = await consumer.consume({
    topics: [args.in],
    mode: 'committed',
    fallbackMode: 'earliest',
    autocommit: false,
    isolationLevel: FetchIsolationLevels.READ_COMMITTED,
  });
  let processed = 0;
  let txns = 0;
  let tFirst = 0;
  let pending = [];
  let last = new Map(); // partition -> last message seen in this transaction
  for await (const m of stream) {
    if (processed === 0) tFirst = performance.now();
    processed++;
    pending.push({ topic: args.out, key: m.key, value: transform(m.partition, m.offset, m.value) });
    last.set(m.partition, m);
    if (pending.length >= TXN_EVERY || processed === n) {
      const tx = await producer.beginTransaction();
      try {
        await tx.send({ messages: pending });
        await tx.addConsumer(consumer); // AddOffsetsToTxn(groupId)
        // TxnOffsetCommit: one call per partition, awaited one by one (see README: concurrent
        // addOffset() calls are de-duplicated by the client and only the first is sent).
        for (const msg of last.values()) await tx.addOffset(msg);
        await tx.commit();
      } catch (e) {
        await tx.abort().catch(() => {});
        throw e;
      }
      txns++;
      pending = [];
      last = new Map();
      if (processed === n) break;
    }
  }
  const tEnd = performance.now();
  await consumer.close(true);
  await producer.close();
  const ms = tEnd - t0;
  emit({ client: 'platformatic', op: 'txn', n: processed, txns, ms, firstToLastMs: tEnd - tFirst, ...rate(processed, ms) });
}

const ops = { produce, consume, txn };
ops[args.op]().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
