// Orchestrates the bake-off against the broker started by run.sh (BOOTSTRAP env).
// Each measurement runs in a fresh child process; every scenario is repeated REPS times with the
// clients interleaved, and the median is reported. Writes results/results.json and results/table.md.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Admin } from '@platformatic/kafka';

const BOOTSTRAP = process.env.BOOTSTRAP ?? '127.0.0.1:29092';
const KAFKA_LIB = process.env.KAFKA_LIB;
const N = Number(process.env.N ?? 200_000); // produce / consume records
const NT = Number(process.env.NT ?? 100_000); // consume-transform-produce records
const REPS = Number(process.env.REPS ?? 3);
const PARTS = 3;
const ONLY = (process.env.ONLY ?? 'produce,consume,txn').split(',');
const CP = `${KAFKA_LIB}/*`;
const runId = Date.now().toString(36);
const results = [];
const log = (...a) => console.log(new Date().toISOString().slice(11, 19), ...a);

function run(cmd, argv, { timeoutMs = 150_000, onLine, env = {} } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BOOTSTRAP, ...env } });
    let out = '';
    let err = '';
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timeout: ${cmd} ${argv.join(' ')}`));
    }, timeoutMs);
    if (onLine) createInterface({ input: child.stdout }).on('line', onLine);
    else
      child.stdout.on('data', (d) => {
        out += d;
      });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('close', (code) => {
      clearTimeout(t);
      if (code !== 0) reject(new Error(`${cmd} ${argv.slice(-6).join(' ')} exited ${code}\n${err.slice(-3000)}\n${out.slice(-2000)}`));
      else resolve({ out, err });
    });
  });
}

async function nodeClient(script, op, kv) {
  const { out } = await run(process.execPath, [script, op, ...Object.entries(kv).map(([k, v]) => `${k}=${v}`)]);
  const line = out.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`no RESULT from ${script} ${op}: ${out}`);
  return JSON.parse(line.slice(7));
}

const java = (cls, argv, opts) => run('java', ['-Xmx1g', '-cp', CP, cls, ...argv], opts);

async function producerPerf(topic, props) {
  const { out } = await java('org.apache.kafka.tools.ProducerPerformance', [
    '--topic',
    topic,
    '--num-records',
    String(N),
    '--record-size',
    '1024',
    '--throughput',
    '-1',
    '--producer-props',
    `bootstrap.servers=${BOOTSTRAP}`,
    ...props,
  ]);
  const m = out
    .trim()
    .split('\n')
    .pop()
    .match(/(\d+) records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\)/);
  if (!m || Number(m[1]) !== N) throw new Error(`ProducerPerformance output not understood: ${out}`);
  return { client: 'kafka-perf', op: 'produce', n: N, msgsPerSec: Number(m[2]), mbPerSec: Number(m[3]), raw: out.trim().split('\n').pop() };
}

async function consumerPerf(topic, group) {
  const { out } = await java('org.apache.kafka.tools.ConsumerPerformance', [
    '--bootstrap-server',
    BOOTSTRAP,
    '--topic',
    topic,
    '--messages',
    String(N),
    '--group',
    group,
    '--timeout',
    '60000',
  ]);
  const lines = out.trim().split('\n');
  const hdr = lines.findIndex((l) => l.startsWith('start.time'));
  const keys = lines[hdr].split(',').map((s) => s.trim());
  const vals = lines[hdr + 1].split(',').map((s) => s.trim());
  const r = Object.fromEntries(keys.map((k, i) => [k, vals[i]]));
  // nMsg.sec includes the group join (rebalance) time, like the Node clients' primary figure;
  // fetch.nMsg.sec excludes it.
  return {
    client: 'kafka-perf',
    op: 'consume',
    n: Number(r['data.consumed.in.nMsg']),
    msgsPerSec: Number(r['nMsg.sec']),
    mbPerSec: Number(r['MB.sec']),
    steadyMsgsPerSec: Number(r['fetch.nMsg.sec']),
    rebalanceMs: Number(r['rebalance.time.ms']),
    raw: lines.slice(hdr, hdr + 2).join(' | '),
  };
}

// Independent check with Kafka's own console consumer, isolation.level=read_committed.
async function verifyTxn(outTopic, inGroup) {
  let lines = 0;
  let stray = 0;
  const ids = new Set();
  await java(
    'org.apache.kafka.tools.consumer.ConsoleConsumer',
    [
      '--bootstrap-server',
      BOOTSTRAP,
      '--topic',
      outTopic,
      '--from-beginning',
      '--isolation-level',
      'read_committed',
      '--timeout-ms',
      '10000',
      '--group',
      `verify-${outTopic}`,
    ],
    {
      onLine: (l) => {
        // the tool's own log lines also go to stdout: count only record lines
        const m = /^(\d+:\d+)\|/.exec(l);
        if (m) {
          lines++;
          ids.add(m[1]);
        } else stray++;
      },
    },
  );
  const { out } = await java('org.apache.kafka.tools.consumer.group.ConsumerGroupCommand', [
    '--bootstrap-server',
    BOOTSTRAP,
    '--describe',
    '--group',
    inGroup,
  ]);
  let committed = 0;
  let lag = 0;
  for (const l of out.split('\n')) {
    const c = l.trim().split(/\s+/);
    if (c[0] === inGroup) {
      committed += Number(c[3]);
      lag += Number(c[5]);
    }
  }
  return { readCommittedCount: lines, uniqueSourceRecords: ids.size, nonRecordLines: stray, committedOffsetsSum: committed, lag };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const admin = new Admin({ clientId: 'bench-admin', bootstrapBrokers: [BOOTSTRAP] });
const toDelete = [];
const topic = async (name) => {
  await admin.createTopics({ topics: [name], partitions: PARTS, replicas: 1 });
  return name;
};

async function main() {
  log(`bench: N=${N} NT=${NT} REPS=${REPS} bootstrap=${BOOTSTRAP} node=${process.version}`);
  // Warm-up (not measured): make the broker create __consumer_offsets and __transaction_state
  // now, so that no client pays for creating them in its first run.
  const warm = await topic(`warmup-${runId}`);
  await java('org.apache.kafka.tools.ProducerPerformance', [
    '--topic',
    warm,
    '--num-records',
    '100',
    '--record-size',
    '1024',
    '--throughput',
    '-1',
    '--transactional-id',
    `warm-${runId}`,
    '--transaction-duration-ms',
    '100',
    '--producer-props',
    `bootstrap.servers=${BOOTSTRAP}`,
  ]);
  await java('org.apache.kafka.tools.ConsumerPerformance', [
    '--bootstrap-server',
    BOOTSTRAP,
    '--topic',
    warm,
    '--messages',
    '100',
    '--group',
    `warm-${runId}`,
    '--timeout',
    '30000',
  ]);
  log('warm-up done (__consumer_offsets and __transaction_state exist)');
  // Scenario name -> function(rep) returning a result
  const scenarios = [];
  const add = (group, name, fn) => scenarios.push({ group, name, fn });

  if (ONLY.includes('produce')) {
    // Produce topics are deleted right after their run (see the main loop) to bound disk use.
    const p = (tag) => topic(`prod-${tag}-${runId}-${Math.random().toString(36).slice(2, 7)}`).then((t) => (toDelete.push(t), t));
    add('produce acks=1', 'platformatic send()', async () => nodeClient('plt.mjs', 'produce', { topic: await p('plt'), n: N, acks: '1' }));
    add('produce acks=1', 'platformatic asStream()', async () =>
      nodeClient('plt.mjs', 'produce', { topic: await p('plts'), n: N, acks: '1', mode: 'stream' }),
    );
    add('produce acks=1', 'confluent KafkaJS send()', async () =>
      nodeClient('ckjs.mjs', 'produce', { topic: await p('ck'), n: N, acks: '1' }),
    );
    add('produce acks=1', 'ProducerPerformance', async () => producerPerf(await p('pp'), ['acks=1', 'linger.ms=5', 'batch.size=1000000']));
    add('produce acks=all idempotent', 'platformatic send()', async () =>
      nodeClient('plt.mjs', 'produce', { topic: await p('plti'), n: N, acks: 'all', idem: '1' }),
    );
    add('produce acks=all idempotent', 'confluent KafkaJS send()', async () =>
      nodeClient('ckjs.mjs', 'produce', { topic: await p('cki'), n: N, acks: 'all', idem: '1' }),
    );
    add('produce acks=all idempotent', 'ProducerPerformance', async () =>
      producerPerf(await p('ppi'), ['acks=all', 'enable.idempotence=true', 'linger.ms=5', 'batch.size=1000000']),
    );
  }
  if (ONLY.includes('consume')) {
    const data = await topic(`data-${runId}`);
    log(`filling ${data} with ${N} x 1 KiB records (ProducerPerformance)`);
    await producerPerf(data, ['acks=1', 'linger.ms=5', 'batch.size=1000000']);
    const g = (tag) => `g-${tag}-${runId}-${Math.random().toString(36).slice(2, 7)}`;
    add('consume from earliest', 'platformatic consume() stream', () =>
      nodeClient('plt.mjs', 'consume', { topic: data, n: N, group: g('plt') }),
    );
    add('consume from earliest', 'confluent KafkaJS eachBatch', () =>
      nodeClient('ckjs.mjs', 'consume', { topic: data, n: N, group: g('ck'), mode: 'eachBatch' }),
    );
    add('consume from earliest', 'confluent KafkaJS eachMessage', () =>
      nodeClient('ckjs.mjs', 'consume', { topic: data, n: N, group: g('ckm'), mode: 'eachMessage' }),
    );
    add('consume from earliest', 'ConsumerPerformance', () => consumerPerf(data, g('cp')));
  }
  if (ONLY.includes('txn')) {
    const input = await topic(`txn-in-${runId}`);
    log(`filling ${input} with ${NT} x 1 KiB records (ProducerPerformance)`);
    await java('org.apache.kafka.tools.ProducerPerformance', [
      '--topic',
      input,
      '--num-records',
      String(NT),
      '--record-size',
      '1024',
      '--throughput',
      '-1',
      '--producer-props',
      `bootstrap.servers=${BOOTSTRAP}`,
      'acks=all',
      'linger.ms=5',
      'batch.size=1000000',
    ]);
    for (const [name, script] of [
      ['platformatic', 'plt.mjs'],
      ['confluent KafkaJS', 'ckjs.mjs'],
    ]) {
      add('consume-transform-produce, EOS txn every 500', name, async () => {
        const tag = script.slice(0, -4);
        const out = await topic(`txn-out-${tag}-${runId}-${Math.random().toString(36).slice(2, 7)}`);
        const group = `txg-${tag}-${runId}-${Math.random().toString(36).slice(2, 7)}`;
        const r = await nodeClient(script, 'txn', { in: input, out, n: NT, group });
        r.verify = await verifyTxn(out, group);
        r.verify.ok =
          r.verify.readCommittedCount === NT &&
          r.verify.uniqueSourceRecords === NT &&
          r.verify.committedOffsetsSum === NT &&
          r.verify.lag === 0;
        return r;
      });
    }
    // The same loop with the client's default retryDelay (1000 ms), to show the cost of the
    // CONCURRENT_TRANSACTIONS back-off. Few records, because it is ~1 s per transaction.
    const NTD = Math.min(NT, 5000);
    add(
      `consume-transform-produce, EOS txn every 500 (${NTD.toLocaleString('en-US')} records)`,
      'platformatic, default retryDelay',
      async () => {
        const out = await topic(`txn-out-pltd-${runId}-${Math.random().toString(36).slice(2, 7)}`);
        const inD = await topic(`txn-in-pltd-${runId}-${Math.random().toString(36).slice(2, 7)}`);
        await java('org.apache.kafka.tools.ProducerPerformance', [
          '--topic',
          inD,
          '--num-records',
          String(NTD),
          '--record-size',
          '1024',
          '--throughput',
          '-1',
          '--producer-props',
          `bootstrap.servers=${BOOTSTRAP}`,
          'acks=all',
        ]);
        const group = `txg-pltd-${runId}-${Math.random().toString(36).slice(2, 7)}`;
        const { out: o } = await run(process.execPath, ['plt.mjs', 'txn', `in=${inD}`, `out=${out}`, `n=${NTD}`, `group=${group}`], {
          env: { PLT_TXN_FIX: '0' },
        });
        const r = JSON.parse(
          o
            .split('\n')
            .find((l) => l.startsWith('RESULT '))
            .slice(7),
        );
        r.verify = await verifyTxn(out, group);
        r.verify.ok =
          r.verify.readCommittedCount === NTD &&
          r.verify.uniqueSourceRecords === NTD &&
          r.verify.committedOffsetsSum === NTD &&
          r.verify.lag === 0;
        return r;
      },
    );
  }

  for (let rep = 1; rep <= REPS; rep++) {
    for (const s of scenarios) {
      if (toDelete.length) await admin.deleteTopics({ topics: toDelete.splice(0) }).catch(() => {});
      try {
        const r = await s.fn(rep);
        results.push({ group: s.group, name: s.name, rep, ...r });
        log(
          `[rep ${rep}] ${s.group} | ${s.name}: ${Math.round(r.msgsPerSec)} msg/s, ${r.mbPerSec.toFixed(1)} MB/s${r.verify ? ' verify=' + JSON.stringify(r.verify) : ''}`,
        );
      } catch (e) {
        results.push({ group: s.group, name: s.name, rep, error: String(e.message ?? e).slice(0, 4000) });
        log(`[rep ${rep}] ${s.group} | ${s.name}: ERROR ${String(e.message ?? e).slice(0, 800)}`);
      }
    }
  }
  await admin.close();

  // Table
  const rows = [];
  const ceilings = {};
  for (const s of scenarios) {
    const ok = results.filter((r) => r.group === s.group && r.name === s.name && !r.error);
    const errs = results.filter((r) => r.group === s.group && r.name === s.name && r.error).length;
    const med = ok.length ? median(ok.map((r) => r.msgsPerSec)) : NaN;
    const medMb = ok.length ? median(ok.map((r) => r.mbPerSec)) : NaN;
    if (/Performance/.test(s.name)) ceilings[s.group] = med;
    const steady = ok.filter((r) => r.steadyMsgsPerSec).map((r) => r.steadyMsgsPerSec);
    rows.push({
      group: s.group,
      name: s.name,
      med,
      medMb,
      runs: ok.map((r) => Math.round(r.msgsPerSec)),
      errs,
      steady: steady.length ? median(steady) : NaN,
      verify: ok.map((r) => r.verify?.ok).filter((v) => v !== undefined),
    });
  }
  const fmt = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
  let md = `| scenario | client / API | median msgs/s | median MB/s | vs Kafka perf tool | runs (msgs/s) | notes |\n|---|---|---:|---:|---:|---|---|\n`;
  for (const r of rows) {
    const c = ceilings[r.group];
    const ratio = c && !/Performance/.test(r.name) && Number.isFinite(r.med) ? `${((100 * r.med) / c).toFixed(0)} %` : '';
    const notes = [
      r.errs ? `${r.errs} failed run(s)` : '',
      Number.isFinite(r.steady) ? `excl. join: ${fmt(r.steady)}/s` : '',
      r.verify.length ? `verified ${r.verify.filter(Boolean).length}/${r.verify.length}` : '',
    ]
      .filter(Boolean)
      .join('; ');
    md += `| ${r.group} | ${r.name} | ${fmt(r.med)} | ${Number.isFinite(r.medMb) ? r.medMb.toFixed(1) : 'n/a'} | ${ratio} | ${r.runs.join(', ')} | ${notes} |\n`;
  }
  mkdirSync('results', { recursive: true });
  writeFileSync(
    'results/results.json',
    JSON.stringify({ when: new Date().toISOString(), N, NT, REPS, node: process.version, results }, null, 2),
  );
  writeFileSync('results/table.md', md);
  console.log('\n' + md);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
