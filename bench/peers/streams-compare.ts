/**
 * Stream processors side by side on the real broker: the same input (JSON `{id, pixels}` records:
 * 784 floats for mlp-784, 64 for digits-mlp; 8 partitions), the same model, the same output
 * (`{id, label, probabilities}`), every system its own process started the way its users start it:
 *
 *   inflow-embedded  `inflow stream pipeline.yaml`, the model in-process, micro-batched (64)
 *   inflow-remote    `inflow stream` with a remote oip-grpc model source → `inflow serve` (micro-batched)
 *   kstreams-onnx    Kafka Streams + ONNX Runtime Java, one record per mapValues (bench/peers/kafka-streams-onnx)
 *   kstreams-grpc    Kafka Streams, one blocking OIP gRPC call per record → `inflow serve` (the seed's RPC design)
 *   quix             Quix Streams + Python onnxruntime, one record per apply
 *
 * Every model session has one intra-op thread; every system commits every 100 ms and runs one
 * instance with one processing thread. At-least-once and exactly-once (read_committed reader).
 *
 * Per run: fresh topics; `--records` inputs (3× for digits-mlp, ÷10 for kstreams-grpc) are produced first; the system starts; (1) max rate =
 * outputs 20 %…100 % over the time between those arrivals (start-up and warm-up left out); then
 * (2) the harness feeds the same input topic at `--load` × that rate for `--latency-seconds`,
 * remembers each record's send time by id and takes end-to-end latency = arrival of its output −
 * send time (the first second left out); (3) with `--common-rate R`, the same at R records/s for
 * every system (half of each one's own max loads the shared cores very differently). CPU seconds per 1 000 records = the system's process
 * tree (and its model server's) over phase 1.
 *
 *   ORT_DISABLE_TELEMETRY=1 node bench/peers/streams-compare.ts [--records 20000] [--latency-seconds 10] [--load 0.5] [--common-rate 0]
 *     [--datasets mlp-784,digits-mlp] [--systems inflow-embedded,inflow-remote,kstreams-onnx,kstreams-grpc,quix]
 *     [--guarantees at-least-once,exactly-once] [--reps 1] [--out results.json] [--logs dir]
 * Uses KAFKA_BOOTSTRAP_SERVERS when set, else starts the project's local broker. The Java peers
 * are built with Maven on first use (bench/peers/kafka-streams-onnx), Quix's venv by setup-python.sh.
 */
process.env.ORT_DISABLE_TELEMETRY ??= '1';

import { randomUUID } from 'node:crypto';
import { access, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { startLocalBroker } from '../../src/kafka/broker/local-broker.ts';
import { findJava } from '../../src/kafka/broker/java.ts';
import { createKafkaClient, type KafkaClient, type ProducerRecord } from '../../src/kafka/index.ts';
import { execFileAsync, freePort, loadAverage, type Service, startService } from '../lib/process.ts';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '20000' },
    'latency-seconds': { type: 'string', default: '10' },
    load: { type: 'string', default: '0.5' },
    'common-rate': { type: 'string', default: '0' },
    datasets: { type: 'string', default: 'mlp-784,digits-mlp' },
    systems: { type: 'string', default: 'inflow-embedded,inflow-remote,kstreams-onnx,kstreams-grpc,quix' },
    guarantees: { type: 'string', default: 'at-least-once,exactly-once' },
    out: { type: 'string', default: '' },
    logs: { type: 'string', default: '' },
    reps: { type: 'string', default: '1' },
  },
});
const N_BASE = Number(values.records);
const LAT_SECONDS = Number(values['latency-seconds']);
const LOAD = Number(values.load);
const COMMON_RATE = Number(values['common-rate']);
const REPS = Number(values.reps);
const PARTITIONS = 8;
const ROOT = join(import.meta.dirname, '..', '..');
const JAR = join(import.meta.dirname, 'kafka-streams-onnx', 'target', 'kafka-streams-onnx-1.0-all.jar');
type Guarantee = 'at-least-once' | 'exactly-once';

const broker = process.env.KAFKA_BOOTSTRAP_SERVERS ? undefined : await startLocalBroker({ heapMb: 1024 });
const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS ?? broker?.bootstrapServers ?? '';
const client: KafkaClient = createKafkaClient({ bootstrapServers: bootstrap.split(','), clientId: 'bench-streams-compare' });
const admin = client.admin();
const work = await mkdtemp(join(tmpdir(), 'inflow-bench-streams-'));

/** Every system's output also goes to <dir>/<name>.log: --logs, else logs/systems beside --out. */
const LOGS = values.logs || (values.out ? join(dirname(values.out), 'logs', 'systems') : '');
if (LOGS) await mkdir(LOGS, { recursive: true });
const logTo = (name: string): { logFile?: string } => (LOGS ? { logFile: join(LOGS, `${name}.log`) } : {});

async function topic(label: string): Promise<string> {
  const name = `bench-${label}-${randomUUID().slice(0, 8)}`;
  await admin.createTopics([{ topic: name, partitions: PARTITIONS }]);
  // createTopics resolves before every client sees the topic; the systems check it at start.
  while (!(await admin.listTopics()).includes(name)) await new Promise((r) => setTimeout(r, 20));
  return name;
}

/** 8 reference rows per model, as JSON text once: each record only adds its id. */
const rowsOf = new Map<string, string[]>();
async function rows(model: string): Promise<string[]> {
  let r = rowsOf.get(model);
  if (r === undefined) {
    const s = JSON.parse(await readFile(join(ROOT, 'models', 'samples', `${model}.json`), 'utf8')) as {
      inputs: { input: { shape: number[]; data: number[] } };
    };
    const f = s.inputs.input.shape[1] ?? 0;
    r = Array.from({ length: 8 }, (_, i) => JSON.stringify(s.inputs.input.data.slice(i * f, (i + 1) * f)));
    rowsOf.set(model, r);
  }
  return r;
}
const recordOf = (t: string, id: number, r: string[]): ProducerRecord => ({
  topic: t,
  key: Buffer.from(`k${id % 37}`),
  value: Buffer.from(`{"id":${id},"pixels":${r[id % r.length]}}`),
});

// --- the systems -----------------------------------------------------------------------------------
interface Started {
  readonly services: Service[];
}
interface RunSpec {
  readonly model: string;
  readonly input: string;
  readonly output: string;
  readonly appId: string;
  readonly guarantee: Guarantee;
}

async function repository(model: string): Promise<string> {
  const repo = await mkdtemp(join(work, 'repo-'));
  await cp(join(ROOT, 'models', 'repository', model, '1', 'model.onnx'), join(repo, model, '1', 'model.onnx'), {
    preserveTimestamps: true,
  });
  // The pipeline batches (maxBatch 64); the model's own batcher passes batches straight through.
  await writeFile(
    join(repo, model, 'config.yaml'),
    'platform: onnx\nbatching: { maxBatchSize: 64, maxDelayMicros: 0 }\nruntime: { file: model.onnx, intraOpThreads: 1 }\n',
  );
  return repo;
}

async function inflowServe(model: string): Promise<{ service: Service; grpc: string }> {
  const repo = await mkdtemp(join(work, 'serve-'));
  await cp(join(ROOT, 'models', 'repository', model, '1', 'model.onnx'), join(repo, model, '1', 'model.onnx'), {
    preserveTimestamps: true,
  });
  await writeFile(
    join(repo, model, 'config.yaml'),
    'platform: onnx\nbatching: { maxBatchSize: 64, maxDelayMicros: 500 }\nruntime: { file: model.onnx, intraOpThreads: 1 }\n',
  );
  const [rest, grpc] = [await freePort(), await freePort()];
  const service = await startService({
    name: 'inflow serve',
    command: process.execPath,
    args: [
      join(ROOT, 'bin', 'inflow.js'),
      'serve',
      '--model-repository',
      repo,
      '--host',
      '127.0.0.1',
      '--rest-port',
      `${rest}`,
      '--grpc-port',
      `${grpc}`,
    ],
    env: { ORT_DISABLE_TELEMETRY: '1', INFLOW_LOG_LEVEL: 'warn' },
    readyUrl: `http://127.0.0.1:${rest}/v2/models/${model}/ready`,
    ...logTo(`serve-${model}`),
  });
  return { service, grpc: `127.0.0.1:${grpc}` };
}

async function inflowStream(s: RunSpec, source: string, extra: string): Promise<Service> {
  const file = join(work, `${s.appId}.yaml`);
  await writeFile(
    file,
    `applicationId: ${s.appId}
kafka: { bootstrapServers: [${bootstrap}] }
guarantee: ${s.guarantee}
errors: { policy: fail }
limits: { commitIntervalMs: 100 }
models:
${extra}
pipeline:
  - source: { topic: ${s.input}, key: string, value: json }
  - predict:
      model: ${s.model}
      using: ${source}
      inputs: { input: { field: pixels, dtype: FP32 } }
      outputs: { label: { tensor: label }, probabilities: { tensor: probabilities } }
      maxBatch: 64
      maxDelayMs: 2
  - select: { fields: [id, label, probabilities] }
  - to: { topic: ${s.output}, value: json }
`,
  );
  return await startService({
    name: 'inflow stream',
    command: process.execPath,
    args: [join(ROOT, 'bin', 'inflow.js'), 'stream', file],
    env: { ORT_DISABLE_TELEMETRY: '1', INFLOW_LOG_LEVEL: 'warn' },
    readyText: 'running (',
    ...logTo(s.appId),
  });
}

async function java(main: string, args: string[]): Promise<Service> {
  return await startService({
    name: main,
    command: await findJava(),
    args: ['-Xmx1g', '-cp', JAR, `inflow.bench.${main}`, ...args],
    readyText: 'READY',
    ...logTo(args[args.indexOf('--app-id') + 1] ?? main),
  });
}

const javaArgs = (s: RunSpec): string[] => [
  '--bootstrap',
  bootstrap,
  '--input',
  s.input,
  '--output',
  s.output,
  '--app-id',
  s.appId,
  '--guarantee',
  s.guarantee,
  '--state-dir',
  join(work, `state-${s.appId}`),
];

const SYSTEMS: Record<string, { name: string; start(s: RunSpec): Promise<Started> }> = {
  'inflow-embedded': {
    name: 'inflow embedded (batch 64)',
    async start(s) {
      const repo = await repository(s.model);
      return { services: [await inflowStream(s, 'local', `  local:\n    embedded: { modelRepository: ${repo} }`)] };
    },
  },
  'inflow-remote': {
    name: 'inflow remote oip-grpc (batch 64)',
    async start(s) {
      const server = await inflowServe(s.model);
      try {
        const stream = await inflowStream(
          s,
          'remote',
          `  remote:\n    remote: { protocol: oip-grpc, url: "${server.grpc}", timeoutMs: 5000 }`,
        );
        return { services: [stream, server.service] };
      } catch (e) {
        await server.service.stop();
        throw e;
      }
    },
  },
  'kstreams-onnx': {
    name: 'Kafka Streams + ORT Java (per record)',
    async start(s) {
      await ensureJar();
      return {
        services: [
          await java('OnnxStreamsApp', [...javaArgs(s), '--model', join(ROOT, 'models', 'repository', s.model, '1', 'model.onnx')]),
        ],
      };
    },
  },
  'kstreams-grpc': {
    name: 'Kafka Streams → gRPC per record (blocking) → inflow serve',
    async start(s) {
      await ensureJar();
      const server = await inflowServe(s.model);
      try {
        return {
          services: [await java('GrpcStreamsApp', [...javaArgs(s), '--target', server.grpc, '--model-name', s.model]), server.service],
        };
      } catch (e) {
        await server.service.stop();
        throw e;
      }
    },
  },
  quix: {
    name: 'Quix Streams + Python ORT (per record)',
    async start(s) {
      const { stdout } = await execFileAsync('bash', [join(import.meta.dirname, 'setup-python.sh'), 'quix'], {
        maxBuffer: 16 * 1024 * 1024,
      });
      const py = stdout.trim().split('\n').at(-1) ?? '';
      const model = join(ROOT, 'models', 'repository', s.model, '1', 'model.onnx');
      const args = [
        '--bootstrap',
        bootstrap,
        '--input',
        s.input,
        '--output',
        s.output,
        '--app-id',
        s.appId,
        '--model',
        model,
        '--guarantee',
        s.guarantee,
      ];
      return {
        services: [
          await startService({
            name: 'quix',
            command: py,
            args: [join(import.meta.dirname, 'python', 'quix_onnx.py'), ...args],
            readyText: 'READY',
            ...logTo(s.appId),
          }),
        ],
      };
    },
  },
};

let jarChecked = false;
async function ensureJar(): Promise<void> {
  if (jarChecked) return;
  try {
    await access(JAR);
  } catch {
    console.error('building the Kafka Streams peers (mvn package)…');
    await execFileAsync('mvn', ['-q', '-B', 'package', '-DskipTests'], {
      cwd: join(import.meta.dirname, 'kafka-streams-onnx'),
      maxBuffer: 64 * 1024 * 1024,
    });
  }
  jarChecked = true;
}

/**
 * digits records are ~12× smaller and several times faster to score: 3× as many keep phase 1
 * seconds long. The per-record blocking gRPC peer runs at a few hundred records/s: it gets a tenth.
 */
const recordsFor = (model: string, system: string): number =>
  Math.round(((model === 'digits-mlp' ? 3 : 1) * N_BASE) / (system === 'kstreams-grpc' ? 10 : 1));

// --- one run -----------------------------------------------------------------------------------------
/** Latency under a steady feed: end-to-end = output arrival − input send, first second left out. */
export interface LatencyPhase {
  readonly offered: number;
  readonly sent: number;
  readonly delivered: number;
  /** Inputs sent but not yet seen downstream when the last one was sent: far above rate × p50 means it fell behind. */
  readonly backlog: number;
  readonly p50ms: number;
  readonly p99ms: number;
  readonly maxMs: number;
  /** [percentile, ms] pairs, for the CDF plots. */
  readonly cdf: ReadonlyArray<readonly [number, number]>;
}

export interface StreamRun {
  readonly system: string;
  readonly model: string;
  readonly guarantee: Guarantee;
  readonly records: number;
  /** Outputs/s between the 20 % and the 100 % arrival; NaN when it did not finish. */
  readonly maxRate: number;
  readonly cpuPer1k: number;
  /** At `--load` × maxRate. */
  readonly half?: LatencyPhase;
  /** At `--common-rate` records/s, the same for every system (when given). */
  readonly common?: LatencyPhase;
  readonly load1: number;
  readonly error?: string;
  /** The first attempt's error when it was retried. */
  readonly firstError?: string;
  readonly rep?: number;
}

const pct = (sorted: readonly number[], p: number): number =>
  sorted.length === 0 ? Number.NaN : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number);
const CDF_PERCENTILES = [1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9];

async function run(systemKey: string, model: string, guarantee: Guarantee): Promise<StreamRun> {
  const N = recordsFor(model, systemKey);
  const system = SYSTEMS[systemKey];
  if (system === undefined) throw new Error(`unknown system "${systemKey}": expected one of ${Object.keys(SYSTEMS).join(', ')}`);
  const r = await rows(model);
  const spec: RunSpec = {
    model,
    input: await topic('in'),
    output: await topic('out'),
    appId: `bench-${systemKey}-${randomUUID().slice(0, 8)}`,
    guarantee,
  };
  // Pre-produce the max-rate input.
  const producer = client.producer();
  for (let id = 0; id < N; id += 256)
    await producer.send(Array.from({ length: Math.min(256, N - id) }, (_, i) => recordOf(spec.input, id + i, r)));

  const reader = client.consumer({
    groupId: `bench-reader-${randomUUID().slice(0, 8)}`,
    autoOffsetReset: 'earliest',
    isolationLevel: guarantee === 'exactly-once' ? 'read_committed' : 'read_uncommitted',
  });
  await reader.subscribe([spec.output]);
  /** id → send time (performance.now()) of the fed records whose latency counts. */
  const sentAt = new Map<number, number>();
  let latencies: number[] = [];
  let received = 0;
  let t20 = 0;
  let t100 = 0;
  let reading = true;
  const readLoop = (async () => {
    while (reading) {
      for (const rec of await reader.poll({ maxRecords: 4000, timeoutMs: 100 })) {
        const now = performance.now();
        received++;
        if (received === Math.ceil(N * 0.2)) t20 = now;
        if (received === N) t100 = now;
        if (received > N) {
          const id = Number(/"id":(\d+)/.exec(rec.value?.toString('latin1') ?? '')?.[1] ?? -1);
          const at = sentAt.get(id);
          if (at !== undefined) latencies.push(now - at);
        }
      }
    }
  })();

  let nextId = N;
  /** Feeds `rate` records/s for LAT_SECONDS (≤ 64 per send), then waits up to 15 s for the outputs. */
  async function feed(rate: number): Promise<LatencyPhase> {
    latencies = [];
    const before = received;
    const total = Math.max(1, Math.floor(rate * LAT_SECONDS));
    const start = performance.now();
    let sent = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
      if (due > sent) {
        const n = Math.min(64, due - sent);
        const now = performance.now();
        // The first second is warm-up: those records are sent but not timed.
        const batch = Array.from({ length: n }, () => {
          const id = nextId++;
          if (now >= start + 1000) sentAt.set(id, now);
          return recordOf(spec.input, id, r);
        });
        sent += n;
        await producer.send(batch);
      } else await new Promise((res) => setTimeout(res, 2));
    }
    const backlog = total - (received - before);
    const drainUntil = Date.now() + 15_000;
    while (received - before < total && Date.now() < drainUntil) await new Promise((res) => setTimeout(res, 20));
    const sorted = [...latencies].sort((x, y) => x - y);
    return {
      offered: rate,
      sent: total,
      delivered: received - before,
      backlog,
      p50ms: pct(sorted, 50),
      p99ms: pct(sorted, 99),
      maxMs: sorted.at(-1) ?? Number.NaN,
      cdf: CDF_PERCENTILES.map((p) => [p, pct(sorted, p)] as const),
    };
  }

  let started: Started | undefined;
  const base = { system: system.name, model, guarantee, records: N, load1: await loadAverage() };
  try {
    started = await system.start(spec);
    const cpu = async (): Promise<number> =>
      (await Promise.all((started?.services ?? []).map((s) => s.cpuSeconds()))).reduce((a, b) => a + b, 0);
    const cpu0 = await cpu();
    const deadline = Date.now() + 300_000;
    while (received < N && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    const cpu1 = await cpu();
    if (received < N)
      throw new Error(`only ${received} of ${N} outputs within 300 s; output: ${started.services[0]?.output().slice(-1500)}`);
    const maxRate = (N - Math.ceil(N * 0.2)) / ((t100 - t20) / 1000);
    // (2) steady load on the same, warm system; (3) the common rate, when asked.
    const half = await feed(maxRate * LOAD);
    const common = COMMON_RATE > 0 ? await feed(COMMON_RATE) : undefined;
    return { ...base, maxRate, cpuPer1k: ((cpu1 - cpu0) / N) * 1000, half, ...(common === undefined ? {} : { common }) };
  } catch (e) {
    return { ...base, maxRate: Number.NaN, cpuPer1k: Number.NaN, error: (e as Error).message.slice(0, 3000) };
  } finally {
    for (const s of started?.services ?? []) await s.stop(10_000);
    reading = false;
    await readLoop;
    await reader.close();
    await producer.close();
  }
}

const { stdout: javaVersion } = await execFileAsync(await findJava(), ['-version']).then(
  (r) => ({ stdout: r.stderr.split('\n')[0] ?? '' }),
  () => ({ stdout: '?' }),
);
/** Writes what is measured so far (after every run: a cut-short run keeps its numbers). */
async function save(): Promise<void> {
  if (!values.out) return;
  const result = {
    kind: 'streams',
    records: N_BASE,
    latencySeconds: LAT_SECONDS,
    load: LOAD,
    commonRate: COMMON_RATE,
    partitions: PARTITIONS,
    machineCpus: cpus().length,
    node: process.version,
    java: javaVersion.trim(),
    wallSeconds: (Date.now() - startedAt) / 1000,
    reps: REPS,
    runs,
  };
  await writeFile(values.out, JSON.stringify(result, null, 1));
}
const runs: StreamRun[] = [];
const startedAt = Date.now();
for (let rep = 0; rep < REPS; rep++) {
  for (const dataset of values.datasets.split(',')) {
    for (const guarantee of values.guarantees.split(',') as Guarantee[]) {
      for (const key of values.systems.split(',')) {
        console.error(`running: rep ${rep} ${key} ${dataset} ${guarantee}`);
        let result = await run(key, dataset, guarantee);
        if (result.error !== undefined) {
          // One retry on fresh topics: a stall is a finding (kept in `firstError`), not the only number.
          console.error(`  failed (${result.error.split('\n')[0]?.slice(0, 300)}); retrying once on fresh topics`);
          const first = result.error;
          result = { ...(await run(key, dataset, guarantee)), firstError: first };
        }
        result = { ...result, rep };
        runs.push(result);
        await save();
        const ph = (x: LatencyPhase | undefined): string =>
          x === undefined
            ? ''
            : `at ${Math.round(x.offered)}/s: p50 ${x.p50ms.toFixed(1)} ms, p99 ${x.p99ms.toFixed(1)} ms, delivered ${x.delivered}/${x.sent}, backlog at end ${x.backlog}`;
        console.error(
          result.error === undefined
            ? `  ${Math.round(result.maxRate)} records/s, ${result.cpuPer1k.toFixed(2)} CPU s/1k; ${ph(result.half)}; ${ph(result.common)}`
            : `  FAILED: ${result.error.slice(0, 800)}`,
        );
      }
    }
  }
}
await save();
const fmt = (n: number, d = 0): string =>
  Number.isNaN(n) ? '—' : n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const cells = (x: LatencyPhase | undefined): string =>
  x === undefined
    ? '— | — | — | — | —'
    : `${fmt(x.offered)} | ${x.delivered}/${x.sent} | ${x.backlog} | ${fmt(x.p50ms, 1)} | ${fmt(x.p99ms, 1)}`;
console.log(
  '| system | model | guarantee | max records/s | CPU s / 1k | offered/s | delivered | backlog at end | e2e p50 ms | e2e p99 ms | common: offered/s | delivered | backlog | p50 ms | p99 ms |',
);
console.log('|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const x of runs) {
  console.log(
    `| ${x.system} | ${x.model} | ${x.guarantee} | ${fmt(x.maxRate)} | ${fmt(x.cpuPer1k, 2)} | ${cells(x.half)} | ${cells(x.common)} |${x.error ? ` FAILED: ${x.error.split('\n')[0]}` : ''}`,
  );
}
await admin.close();
await client.close();
await broker?.stop();
await rm(work, { recursive: true, force: true });
