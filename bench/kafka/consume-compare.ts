/**
 * inflow's consumer alone against Kafka's own ConsumerPerformance, on the same topic (same
 * records, same partitions), CPU per record first: the machine this runs on is shared, so a
 * rate alone says little.
 *
 * Each side runs as its own child process; the parent samples the child's CPU time from
 * /proc/<pid>/stat (all its threads: JIT and GC included) at every progress line the child prints
 * (ConsumerPerformance's --show-detailed-stats every 200 ms; inflow's child likewise) and charges
 * the records between the first line past 20 % of the records and the last line to the CPU between
 * them: start-up, group join and most of the JVM's warm-up are left out on both sides.
 *
 * Sides:
 *   kafka    ConsumerPerformance (the broker distribution's tool, its default fetch settings)
 *   inflow   inflow's KafkaConsumer.poll(500) loop, as a stream thread polls (src/kafka/platformatic)
 *   raw      @platformatic/kafka's MessagesStream alone, 'data' events (what inflow's consumer sits on)
 *   base     `inflow` from another checkout (--baseline <dir>, e.g. `git worktree add /tmp/base main`), for before/after
 *
 *   node bench/kafka/consume-compare.ts [--records 200000] [--bytes 1024] [--partitions 8]
 *     [--reps 3] [--sides kafka,inflow,raw,base] [--topic existing-topic] [--baseline dir]
 * Uses KAFKA_BOOTSTRAP_SERVERS when set, else starts the project's local broker.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureKafkaJars } from '../../src/kafka/broker/broker-jars.ts';
import { findJava } from '../../src/kafka/broker/java.ts';
import { startLocalBroker } from '../../src/kafka/broker/local-broker.ts';
import { createKafkaClient } from '../../src/kafka/index.ts';
import { loadAverage } from '../lib/process.ts';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '200000' },
    bytes: { type: 'string', default: '1024' },
    partitions: { type: 'string', default: '8' },
    reps: { type: 'string', default: '3' },
    sides: { type: 'string', default: 'kafka,inflow,raw' },
    topic: { type: 'string', default: '' },
    baseline: { type: 'string', default: '' },
  },
});
const N = Number(values.records);
const SIZE = Number(values.bytes);
const PARTITIONS = Number(values.partitions);
const REPS = Number(values.reps);
const SIDES = values.sides.split(',');
/** The share of the records left out before the window starts: the JVM's JIT warms up through the first (its rate climbs ~10×). */
const SKIP = 0.2;
const TICK_S = 1 / 100; // USER_HZ: /proc/<pid>/stat counts clock ticks of 10 ms

const broker = process.env.KAFKA_BOOTSTRAP_SERVERS ? undefined : await startLocalBroker({ heapMb: 1024 });
const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS ?? broker?.bootstrapServers ?? '';
const java = await findJava();
const lib = await ensureKafkaJars();

/** Fills a fresh topic with N records of SIZE bytes (printable, like JSON), keys spread over the partitions. */
async function fill(): Promise<string> {
  const client = createKafkaClient({ bootstrapServers: bootstrap.split(','), clientId: 'consume-compare' });
  const topic = `bench-consume-${randomUUID().slice(0, 8)}`;
  await client.admin().createTopics([{ topic, partitions: PARTITIONS }]);
  const producer = client.producer({ acks: 'all' });
  const value = Buffer.alloc(SIZE, '0.125,');
  for (let i = 0; i < N; i += 1000) {
    const batch = Array.from({ length: Math.min(1000, N - i) }, (_, j) => ({ topic, key: Buffer.from(`k${i + j}`), value }));
    await producer.send(batch);
  }
  await producer.close();
  await client.close();
  return topic;
}

async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_S; // utime, stime (fields 14, 15)
}

interface Result {
  side: string;
  records: number;
  seconds: number;
  cpuSeconds: number;
  load: number;
}

/**
 * Runs a child whose stdout prints progress lines; `count` reads the records consumed so far from
 * a line (undefined: not a progress line). CPU and time are taken between the first line with
 * records and the last line.
 */
async function measure(side: string, command: string, args: string[], count: (line: string) => number | undefined): Promise<Result> {
  const load = await loadAverage();
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, INFLOW_LOG_LEVEL: 'silent' } });
  let first: { n: number; t: number; cpu: number } | undefined;
  let last: { n: number; t: number; cpu: number } | undefined;
  let pending = Promise.resolve();
  let err = '';
  child.stderr.on('data', (c: Buffer) => {
    err += c.toString();
  });
  let rest = '';
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    const lines = (rest + c.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      out += `${line}\n`;
      const n = count(line);
      if (n === undefined || n < N * SKIP) continue;
      const t = performance.now();
      pending = pending.then(async () => {
        const cpu = await cpuSeconds(child.pid ?? 0).catch(() => Number.NaN);
        if (Number.isNaN(cpu)) return;
        const sample = { n, t, cpu };
        if (!first) first = sample;
        else last = sample;
      });
    }
  });
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  await pending;
  if (code !== 0) throw new Error(`${side} exited with ${code}: ${err.slice(-2000)}`);
  if (!first || !last)
    throw new Error(
      `${side}: fewer than two progress samples past ${SKIP * 100} % (stdout: ${out.slice(-500)}; stderr: ${err.slice(-500)})`,
    );
  return { side, records: last.n - first.n, seconds: (last.t - first.t) / 1000, cpuSeconds: last.cpu - first.cpu, load };
}

async function kafkaSide(topic: string): Promise<Result> {
  // time, threadId?, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, ... — the nMsg column is found by its header.
  let column = -1;
  return await measure(
    'kafka',
    java,
    [
      '-Xmx512m',
      '-cp',
      join(lib, '*'),
      'org.apache.kafka.tools.ConsumerPerformance',
      '--bootstrap-server',
      bootstrap,
      '--topic',
      topic,
      '--messages',
      String(N),
      '--show-detailed-stats',
      // Its progress lines are the samples: at 200 ms an idle machine read 100 k records in under 0.6 s
      // and left fewer than two samples past 20 % (the quick run failed); 50 ms leaves ~10.
      '--reporting-interval',
      '50',
      '--timeout',
      '120000',
      '--group',
      `bench-cp-${randomUUID().slice(0, 8)}`,
    ],
    (line) => {
      const cells = line.split(',').map((s) => s.trim());
      if (column < 0) {
        column = cells.indexOf('data.consumed.in.nMsg');
        return undefined;
      }
      const n = Number(cells[column]);
      return Number.isFinite(n) ? n : undefined;
    },
  );
}

async function nodeSide(side: string, topic: string): Promise<Result> {
  if (side === 'base' && !values.baseline) throw new Error('side base needs --baseline <checkout dir>');
  const script =
    side === 'base' ? join(values.baseline, 'bench', 'kafka', 'consume-child.ts') : join(import.meta.dirname, 'consume-child.ts');
  return await measure(side, process.execPath, [script, side === 'base' ? 'inflow' : side, bootstrap, topic, String(N)], (line) =>
    line.startsWith('consumed ') ? Number(line.slice(9)) : undefined,
  );
}

const topic = values.topic || (await fill());
process.stderr.write(`topic ${topic}: ${N} records of ${SIZE} B, ${PARTITIONS} partitions\n`);
const results: Result[] = [];
for (let rep = 0; rep < REPS; rep++) {
  // Rotate the order so no side always meets the broker's page cache warmest.
  const order = SIDES.map((_, i) => SIDES[(i + rep) % SIDES.length] ?? '');
  for (const side of order) {
    const r = side === 'kafka' ? await kafkaSide(topic) : await nodeSide(side, topic);
    results.push(r);
    process.stderr.write(
      `  rep ${rep + 1} ${side}: ${((r.cpuSeconds / r.records) * 1e6).toFixed(2)} CPU µs/record, ${Math.round(r.records / r.seconds)} records/s (load ${r.load.toFixed(1)})\n`,
    );
  }
}
await broker?.stop();

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
console.log(`\n${N} records of ${SIZE} B, ${PARTITIONS} partitions, ${REPS} reps (rotated order), node ${process.version}\n`);
console.log('| consumer | CPU µs / record (median; runs) | records/s (median; runs) | load |');
console.log('|---|---:|---:|---|');
for (const side of SIDES) {
  const rs = results.filter((r) => r.side === side);
  const cpu = rs.map((r) => (r.cpuSeconds / r.records) * 1e6);
  const rate = rs.map((r) => r.records / r.seconds);
  console.log(
    `| ${side} | ${median(cpu).toFixed(2)} (${cpu.map((c) => c.toFixed(2)).join(' / ')}) | ${Math.round(median(rate)).toLocaleString('en-US')} (${rate.map((x) => Math.round(x).toLocaleString('en-US')).join(' / ')}) | ${rs.map((r) => r.load.toFixed(1)).join(' / ')} |`,
  );
}
