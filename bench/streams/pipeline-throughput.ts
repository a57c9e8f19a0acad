/**
 * Throughput and end-to-end latency of a prediction pipeline on a real broker: JSON records of
 * 784 floats (`{id, pixels}`) through the 784→32⁴→10 MLP (`mlp-784`) to JSON `{id, label,
 * probabilities}`, on 8 partitions.
 *
 *   1. max rate: `--records` inputs are produced first; a fresh group then reads them all and the
 *      time from start() to the last output acknowledged gives records/s (sustained, start-up
 *      included).
 *   2. latency: a fresh topic is fed at a steady `--load` × that max rate for `--seconds` while
 *      the pipeline runs; a downstream reader (read_committed for exactly-once) stamps each
 *      output on arrival, and end-to-end = arrival − the input record's timestamp (the sink keeps
 *      it). The first second is warm-up and left out.
 *
 * Setups: embedded and — with `--remote` (default on) — the remote oip-grpc client against
 * inflow's model server in this same process, each at-least-once and exactly-once, batching on
 * (predict maxBatch 64, model batcher 64) and off (1 and 1); and a pass-through runner (bytes in →
 * bytes out, no parse, no model) per guarantee: the Kafka consume + produce ceiling the pipelines
 * are a fraction of. Everything shares this machine's cores with the broker, so read the numbers
 * as relative. Not part of `npm test`.
 *
 *   ORT_DISABLE_TELEMETRY=1 node bench/streams/pipeline-throughput.ts [--records 50000] [--seconds 10] [--load 0.5] [--remote true] [--only <setup name part>]
 * Uses KAFKA_BOOTSTRAP_SERVERS when set, else starts the project's local broker.
 */
import { randomUUID } from 'node:crypto';
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createRemoteInferencer } from '../../src/client/index.ts';
import { startLocalBroker } from '../../src/kafka/broker/local-broker.ts';
import { createKafkaClient, type KafkaClient, type ProducerRecord } from '../../src/kafka/index.ts';
import { jsonSerde, stringSerde } from '../../src/kafka/serdes.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { loadServable } from '../../src/runtime/index.ts';
import { startModelServer } from '../../src/server/model-server.ts';
import { createLocalInference } from '../../src/serving/local-inference.ts';
import type { Inferencer } from '../../src/serving/types.ts';
import { createStreamsBuilder, createStreamsRunner, type Guarantee, type StreamsRunner } from '../../src/streams/index.ts';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '50000' },
    seconds: { type: 'string', default: '10' },
    load: { type: 'string', default: '0.5' },
    remote: { type: 'string', default: 'true' },
    only: { type: 'string', default: '' },
  },
});
const N = Number(values.records);
const SECONDS = Number(values.seconds);
const LOAD = Number(values.load);
const PARTITIONS = 8;
const MODELS = join(import.meta.dirname, '..', '..', 'models');

const broker = process.env.KAFKA_BOOTSTRAP_SERVERS ? undefined : await startLocalBroker({ heapMb: 1024 });
const bootstrap = (process.env.KAFKA_BOOTSTRAP_SERVERS ?? broker?.bootstrapServers ?? '').split(',');
const client: KafkaClient = createKafkaClient({ bootstrapServers: bootstrap, clientId: 'bench-pipeline' });
const admin = client.admin();
const serdes = { key: stringSerde, value: jsonSerde<Record<string, unknown>>() };

// The 8 reference rows of mlp-784, as JSON text once (each record only adds its id).
const sample = JSON.parse(await readFile(join(MODELS, 'samples', 'mlp-784.json'), 'utf8')) as { inputs: { input: { data: number[] } } };
const rows = Array.from({ length: 8 }, (_, i) => JSON.stringify(sample.inputs.input.data.slice(i * 784, (i + 1) * 784)));
const recordOf = (topic: string, id: number, timestamp?: number): ProducerRecord => ({
  topic,
  key: Buffer.from(`k${id % 37}`),
  value: Buffer.from(`{"id":${id},"pixels":${rows[id % rows.length]}}`),
  ...(timestamp === undefined ? {} : { timestamp }),
});

async function topic(label: string): Promise<string> {
  const name = `bench-${label}-${randomUUID().slice(0, 8)}`;
  await admin.createTopics([{ topic: name, partitions: PARTITIONS }]);
  // createTopics resolves before the broker lists the topic; the runner checks the list at start.
  while (!(await admin.listTopics()).includes(name)) await new Promise((r) => setTimeout(r, 20));
  return name;
}

/** A repository with mlp-784 only, its model batcher at `maxBatchSize` (delay 0: the pipeline batches). */
async function repository(maxBatchSize: number): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'inflow-bench-pipeline-'));
  await cp(join(MODELS, 'repository', 'mlp-784', '1'), join(root, 'mlp-784', '1'), { recursive: true, preserveTimestamps: true });
  await writeFile(
    join(root, 'mlp-784', 'config.yaml'),
    `platform: onnx\nbatching: { maxBatchSize: ${maxBatchSize}, maxDelayMicros: 0 }\nruntime: { file: model.onnx }\n`,
  );
  return root;
}

function topology(inferencer: Inferencer | undefined, input: string, output: string, maxBatch: number) {
  const b = createStreamsBuilder();
  // The ceiling of the Kafka side: the same runner and guarantee, bytes in → bytes out, no parse, no model.
  if (!inferencer) {
    b.stream(input).to(output);
    return b.build();
  }
  b.stream(input, serdes)
    .predict({
      inferencer,
      model: 'mlp-784',
      inputs: { input: { field: 'pixels', shape: [784] } },
      outputs: { label: { tensor: 'label' }, probabilities: { tensor: 'probabilities' } },
      maxBatch,
    })
    .mapValues((r) => {
      const v = r.value as Record<string, unknown>;
      return { id: v.id, label: v.label, probabilities: v.probabilities };
    })
    .to(output, serdes);
  return b.build();
}

async function counter(runner: StreamsRunner): Promise<number> {
  return (await runner.metrics.recordsOut.get()).values.reduce((a, v) => a + v.value, 0);
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, runner?: StreamsRunner): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let failed: unknown;
  runner?.done.catch((e: unknown) => {
    failed = e;
  });
  while (!(await check())) {
    if (failed) throw new Error(`${what}: the pipeline failed: ${(failed as Error).message}`, { cause: failed });
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; runner ${JSON.stringify(runner?.stats())}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

interface Setup {
  readonly name: string;
  readonly guarantee: Guarantee;
  readonly maxBatch: number;
  readonly remote: boolean;
  /** No model: consume → produce only (the Kafka ceiling the pipeline is measured against). */
  readonly passthrough?: boolean;
}

interface Result {
  readonly setup: Setup;
  readonly maxRate: number;
  readonly meanBatch: number;
  readonly offered: number;
  readonly delivered: number;
  /** Inputs sent but not yet seen downstream when the last input was sent: > a few hundred means it fell behind. */
  readonly backlog: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

// --- pre-produce the max-rate input once ---------------------------------------------------
const bulk = await topic('in');
{
  const producer = client.producer();
  const started = performance.now();
  const chunk = 500;
  const sends: Promise<unknown>[] = [];
  for (let id = 0; id < N; id += chunk) {
    sends.push(producer.send(Array.from({ length: Math.min(chunk, N - id) }, (_, i) => recordOf(bulk, id + i))));
    if (sends.length >= 4) await sends.shift();
  }
  await Promise.all(sends);
  await producer.close();
  const bytes = Buffer.byteLength(recordOf(bulk, 0).value ?? '');
  console.error(`pre-produced ${N} records of ~${bytes} bytes in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

async function inferencerFor(setup: Setup): Promise<{ inferencer: Inferencer; close(): Promise<void> }> {
  const root = await repository(setup.maxBatch);
  if (!setup.remote) {
    const local = await createLocalInference({ modelRepository: root, load: loadServable, watch: false, settleMs: 0 });
    return { inferencer: local, close: () => local.close() };
  }
  const server = await startModelServer({
    modelRepository: root,
    load: loadServable,
    rest: false,
    grpc: { host: '127.0.0.1', port: 0 },
    watch: false,
  });
  const remote = createRemoteInferencer({ protocol: 'oip-grpc', url: server.grpcAddress ?? '' });
  return {
    inferencer: remote,
    async close() {
      await remote.close();
      await server.close();
    },
  };
}

async function measure(setup: Setup): Promise<Result> {
  const serving = setup.passthrough ? { inferencer: undefined, close: async () => undefined } : await inferencerFor(setup);
  const inferencer = serving.inferencer;
  try {
    // 1. max rate over the pre-produced input.
    const out1 = await topic('out');
    const runner1 = createStreamsRunner(topology(inferencer, bulk, out1, setup.maxBatch), {
      client,
      applicationId: `bench-app-${randomUUID().slice(0, 8)}`,
      instanceId: 'bench',
      guarantee: setup.guarantee,
      onError: 'fail',
      lagIntervalMs: 0,
      // Rewinds, retries and stalls show up in the run's output.
      logger: createLogger({ level: 'warn', name: 'bench-pipeline' }),
    });
    const t0 = performance.now();
    await runner1.start();
    await waitUntil(`${setup.name}: ${N} outputs`, async () => (await counter(runner1)) >= N, 300_000, runner1);
    const maxRate = N / ((performance.now() - t0) / 1000);
    const batch = await runner1.metrics.batchSize.get();
    const sum = batch.values.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0;
    const calls = batch.values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 1;
    await runner1.close();

    // 2. latency at a steady fraction of that rate.
    const input = await topic('lat-in');
    const output = await topic('lat-out');
    const runner2 = createStreamsRunner(topology(inferencer, input, output, setup.maxBatch), {
      client,
      applicationId: `bench-lat-${randomUUID().slice(0, 8)}`,
      instanceId: 'bench',
      guarantee: setup.guarantee,
      onError: 'fail',
      lagIntervalMs: 0,
      // Rewinds, retries and stalls show up in the run's output.
      logger: createLogger({ level: 'warn', name: 'bench-pipeline' }),
    });
    await runner2.start();
    const reader = client.consumer({
      groupId: `bench-reader-${randomUUID().slice(0, 8)}`,
      autoOffsetReset: 'earliest',
      isolationLevel: setup.guarantee === 'exactly-once' ? 'read_committed' : 'read_uncommitted',
    });
    await reader.subscribe([output]);
    const rate = maxRate * LOAD;
    const total = Math.floor(rate * SECONDS);
    const latencies: number[] = [];
    let received = 0;
    let producing = true;
    const phaseStart = Date.now();
    const reading = (async () => {
      const deadline = phaseStart + SECONDS * 1000 + 60_000;
      while ((producing || received < total) && Date.now() < deadline) {
        for (const r of await reader.poll({ maxRecords: 2000, timeoutMs: 100 })) {
          received++;
          // The first second is warm-up (JIT, first transactions, consumer fetch sessions).
          if (r.timestamp >= phaseStart + 1000) latencies.push(Date.now() - r.timestamp);
        }
      }
    })();
    let failed: unknown;
    runner2.done.catch((e: unknown) => {
      failed = e;
    });
    const producer = client.producer();
    let sent = 0;
    const progress = setInterval(() => {
      const st = runner2.stats();
      console.error(
        `  ${((Date.now() - phaseStart) / 1000).toFixed(0)} s: sent ${sent}, received ${received}, in flight ${st.inFlight} (oldest ${st.oldestInFlightMs} ms), predict pending ${st.predictPending}, paused ${st.paused}`,
      );
    }, 2000);
    while (sent < total) {
      const due = Math.min(total, Math.floor(((Date.now() - phaseStart) / 1000) * rate));
      if (due > sent) {
        // At most 64 records (~440 KB) per send: one produce request's batch per partition must stay under 1 MiB.
        const n = Math.min(64, due - sent);
        const now = Date.now();
        const batchRecords = Array.from({ length: n }, (_, i) => recordOf(input, sent + i, now));
        sent += n;
        await producer.send(batchRecords);
      } else await new Promise((r) => setTimeout(r, 5));
    }
    producing = false;
    const backlog = sent - received;
    await reading;
    clearInterval(progress);
    if (failed) throw new Error(`${setup.name}: the pipeline failed: ${(failed as Error).message}`, { cause: failed });
    if (received < total) console.error(`  ${setup.name}: only ${received} of ${total} outputs arrived within 60 s after the last input`);
    await producer.close();
    await reader.close();
    await runner2.close();
    latencies.sort((a, b) => a - b);
    return {
      setup,
      maxRate,
      meanBatch: sum / calls,
      offered: rate,
      delivered: received,
      backlog,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies[latencies.length - 1] ?? Number.NaN,
    };
  } finally {
    await serving.close();
  }
}

const setups: Setup[] = [
  { name: 'embedded, at-least-once, batch 64', guarantee: 'at-least-once', maxBatch: 64, remote: false },
  { name: 'embedded, at-least-once, batch 1', guarantee: 'at-least-once', maxBatch: 1, remote: false },
  { name: 'embedded, exactly-once, batch 64', guarantee: 'exactly-once', maxBatch: 64, remote: false },
  { name: 'embedded, exactly-once, batch 1', guarantee: 'exactly-once', maxBatch: 1, remote: false },
  ...(values.remote === 'true'
    ? ([
        { name: 'remote oip-grpc, at-least-once, batch 64', guarantee: 'at-least-once', maxBatch: 64, remote: true },
        { name: 'remote oip-grpc, at-least-once, batch 1', guarantee: 'at-least-once', maxBatch: 1, remote: true },
        { name: 'remote oip-grpc, exactly-once, batch 64', guarantee: 'exactly-once', maxBatch: 64, remote: true },
        { name: 'remote oip-grpc, exactly-once, batch 1', guarantee: 'exactly-once', maxBatch: 1, remote: true },
      ] as const)
    : []),
  { name: 'pass-through (no model), at-least-once', guarantee: 'at-least-once', maxBatch: 1, remote: false, passthrough: true },
  { name: 'pass-through (no model), exactly-once', guarantee: 'exactly-once', maxBatch: 1, remote: false, passthrough: true },
];
const results: Result[] = [];
for (const setup of setups.filter((s) => s.name.includes(values.only))) {
  console.error(`running: ${setup.name}`);
  const r = await measure(setup);
  console.error(
    `  ${Math.round(r.maxRate)} records/s, mean batch ${r.meanBatch.toFixed(1)}; p50 ${r.p50} ms, p99 ${r.p99} ms at ${Math.round(r.offered)}/s`,
  );
  results.push(r);
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
console.log(
  `\nmlp-784 pipeline, ${N} JSON records (784 floats) on ${PARTITIONS} partitions, one broker on this machine (${cpus().length} cores), node ${process.version}`,
);
console.log(
  `latency: steady load at ${LOAD} × each setup's max rate for ${SECONDS} s; end-to-end = downstream arrival − input timestamp\n`,
);
console.log('| setup | max records/s | mean batch | offered/s | delivered | backlog at end | e2e p50 ms | e2e p99 ms | e2e max ms |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of results) {
  console.log(
    `| ${r.setup.name} | ${fmt(r.maxRate)} | ${r.meanBatch.toFixed(1)} | ${fmt(r.offered)} | ${r.delivered} | ${r.backlog} | ${r.p50} | ${r.p99} | ${r.max} |`,
  );
}
await admin.close();
await client.close();
await broker?.stop();
