// Quick feature / interop checks against the broker at BOOTSTRAP (run by run.sh after the bench,
// or alone: BOOTSTRAP=127.0.0.1:29092 node features.mjs). Prints one line per check and writes
// results/features.json. Each check is bounded; a hung check fails after CHECK_TIMEOUT_MS.
import { mkdirSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Admin,
  Consumer,
  FetchIsolationLevels,
  GroupProtocols,
  ProduceAcks,
  Producer,
  compatibilityPartitioner,
  findErrorBy,
} from '@platformatic/kafka';
import ckjs from '@confluentinc/kafka-javascript';

const BOOTSTRAP = process.env.BOOTSTRAP ?? '127.0.0.1:29092';
const B = [BOOTSTRAP];
const CHECK_TIMEOUT_MS = 45_000;
const id = Date.now().toString(36);
const { Kafka, logLevel, CompressionTypes } = ckjs.KafkaJS;
const kafka = new Kafka({ kafkaJS: { brokers: B, clientId: 'feat-ckjs', logLevel: logLevel.NOTHING } });
const admin = new Admin({ clientId: 'feat-admin', bootstrapBrokers: B });
const out = [];
const txnRetryDelay = (_c, _o, _a, _r, e) => (findErrorBy(e, 'apiId', 'CONCURRENT_TRANSACTIONS') ? 20 : 1000);
let seq = 0;
const topic = async (p = 3) => {
  const t = `feat-${id}-${seq++}`;
  await admin.createTopics({ topics: [t], partitions: p, replicas: 1 });
  return t;
};

// Flatten nested MultipleErrors into 'API_ERROR_ID message' strings.
const causes = (e) => {
  const flat = (x) => (x?.errors?.length ? x.errors.flatMap(flat) : [x]);
  return [...new Set(flat(e).map((x) => `${x?.apiId ?? x?.code ?? ''} ${x?.message ?? x}`.slice(0, 200)))].slice(0, 4);
};

async function check(name, fn) {
  const t0 = performance.now();
  let timer;
  try {
    const detail = await Promise.race([
      fn(),
      new Promise((_, rej) => {
        timer = setTimeout(() => rej(new Error('timeout')), CHECK_TIMEOUT_MS);
      }),
    ]);
    out.push({ name, ok: detail?.ok ?? true, detail });
  } catch (e) {
    out.push({
      name,
      ok: false,
      detail: { error: String(e?.message ?? e).slice(0, 300), causes: causes(e) },
    });
  } finally {
    clearTimeout(timer);
  }
  const r = out.at(-1);
  console.log(
    `${r.ok ? 'PASS' : 'FAIL'} ${name} (${Math.round(performance.now() - t0)} ms) ${JSON.stringify(r.detail, (_, v) => (typeof v === 'bigint' ? v.toString() : v)).slice(0, 600)}`,
  );
}

// Read exactly n records with a platformatic consumer (fresh group, earliest).
async function pltRead(t, n, extra = {}) {
  const c = new Consumer({ groupId: `feat-r-${id}-${seq++}`, clientId: 'feat-plt', bootstrapBrokers: B, autocommit: false, ...extra });
  const s = await c.consume({ topics: [t], mode: 'earliest', autocommit: false, maxWaitTime: 500, ...extra });
  const msgs = [];
  for await (const m of s) {
    msgs.push(m);
    if (msgs.length === n) break;
  }
  await c.close(true);
  return msgs;
}
// Read exactly n records with a confluent consumer (fresh group, earliest).
async function ckRead(t, n, cfg = {}) {
  const c = kafka.consumer({ kafkaJS: { groupId: `feat-ck-${id}-${seq++}`, fromBeginning: true, autoCommit: false }, ...cfg });
  await c.connect();
  await c.subscribe({ topics: [t] });
  const msgs = [];
  await new Promise((resolve) =>
    c.run({
      eachMessage: async ({ partition, message }) => {
        msgs.push({ partition, ...message });
        if (msgs.length === n) resolve();
      },
    }),
  );
  await c.disconnect();
  return msgs;
}

await check('keyed partitioning: platformatic default partitioner vs confluent (murmur2, Java-compatible)', async () => {
  const t = await topic(3);
  const keys = Array.from({ length: 40 }, (_, i) => `user-${i}`);
  const p = new Producer({ clientId: 'feat', bootstrapBrokers: B });
  const pc = new Producer({ clientId: 'feat', bootstrapBrokers: B, partitioner: compatibilityPartitioner });
  const cp = kafka.producer({ kafkaJS: { acks: 1 } });
  await cp.connect();
  let diffDefault = 0;
  let diffCompat = 0;
  for (const k of keys) {
    const a = (await p.send({ messages: [{ topic: t, key: Buffer.from(k), value: Buffer.from('x') }] })).offsets[0].partition;
    const b = (await pc.send({ messages: [{ topic: t, key: Buffer.from(k), value: Buffer.from('x') }] })).offsets[0].partition;
    const c = (await cp.send({ topic: t, messages: [{ key: k, value: 'x' }] }))[0].partition;
    if (a !== c) diffDefault++;
    if (b !== c) diffCompat++;
  }
  await p.close();
  await pc.close();
  await cp.disconnect();
  return {
    ok: diffCompat === 0,
    keys: keys.length,
    platformaticDefaultDiffersFromConfluent: diffDefault,
    compatibilityPartitionerDiffers: diffCompat,
  };
});

await check('headers round-trip platformatic -> confluent and confluent -> platformatic', async () => {
  const t = await topic(1);
  const p = new Producer({ clientId: 'feat', bootstrapBrokers: B });
  // With the default (no-op, Buffer-only) serializers, header keys must be Buffers: use a Map.
  // The object form ({ 'x-trace': ... }) has string keys and fails (see the next check).
  await p.send({ messages: [{ topic: t, value: Buffer.from('a'), headers: new Map([[Buffer.from('x-trace'), Buffer.from('plt')]]) }] });
  await p.close();
  const cp = kafka.producer();
  await cp.connect();
  await cp.send({ topic: t, messages: [{ value: 'b', headers: { 'x-trace': 'ck' } }] });
  await cp.disconnect();
  const byCk = await ckRead(t, 2);
  const byPlt = await pltRead(t, 2);
  const ckSaw = byCk.map((m) => String(m.headers?.['x-trace']));
  const pltSaw = byPlt.map((m) => String(m.headers.get(Buffer.from('x-trace')) ?? [...m.headers].map(([k, v]) => `${k}=${v}`)));
  return { ok: ckSaw.join() === 'plt,ck' && /plt/.test(pltSaw[0]) && /ck/.test(pltSaw[1]), confluentSaw: ckSaw, platformaticSaw: pltSaw };
});

await check('headers as a plain object with default (Buffer) serializers', async () => {
  const t = await topic(1)
  const p = new Producer({ clientId: 'feat', bootstrapBrokers: B, retries: 0 })
  try { await p.send({ messages: [{ topic: t, value: Buffer.from('a'), headers: { 'x-trace': Buffer.from('plt') } }] }) } finally { await p.close() }
  return { ok: true }
})

await check('compression gzip/snappy/lz4/zstd: produced by platformatic, read by confluent', async () => {
  const t = await topic(1);
  const p = new Producer({ clientId: 'feat', bootstrapBrokers: B });
  const codecs = ['gzip', 'snappy', 'lz4', 'zstd'];
  for (const c of codecs)
    await p.send({
      compression: c,
      messages: Array.from({ length: 5 }, (_, i) => ({ topic: t, value: Buffer.from(`${c}-${i}-`.padEnd(200, c)) })),
    });
  await p.close();
  const msgs = await ckRead(t, 20);
  const seen = codecs.map((c) => msgs.filter((m) => String(m.value).startsWith(c + '-')).length);
  return { ok: seen.every((n) => n === 5), perCodec: Object.fromEntries(codecs.map((c, i) => [c, seen[i]])) };
});

await check('compression gzip/snappy/lz4/zstd: produced by confluent, read by platformatic', async () => {
  const t = await topic(1);
  const codecs = ['GZIP', 'SNAPPY', 'LZ4', 'ZSTD'];
  for (const c of codecs) {
    const cp = kafka.producer({ kafkaJS: { compression: CompressionTypes[c] } });
    await cp.connect();
    await cp.send({ topic: t, messages: Array.from({ length: 5 }, (_, i) => ({ value: `${c}-${i}-`.padEnd(200, c) })) });
    await cp.disconnect();
  }
  const msgs = await pltRead(t, 20);
  const seen = codecs.map((c) => msgs.filter((m) => String(m.value).startsWith(c + '-')).length);
  return { ok: seen.every((n) => n === 5), perCodec: Object.fromEntries(codecs.map((c, i) => [c, seen[i]])) };
});

// Helper: run one platformatic transaction that consumed the 3 partitions' first records.
async function txnWithOffsets({ concurrentAddOffset, concurrentSend }) {
  const input = await topic(3);
  const output = await topic(3);
  const p0 = new Producer({ clientId: 'feat', bootstrapBrokers: B });
  for (let part = 0; part < 3; part++)
    await p0.send({ messages: Array.from({ length: 10 }, () => ({ topic: input, partition: part, value: Buffer.from('v') })) });
  await p0.close();
  const group = `feat-tx-${id}-${seq++}`;
  const c = new Consumer({ groupId: group, clientId: 'feat', bootstrapBrokers: B, autocommit: false, maxWaitTime: 500 });
  const prod = new Producer({
    clientId: 'feat',
    bootstrapBrokers: B,
    idempotent: true,
    acks: ProduceAcks.ALL,
    transactionalId: `feat-${group}`,
    retryDelay: txnRetryDelay,
  });
  const s = await c.consume({ topics: [input], mode: 'committed', fallbackMode: 'earliest', autocommit: false });
  const last = new Map();
  let n = 0;
  for await (const m of s) {
    last.set(m.partition, m);
    if (++n === 30) break;
  }
  const tx = await prod.beginTransaction();
  const sends = [0, 1, 2].map((part) => () => tx.send({ messages: [{ topic: output, partition: part, value: Buffer.from(`p${part}`) }] }));
  if (concurrentSend) await Promise.all(sends.map((f) => f()));
  else for (const f of sends) await f();
  await tx.addConsumer(c);
  if (concurrentAddOffset) await Promise.all([...last.values()].map((m) => tx.addOffset(m)));
  else for (const m of last.values()) await tx.addOffset(m);
  await tx.commit();
  await sleep(1500); // let the commit markers land before reading offsets back
  const committed = await c.listCommittedOffsets({ topics: [{ topic: input, partitions: [0, 1, 2] }] });
  await c.close(true);
  await prod.close();
  const outMsgs = await pltRead(output, 3, { isolationLevel: FetchIsolationLevels.READ_COMMITTED }).catch((e) => e);
  return {
    committed: committed.get(input).map(String),
    expected: ['10', '10', '10'],
    outputReadCommitted: Array.isArray(outMsgs) ? outMsgs.length : String(outMsgs),
  };
}

await check('transaction: addOffset() awaited one by one commits all partitions', async () => {
  const r = await txnWithOffsets({ concurrentAddOffset: false, concurrentSend: false });
  return { ok: r.committed.join() === '10,10,10' && r.outputReadCommitted === 3, ...r };
});
await check('transaction: concurrent addOffset() (Promise.all over 3 partitions) commits all partitions', async () => {
  const r = await txnWithOffsets({ concurrentAddOffset: true, concurrentSend: false });
  return { ok: r.committed.join() === '10,10,10', ...r };
});
await check('transaction: concurrent tx.send() to 3 partitions (Promise.all) commits all records', async () => {
  const r = await txnWithOffsets({ concurrentAddOffset: false, concurrentSend: true });
  return { ok: r.outputReadCommitted === 3, ...r };
});

await check('transaction abort: aborted records invisible to read_committed, visible to read_uncommitted', async () => {
  const t = await topic(1);
  const prod = new Producer({
    clientId: 'feat',
    bootstrapBrokers: B,
    idempotent: true,
    acks: ProduceAcks.ALL,
    transactionalId: `feat-abort-${id}`,
    retryDelay: txnRetryDelay,
  });
  let tx = await prod.beginTransaction();
  await tx.send({ messages: [{ topic: t, value: Buffer.from('aborted') }] });
  await tx.abort();
  tx = await prod.beginTransaction();
  await tx.send({ messages: [{ topic: t, value: Buffer.from('committed') }] });
  await tx.commit();
  await prod.close();
  const rc = await pltRead(t, 1, { isolationLevel: FetchIsolationLevels.READ_COMMITTED });
  const ru = await pltRead(t, 2, { isolationLevel: FetchIsolationLevels.READ_UNCOMMITTED });
  const ckRc = await ckRead(t, 1);
  return {
    ok: String(rc[0].value) === 'committed' && ru.length === 2 && String(ckRc[0].value) === 'committed',
    readCommitted: rc.map((m) => String(m.value)),
    readUncommitted: ru.map((m) => String(m.value)),
    confluentReadCommitted: ckRc.map((m) => String(m.value)),
  };
});

await check('manual commit (message.commit()) + listCommittedOffsets + getLag', async () => {
  const t = await topic(1);
  const p = new Producer({ clientId: 'feat', bootstrapBrokers: B });
  await p.send({ messages: Array.from({ length: 10 }, () => ({ topic: t, value: Buffer.from('v') })) });
  await p.close();
  const group = `feat-mc-${id}`;
  const c = new Consumer({ groupId: group, clientId: 'feat', bootstrapBrokers: B, autocommit: false, maxWaitTime: 500 });
  const s = await c.consume({ topics: [t], mode: 'earliest', autocommit: false });
  let n = 0;
  for await (const m of s) {
    if (++n === 4) {
      await m.commit();
      break;
    }
  }
  const committed = await c.listCommittedOffsets({ topics: [{ topic: t, partitions: [0] }] });
  const lag = await c.getLag({ topics: [t] });
  await c.close(true);
  return {
    ok: committed.get(t)[0] === 4n,
    committed: committed.get(t).map(String),
    lag: [...lag].map(([k, v]) => `${k}=${v.map(String)}`),
  };
});

await check('seek equivalent: consume({ mode: "manual", offsets }) starts at the given offset', async () => {
  const t = await topic(1);
  const p = new Producer({ clientId: 'feat', bootstrapBrokers: B });
  await p.send({ messages: Array.from({ length: 10 }, (_, i) => ({ topic: t, value: Buffer.from(String(i)) })) });
  await p.close();
  const c = new Consumer({ groupId: `feat-seek-${id}`, clientId: 'feat', bootstrapBrokers: B, autocommit: false, maxWaitTime: 500 });
  const s = await c.consume({ topics: [t], mode: 'manual', offsets: [{ topic: t, partition: 0, offset: 7n }] });
  const got = [];
  for await (const m of s) {
    got.push(Number(m.offset));
    if (got.length === 3) break;
  }
  await c.close(true);
  return { ok: got.join() === '7,8,9', offsets: got };
});

await check('pause()/resume() of the messages stream', async () => {
  const t = await topic(1);
  const p = new Producer({ clientId: 'feat', bootstrapBrokers: B });
  await p.send({ messages: [{ topic: t, value: Buffer.from('1') }] });
  const c = new Consumer({ groupId: `feat-pause-${id}`, clientId: 'feat', bootstrapBrokers: B, autocommit: false, maxWaitTime: 300 });
  const s = await c.consume({ topics: [t], mode: 'earliest' });
  let n = 0;
  s.on('data', () => {
    n++;
  });
  while (n < 1) await sleep(50);
  s.pause();
  await p.send({ messages: [{ topic: t, value: Buffer.from('2') }] });
  await sleep(1500);
  const whilePaused = n;
  s.resume();
  const t1 = Date.now();
  while (n < 2 && Date.now() - t1 < 10_000) await sleep(50);
  await p.close();
  await c.close(true);
  return {
    ok: whilePaused === 1 && n === 2,
    receivedWhilePaused: whilePaused - 1,
    receivedAfterResume: n - whilePaused,
    note: 'stream-level only; no per-partition pause API',
  };
});

await check('consumer group rebalance: second member joins, first gets events and fewer partitions (classic protocol)', async () => {
  const t = await topic(4);
  const group = `feat-rb-${id}`;
  const events = [];
  const mk = (name) => {
    const c = new Consumer({
      groupId: group,
      clientId: name,
      bootstrapBrokers: B,
      autocommit: false,
      maxWaitTime: 300,
      heartbeatInterval: 500,
      sessionTimeout: 10000,
    });
    for (const e of ['consumer:group:join', 'consumer:group:leave', 'consumer:group:rejoin', 'consumer:group:rebalance'])
      c.on(e, (payload) =>
        events.push(`${name} ${e} ${payload?.assignments ? JSON.stringify(payload.assignments.map((a) => a.partitions)) : ''}`),
      );
    return c;
  };
  const a = mk('A');
  await a.consume({ topics: [t], mode: 'earliest' });
  const before = JSON.stringify(a.assignments?.map((x) => x.partitions));
  const b = mk('B');
  await b.consume({ topics: [t], mode: 'earliest' });
  const t1 = Date.now();
  while (Date.now() - t1 < 15_000 && (a.assignments?.[0]?.partitions.length ?? 0) > 2) await sleep(100);
  const after = { A: JSON.stringify(a.assignments?.map((x) => x.partitions)), B: JSON.stringify(b.assignments?.map((x) => x.partitions)) };
  await b.close(true);
  await a.close(true);
  return { ok: after.A !== before, before, after, events };
});

await check('KIP-848 consumer group protocol (groupProtocol: "consumer") reads records', async () => {
  const t = await topic(3);
  const p = new Producer({ clientId: 'feat', bootstrapBrokers: B });
  await p.send({ messages: Array.from({ length: 30 }, () => ({ topic: t, value: Buffer.from('v') })) });
  await p.close();
  const msgs = await pltRead(t, 30, { groupProtocol: GroupProtocols.CONSUMER });
  return { ok: msgs.length === 30, read: msgs.length };
});

await check('confluent: KIP-848 (group.protocol=consumer) reads records', async () => {
  const t = await topic(3);
  const cp = kafka.producer();
  await cp.connect();
  await cp.send({ topic: t, messages: Array.from({ length: 30 }, () => ({ value: 'v' })) });
  await cp.disconnect();
  const c = kafka.consumer({
    kafkaJS: { groupId: `feat-848ck-${id}`, fromBeginning: true, autoCommit: false },
    'group.protocol': 'consumer',
  });
  await c.connect();
  await c.subscribe({ topics: [t] });
  let n = 0;
  await new Promise((resolve) =>
    c.run({
      eachMessage: async () => {
        if (++n === 30) resolve();
      },
    }),
  );
  await c.disconnect();
  return { ok: n === 30, read: n };
});

await check('admin: create/describe(metadata)/listOffsets/listConsumerGroupOffsets/describeGroups/deleteTopics', async () => {
  const t = await topic(2);
  const md = await admin.metadata({ topics: [t] });
  const p = new Producer({ clientId: 'feat', bootstrapBrokers: B });
  await p.send({ messages: Array.from({ length: 4 }, (_, i) => ({ topic: t, partition: i % 2, value: Buffer.from('v') })) });
  await p.close();
  const offs = await admin.listOffsets({
    topics: [
      {
        name: t,
        partitions: [
          { partitionIndex: 0, timestamp: -1n },
          { partitionIndex: 1, timestamp: -1n },
        ],
      },
    ],
  });
  const group = `feat-mc-${id}`; // the group that committed offset 4 in the manual-commit check
  const g = await admin.listConsumerGroupOffsets({ groups: [group] });
  const dg = await admin.describeGroups({ groups: [group] });
  await admin.deleteTopics({ topics: [t] });
  const after = await admin.listTopics();
  return {
    ok: md.topics.get(t)?.partitionsCount === 2 && !after.includes(t),
    partitions: md.topics.get(t)?.partitionsCount,
    listOffsets: JSON.stringify(offs, (_, v) => (typeof v === 'bigint' ? v.toString() : v)).slice(0, 200),
    groupOffsets: JSON.stringify(g, (_, v) => (typeof v === 'bigint' ? v.toString() : v)).slice(0, 200),
    describeGroups: dg.size,
    deleted: !after.includes(t),
  };
});

await admin.close();
mkdirSync('results', { recursive: true });
writeFileSync(
  'results/features.json',
  JSON.stringify(out, (_, v) => (typeof v === 'bigint' ? v.toString() : v), 2),
);
console.log(`\n${out.filter((r) => r.ok).length}/${out.length} checks passed`);
process.exit(0);
