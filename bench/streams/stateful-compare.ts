/**
 * The stateful benchmark of issue 17, side by side in one run on the real broker: a windowed
 * count + aggregate topology — per record key, count and mean of `amount` over 10 s tumbling
 * event-time windows (the record timestamp), every update emitted as JSON `{key, start, count, mean}`
 * — in every system, each its own process started the way its users start it:
 *
 *   inflow    `inflow stream pipeline.yaml`: an `aggregate` step (tumbling window, emit update), lmdb stores + changelog
 *   kstreams  Kafka Streams 4.1, RocksDB window store + changelog, record cache off (bench/peers/kafka-streams-onnx WindowedAggregateApp)
 *   quix      Quix Streams, tumbling_window().agg(Count, Mean).current(), RocksDB + changelog (bench/peers/python/quix_windowed.py)
 *
 * Same input for all: `--records` JSON records `{id, amount}` keyed `k<id mod --keys>`, 8 partitions,
 * timestamps 1 ms apart (so 10 000 records per window), pre-produced; one instance, one processing
 * thread, commit every 100 ms; at-least-once and exactly-once (read_committed reader).
 *
 * Per run: fresh topics and application id; the system starts; max rate = outputs 20 %…100 % over
 * the time between those arrivals (start-up and warm-up left out). Each system must emit exactly one
 * output per input (every update): the run checks it, and checks the results — the last count seen
 * per (key, window) summed over windows equals the input count, and the means equal the reference
 * computed here. CPU seconds per 1 000 records = the system's process tree over the measured phase;
 * the 1-minute load average is sampled every second during it (other work on the machine shows there).
 *
 *   node bench/streams/stateful-compare.ts [--records 100000] [--keys 1000] [--systems inflow,kstreams,quix]
 *     [--guarantees at-least-once,exactly-once] [--reps 1] [--out results.json] [--logs dir]
 * Uses KAFKA_BOOTSTRAP_SERVERS when set, else starts the project's local broker. The Java peer is
 * built with Maven on first use, Quix's venv by bench/peers/setup-python.sh.
 */
import { randomUUID } from 'node:crypto';
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { startLocalBroker } from '../../src/kafka/broker/local-broker.ts';
import { findJava } from '../../src/kafka/broker/java.ts';
import { createKafkaClient, type KafkaClient, type ProducerRecord } from '../../src/kafka/index.ts';
import { execFileAsync, loadAverage, type Service, startService } from '../lib/process.ts';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '100000' },
    keys: { type: 'string', default: '1000' },
    systems: { type: 'string', default: 'inflow,kstreams,quix' },
    guarantees: { type: 'string', default: 'at-least-once,exactly-once' },
    out: { type: 'string', default: '' },
    logs: { type: 'string', default: '' },
    reps: { type: 'string', default: '1' },
  },
});
const N = Number(values.records);
const KEYS = Number(values.keys);
const REPS = Number(values.reps);
const PARTITIONS = 8;
/** Tumbling window size, ms. */
const WINDOW_MS = 10_000;
const PEERS = join(import.meta.dirname, '..', 'peers');
const JAR = join(PEERS, 'kafka-streams-onnx', 'target', 'kafka-streams-onnx-1.0-all.jar');
type Guarantee = 'at-least-once' | 'exactly-once';

const broker = process.env.KAFKA_BOOTSTRAP_SERVERS ? undefined : await startLocalBroker({ heapMb: 1024 });
const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS ?? broker?.bootstrapServers ?? '';
const client: KafkaClient = createKafkaClient({ bootstrapServers: bootstrap.split(','), clientId: 'bench-stateful-compare' });
const admin = client.admin();
const work = await mkdtemp(join(tmpdir(), 'inflow-bench-stateful-'));
const LOGS = values.logs || (values.out ? join(dirname(values.out), 'logs', 'systems') : '');
if (LOGS) await mkdir(LOGS, { recursive: true });
const logTo = (name: string): { logFile?: string } => (LOGS ? { logFile: join(LOGS, `${name}.log`) } : {});

async function topic(label: string): Promise<string> {
  const name = `bench-${label}-${randomUUID().slice(0, 8)}`;
  await admin.createTopics([{ topic: name, partitions: PARTITIONS }]);
  while (!(await admin.listTopics()).includes(name)) await new Promise((r) => setTimeout(r, 20));
  return name;
}

/** amount of record `id`: a fixed pseudo-random spread in [0, 100), one decimal. */
const amountOf = (id: number): number => ((id * 7919) % 1000) / 10;
const keyOf = (id: number): string => `k${id % KEYS}`;

/** The reference result: (key, window start) → [count, mean], from the same records. */
function reference(t0: number): Map<string, [number, number]> {
  const sums = new Map<string, [number, number]>();
  for (let id = 0; id < N; id++) {
    const start = Math.floor((t0 + id) / WINDOW_MS) * WINDOW_MS;
    const k = `${keyOf(id)}@${start}`;
    const s = sums.get(k) ?? [0, 0];
    s[0]++;
    s[1] += amountOf(id);
    sums.set(k, s);
  }
  return new Map([...sums].map(([k, [c, s]]) => [k, [c, s / c]]));
}

interface RunSpec {
  readonly input: string;
  readonly output: string;
  readonly appId: string;
  readonly guarantee: Guarantee;
  readonly stateDir: string;
}

async function ensureJar(): Promise<void> {
  try {
    await access(JAR);
  } catch {
    console.error('building the Kafka Streams peers (mvn package)…');
    await execFileAsync('mvn', ['-q', '-B', 'package', '-DskipTests'], {
      cwd: join(PEERS, 'kafka-streams-onnx'),
      maxBuffer: 64 * 1024 * 1024,
    });
  }
}

const SYSTEMS: Record<string, { name: string; start(s: RunSpec): Promise<Service> }> = {
  inflow: {
    name: 'inflow',
    async start(s) {
      const file = join(work, `${s.appId}.yaml`);
      await writeFile(
        file,
        `applicationId: ${s.appId}
kafka: { bootstrapServers: [${bootstrap}] }
guarantee: ${s.guarantee}
errors: { policy: fail }
limits: { commitIntervalMs: 100 }
state: { dir: ${s.stateDir} }
pipeline:
  - source: { topic: ${s.input}, key: string, value: json }
  - aggregate:
      window: { tumbling: ${WINDOW_MS} }
      emit: update
      aggregations: { count: count, mean: { mean: amount } }
  - to: { topic: ${s.output}, value: json }
`,
      );
      return await startService({
        name: 'inflow stream',
        command: process.execPath,
        args: [join(import.meta.dirname, '..', '..', 'bin', 'inflow.js'), 'stream', file],
        env: { INFLOW_LOG_LEVEL: 'warn' },
        readyText: 'running (',
        ...logTo(s.appId),
      });
    },
  },
  kstreams: {
    name: 'Kafka Streams (RocksDB)',
    async start(s) {
      await ensureJar();
      return await startService({
        name: 'kstreams',
        command: await findJava(),
        args: [
          '-Xmx1g',
          '-cp',
          JAR,
          'inflow.bench.WindowedAggregateApp',
          ...['--bootstrap', bootstrap, '--input', s.input, '--output', s.output, '--app-id', s.appId],
          ...['--guarantee', s.guarantee, '--state-dir', s.stateDir, '--window-ms', `${WINDOW_MS}`],
        ],
        readyText: 'READY',
        ...logTo(s.appId),
      });
    },
  },
  quix: {
    name: 'Quix Streams (RocksDB)',
    async start(s) {
      const { stdout } = await execFileAsync('bash', [join(PEERS, 'setup-python.sh'), 'quix'], { maxBuffer: 16 * 1024 * 1024 });
      const py = stdout.trim().split('\n').at(-1) ?? '';
      return await startService({
        name: 'quix',
        command: py,
        args: [
          join(PEERS, 'python', 'quix_windowed.py'),
          ...['--bootstrap', bootstrap, '--input', s.input, '--output', s.output, '--app-id', s.appId],
          ...['--guarantee', s.guarantee, '--state-dir', s.stateDir, '--window-ms', `${WINDOW_MS}`],
        ],
        readyText: 'READY',
        ...logTo(s.appId),
      });
    },
  },
};

export interface StatefulRun {
  readonly system: string;
  readonly guarantee: Guarantee;
  readonly records: number;
  readonly keys: number;
  /** Outputs/s between the 20 % and the 100 % arrival; NaN when it did not finish. */
  readonly maxRate: number;
  readonly cpuPer1k: number;
  /** Mean and max of the 1-minute load average sampled each second during the run. */
  readonly loadMean: number;
  readonly loadMax: number;
  /** Outputs received (one per input expected; more under at-least-once means replays). */
  readonly outputs: number;
  /** Windows whose last (count, mean) differ from the reference; 0 is correct. */
  readonly wrongWindows: number;
  readonly error?: string;
  readonly rep?: number;
}

async function run(systemKey: string, guarantee: Guarantee): Promise<StatefulRun> {
  const system = SYSTEMS[systemKey];
  if (system === undefined) throw new Error(`unknown system "${systemKey}": expected one of ${Object.keys(SYSTEMS).join(', ')}`);
  const spec: RunSpec = {
    input: await topic('in'),
    output: await topic('out'),
    appId: `bench-${systemKey}-${randomUUID().slice(0, 8)}`,
    guarantee,
    stateDir: join(work, `state-${randomUUID().slice(0, 8)}`),
  };
  // Event time starts at a window boundary a minute ago: recent enough for the topics' retention.
  const t0 = Math.floor((Date.now() - 60_000) / WINDOW_MS) * WINDOW_MS;
  const producer = client.producer();
  for (let id = 0; id < N; id += 512) {
    const batch: ProducerRecord[] = [];
    for (let i = id; i < Math.min(N, id + 512); i++)
      batch.push({
        topic: spec.input,
        key: Buffer.from(keyOf(i)),
        value: Buffer.from(`{"id":${i},"amount":${amountOf(i)}}`),
        timestamp: t0 + i,
      });
    await producer.send(batch);
  }
  await producer.close();

  const reader = client.consumer({
    groupId: `bench-reader-${randomUUID().slice(0, 8)}`,
    autoOffsetReset: 'earliest',
    isolationLevel: guarantee === 'exactly-once' ? 'read_committed' : 'read_uncommitted',
  });
  await reader.subscribe([spec.output]);
  /** (key@start) → last [count, mean] seen, in arrival order per partition (one key: one partition). */
  const last = new Map<string, [number, number]>();
  let received = 0;
  let t20 = 0;
  let t100 = 0;
  let reading = true;
  const readLoop = (async () => {
    while (reading) {
      for (const rec of await reader.poll({ maxRecords: 4000, timeoutMs: 100 })) {
        received++;
        if (received === Math.ceil(N * 0.2)) t20 = performance.now();
        if (received === N) t100 = performance.now();
        const v = JSON.parse(rec.value?.toString() ?? 'null') as {
          key: string;
          start?: number;
          windowStart?: number;
          count: number;
          mean: number;
        };
        last.set(`${v.key}@${v.start ?? v.windowStart}`, [v.count, v.mean]);
      }
    }
  })();

  const loads: number[] = [];
  let service: Service | undefined;
  const base = { system: system.name, guarantee, records: N, keys: KEYS };
  try {
    service = await system.start(spec);
    const cpu0 = await service.cpuSeconds();
    const deadline = Date.now() + 600_000;
    let nextLoad = 0;
    while (received < N && Date.now() < deadline) {
      if (Date.now() >= nextLoad) {
        loads.push(await loadAverage());
        nextLoad = Date.now() + 1000;
      }
      await new Promise((res) => setTimeout(res, 50));
    }
    const cpu1 = await service.cpuSeconds();
    if (received < N) throw new Error(`only ${received} of ${N} outputs within 600 s; output: ${service.output().slice(-1500)}`);
    // Late extra outputs (replays) would show here; give them a moment to arrive.
    await new Promise((res) => setTimeout(res, 1000));
    const ref = reference(t0);
    let wrong = 0;
    for (const [k, [c, m]] of ref) {
      const got = last.get(k);
      if (got === undefined || got[0] !== c || Math.abs(got[1] - m) > 1e-9 * Math.max(1, Math.abs(m))) wrong++;
    }
    wrong += [...last.keys()].filter((k) => !ref.has(k)).length;
    return {
      ...base,
      maxRate: (N - Math.ceil(N * 0.2)) / ((t100 - t20) / 1000),
      cpuPer1k: ((cpu1 - cpu0) / N) * 1000,
      loadMean: loads.reduce((a, b) => a + b, 0) / Math.max(1, loads.length),
      loadMax: Math.max(...loads),
      outputs: received,
      wrongWindows: wrong,
    };
  } catch (e) {
    return {
      ...base,
      maxRate: Number.NaN,
      cpuPer1k: Number.NaN,
      loadMean: Number.NaN,
      loadMax: Number.NaN,
      outputs: received,
      wrongWindows: Number.NaN,
      error: (e as Error).message.slice(0, 3000),
    };
  } finally {
    await service?.stop(10_000);
    reading = false;
    await readLoop;
    await reader.close();
    // Its topics and the system's internal ones (changelogs, repartitions) go: the broker may be shared.
    const mine = (await admin.listTopics()).filter((t) => t === spec.input || t === spec.output || t.startsWith(spec.appId));
    await admin.deleteTopics(mine).catch(() => {});
  }
}

const runs: StatefulRun[] = [];
const startedAt = Date.now();
async function save(): Promise<void> {
  if (!values.out) return;
  await writeFile(
    values.out,
    JSON.stringify(
      {
        kind: 'stateful',
        records: N,
        keys: KEYS,
        windowMs: WINDOW_MS,
        partitions: PARTITIONS,
        machineCpus: cpus().length,
        node: process.version,
        wallSeconds: (Date.now() - startedAt) / 1000,
        reps: REPS,
        runs,
      },
      null,
      1,
    ),
  );
}
for (let rep = 0; rep < REPS; rep++) {
  for (const guarantee of values.guarantees.split(',') as Guarantee[]) {
    for (const key of values.systems.split(',')) {
      console.error(`running: rep ${rep} ${key} ${guarantee}`);
      const result = { ...(await run(key, guarantee)), rep };
      runs.push(result);
      await save();
      console.error(
        result.error === undefined
          ? `  ${Math.round(result.maxRate)} records/s, ${result.cpuPer1k.toFixed(2)} CPU s/1k, load ${result.loadMean.toFixed(1)} (max ${result.loadMax.toFixed(1)}), outputs ${result.outputs}/${N}, wrong windows ${result.wrongWindows}`
          : `  FAILED: ${result.error.slice(0, 800)}`,
      );
    }
  }
}
await save();
const fmt = (n: number, d = 0): string =>
  Number.isNaN(n) ? '—' : n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
console.log('| system | guarantee | records/s | CPU s / 1k | load1 mean (max) | outputs | wrong windows | inflow / this |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|');
for (const x of runs) {
  const inflow = runs.find((r) => r.system === 'inflow' && r.guarantee === x.guarantee && r.rep === x.rep);
  const ratio = inflow === undefined || x.system === 'inflow' ? '' : fmt(inflow.maxRate / x.maxRate, 2);
  console.log(
    `| ${x.system} | ${x.guarantee} | ${fmt(x.maxRate)} | ${fmt(x.cpuPer1k, 2)} | ${fmt(x.loadMean, 1)} (${fmt(x.loadMax, 1)}) | ${x.outputs}/${x.records} | ${fmt(x.wrongWindows)} | ${ratio} |${x.error ? ` FAILED: ${x.error.split('\n')[0]}` : ''}`,
  );
}
await admin.close();
await client.close();
await broker?.stop();
await rm(work, { recursive: true, force: true });
