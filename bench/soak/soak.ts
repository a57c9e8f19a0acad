/**
 * Soak: a model server (`inflow serve`) and an embedded pipeline (`inflow stream`, exactly-once,
 * digits-mlp in-process) under steady load for `--minutes` (default 30), each sampled every
 * `--sample-seconds` for RSS, live V8 heap (after a forced full GC) and open file descriptors by
 * `memory-probe.ts`. The target: every figure flat within ±5 % after the warm-up (the first
 * `--warmup-minutes`, default 5, or a third of a shorter run) — a leak shows as a heap or fd
 * count that keeps rising after the full GCs. (Open descriptors include the sockets of requests in
 * flight at the sampling instant, so they also pass within ±16 descriptors.)
 *
 * Load per second (`--rps`, default 100, split evenly over four kinds): REST TF Serving
 * :predict and OIP infer of one valid digits row, OIP gRPC and TF Serving gRPC Predict of the
 * same; one request in ten of each kind is bad (an unknown random model name, a malformed body,
 * a wrong shape), as in the fuzz of issue 15 fault 8. The pipeline gets `--records` input records
 * per second (default 100), one in twenty without pixels (its unscorable branch) and one in fifty
 * with 3 pixels (the model refuses it: a dead letter).
 *
 *   nice -n 10 node bench/soak/soak.ts [--minutes 30] [--rps 100] [--records 100] [--sample-seconds 10] [--warmup-minutes 5] [--out soak.json]
 * Uses KAFKA_BOOTSTRAP_SERVERS when set, else starts the project's local broker. Not in CI (a
 * meaningful soak takes tens of minutes).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createProtocolClient, remoteClientConfigSchema } from '../../src/client/index.ts';
import { startLocalBroker } from '../../src/kafka/broker/local-broker.ts';
import { createKafkaClient, type ProducerRecord } from '../../src/kafka/index.ts';
import { createTensor } from '../../src/tensor/tensor.ts';
import { freePort, type Service, startService } from '../lib/process.ts';
import { summarize } from './soak-summary.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    rps: { type: 'string', default: '100' },
    records: { type: 'string', default: '100' },
    'sample-seconds': { type: 'string', default: '10' },
    'warmup-minutes': { type: 'string' },
    out: { type: 'string' },
  },
});
const MINUTES = Number(values.minutes);
const RPS = Number(values.rps);
const RECORDS = Number(values.records);
const SAMPLE_MS = Number(values['sample-seconds']) * 1000;
const WARMUP_MS = Number(values['warmup-minutes'] ?? Math.min(5, MINUTES / 3)) * 60_000;
const ROOT = join(import.meta.dirname, '..', '..');
const MODEL = 'digits-mlp';

const broker = process.env.KAFKA_BOOTSTRAP_SERVERS ? undefined : await startLocalBroker({ heapMb: 512 });
const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS ?? broker?.bootstrapServers ?? '';
const work = await mkdtemp(join(tmpdir(), 'inflow-soak-'));
const tag = randomUUID().slice(0, 8);
const topics = { in: `soak-in-${tag}`, out: `soak-out-${tag}`, other: `soak-other-${tag}`, dlq: `soak-dlq-${tag}` };

const kafka = createKafkaClient({ bootstrapServers: bootstrap.split(','), clientId: 'soak' });
const admin = kafka.admin();
await admin.createTopics(Object.values(topics).map((topic) => ({ topic, partitions: 4 })));
// createTopics resolves before the broker lists the topics; the pipeline checks the list at start.
for (;;) {
  const listed = await admin.listTopics();
  if (Object.values(topics).every((t) => listed.includes(t))) break;
  await new Promise((r) => setTimeout(r, 50));
}

const pipelineFile = join(work, 'pipeline.yaml');
await writeFile(
  pipelineFile,
  `applicationId: soak-${tag}
kafka: { bootstrapServers: [${bootstrap}] }
guarantee: exactly-once
errors: { policy: dlq, deadLetterTopic: ${topics.dlq} }
models:
  local: { embedded: { modelRepository: ${join(ROOT, 'models', 'repository')} } }
pipeline:
  - source: { topic: ${topics.in}, key: string, value: json }
  - split:
      name: has-pixels
      branches:
        - name: scorable
          when: { field: pixels, exists: true }
          pipeline:
            - predict:
                name: predict-digit
                model: ${MODEL}
                using: local
                inputs: { input: { field: pixels, dtype: FP32, shape: [64] } }
                outputs: { label: { tensor: label } }
            - to: { topic: ${topics.out} }
        - name: unscorable
          pipeline:
            - to: { topic: ${topics.other} }
`,
);

const probe = join(import.meta.dirname, 'memory-probe.ts');
const sampleFile = (name: string): string => join(work, `${name}.jsonl`);
const node = (name: string, args: string[], readyUrl: string): Promise<Service> =>
  startService({
    name,
    command: process.execPath,
    args: ['--expose-gc', '--import', probe, join(ROOT, 'bin', 'inflow.js'), ...args],
    env: {
      INFLOW_SOAK_SAMPLE_FILE: sampleFile(name),
      INFLOW_SOAK_SAMPLE_MS: String(SAMPLE_MS),
      INFLOW_SOAK_SNAPSHOT_DIR: work,
      INFLOW_LOG_LEVEL: 'warn',
    },
    readyUrl,
    logFile: join(work, `${name}.log`),
  });
const [restPort, grpcPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
const server = await node(
  'server',
  [
    'serve',
    '--model-repository',
    join(ROOT, 'models', 'repository'),
    '--host',
    '127.0.0.1',
    '--rest-port',
    `${restPort}`,
    '--grpc-port',
    `${grpcPort}`,
  ],
  `http://127.0.0.1:${restPort}/v2/health/ready`,
);
const stream = await node(
  'pipeline',
  ['stream', pipelineFile, '--metrics-port', `${metricsPort}`],
  `http://127.0.0.1:${metricsPort}/readyz`,
);
console.log(
  `soak: ${MINUTES} min, ${RPS} requests/s, ${RECORDS} records/s; samples and logs in ${work} (kill -USR2 ${server.pid} | ${stream.pid}: heap snapshot there)`,
);

// One valid digits row; the bad variants of each kind.
const sample = JSON.parse(await readFile(join(ROOT, 'models', 'samples', 'digits-mlp.json'), 'utf8')) as {
  inputs: { input: { data: number[] } };
};
const row = sample.inputs.input.data.slice(0, 64);
const base = `http://127.0.0.1:${restPort}`;
const junk = (): string => `nope-${randomUUID()}`;
const grpc = (protocol: 'oip-grpc' | 'tfserving-grpc') =>
  createProtocolClient(remoteClientConfigSchema.parse({ protocol, url: `127.0.0.1:${grpcPort}`, timeoutMs: 10_000 }));
const oipGrpc = grpc('oip-grpc');
const tfGrpc = grpc('tfserving-grpc');
const tensor = (n: number) => ({ input: createTensor('FP32', [1, n], new Float32Array(row.slice(0, n))) });
const counts = { ok: 0, refused: 0, unexpected: 0 };
const post = async (path: string, body: string): Promise<number> => {
  const res = await fetch(base + path, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json' },
    signal: AbortSignal.timeout(10_000),
  });
  await res.arrayBuffer();
  return res.status;
};
const kinds: Array<(bad: number) => Promise<boolean>> = [
  async (bad) =>
    bad === 0
      ? (await post(`/v1/models/${MODEL}:predict`, JSON.stringify({ instances: [row] }))) === 200
      : (await post(
          bad === 1 ? `/v1/models/${junk()}:predict` : `/v1/models/${MODEL}:predict`,
          bad === 2 ? '{"instances": [[1,' : '{"instances":[[1,2]]}',
        )) < 500,
  async (bad) => {
    const body = (n: number) => JSON.stringify({ inputs: [{ name: 'input', shape: [1, n], datatype: 'FP32', data: row.slice(0, n) }] });
    if (bad === 0) return (await post(`/v2/models/${MODEL}/infer`, body(64))) === 200;
    return (await post(`/v2/models/${bad === 1 ? junk() : MODEL}/infer`, bad === 2 ? '{"inputs": [{"name": "inp' : body(3))) < 500;
  },
  async (bad) => grpcCall(oipGrpc, bad),
  async (bad) => grpcCall(tfGrpc, bad),
];
async function grpcCall(client: ReturnType<typeof grpc>, bad: number): Promise<boolean> {
  try {
    await client.infer({ model: bad === 1 ? junk() : MODEL, inputs: tensor(bad === 0 ? 64 : 3) });
    return bad === 0;
  } catch (error) {
    const code = (error as { code?: string }).code;
    return bad !== 0 && (code === 'NOT_FOUND' || code === 'INVALID_ARGUMENT');
  }
}

const producer = kafka.producer();
let produced = 0;
let sent = 0;
const started = Date.now();
const end = started + MINUTES * 60_000;
const TICK_MS = 100;
let carryRequests = 0;
let carryRecords = 0;
const inFlight = new Set<Promise<unknown>>();
while (Date.now() < end) {
  const tickStart = Date.now();
  carryRequests += (RPS * TICK_MS) / 1000;
  carryRecords += (RECORDS * TICK_MS) / 1000;
  for (; carryRequests >= 1 && inFlight.size < 256; carryRequests--) {
    const i = sent++;
    const kind = kinds[i % kinds.length] as (bad: number) => Promise<boolean>;
    const bad = Math.floor(i / kinds.length) % 10 === 9 ? 1 + (Math.floor(i / 40) % 3) : 0;
    const p = kind(bad).then(
      (fine) => {
        if (fine) counts[bad === 0 ? 'ok' : 'refused']++;
        else counts.unexpected++;
      },
      () => counts.unexpected++,
    );
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  }
  const batch: ProducerRecord[] = [];
  for (; carryRecords >= 1; carryRecords--) {
    const id = produced++;
    const value = id % 20 === 19 ? { id } : { id, pixels: id % 50 === 49 ? row.slice(0, 3) : row };
    batch.push({ topic: topics.in, key: Buffer.from(`k${id % 97}`), value: Buffer.from(JSON.stringify(value)) });
  }
  if (batch.length > 0) await producer.send(batch);
  const elapsed = Date.now() - started;
  if (elapsed % 60_000 < TICK_MS)
    console.log(`soak: ${Math.round(elapsed / 60_000)} min, requests ${JSON.stringify(counts)}, records ${produced}`);
  await new Promise((r) => setTimeout(r, Math.max(0, TICK_MS - (Date.now() - tickStart))));
}
await Promise.all(inFlight);

// The pipeline has read everything produced (its lag drained) before it stops.
const drainDeadline = Date.now() + 120_000;
let consumed = 0;
while (Date.now() < drainDeadline) {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  consumed = [...text.matchAll(/^inflow_stream_records_in_total\{[^}]*\} (\d+)/gm)].reduce((s, m) => s + Number(m[1]), 0);
  if (consumed >= produced) break;
  await new Promise((r) => setTimeout(r, 500));
}
await server.stop();
await stream.stop();
await producer.close();
await admin.deleteTopics(Object.values(topics));
await admin.close();
await kafka.close();
await broker?.stop();

console.log(`\nsoak: ${MINUTES} min; requests ${JSON.stringify(counts)}; pipeline read ${consumed} of ${produced} records`);
const report: Record<string, unknown> = { minutes: MINUTES, rps: RPS, recordsPerSecond: RECORDS, requests: counts, produced, consumed };
let flat = counts.unexpected === 0 && consumed >= produced;
for (const name of ['server', 'pipeline']) {
  const samples = (await readFile(sampleFile(name), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);
  const s = summarize(samples, started + WARMUP_MS);
  report[name] = s;
  flat &&= s.flat;
  console.log(`\n${name}:\n${s.text}`);
  // Where the RSS is: anonymous vs file-backed, off-heap buffers, and each worker thread's heap.
  const after = samples.filter((x) => (x.t as number) >= started + WARMUP_MS);
  const mb = (x: number): string => (x / 1048576).toFixed(1);
  const range = (key: string, of = after): string => {
    const ys = of.map((x) => x[key] as number).filter(Number.isFinite);
    return ys.length === 0
      ? '-'
      : `${mb(ys[0] as number)} → ${mb(ys.at(-1) as number)} (min ${mb(Math.min(...ys))}, max ${mb(Math.max(...ys))}) MB`;
  };
  console.log(
    `  RSS anonymous    ${range('rssAnon')}\n  RSS file-backed  ${range('rssFile')}\n  external         ${range('external')}\n  arrayBuffers     ${range('arrayBuffers')}`,
  );
  const workers = await readFile(`${sampleFile(name)}.workers.jsonl`, 'utf8').catch(() => '');
  const byThread = new Map<number, Record<string, number>[]>();
  for (const l of workers.trim().split('\n').filter(Boolean)) {
    const w = JSON.parse(l) as Record<string, number>;
    if ((w.t as number) >= started + WARMUP_MS) byThread.set(w.thread as number, [...(byThread.get(w.thread as number) ?? []), w]);
  }
  for (const [thread, ws] of byThread) console.log(`  worker ${thread} heap ${range('heapUsed', ws)}, malloced ${range('malloced', ws)}`);
  report[`${name}Native`] = { rssAnon: after.map((x) => x.rssAnon), workers: Object.fromEntries(byThread) };
}
console.log(
  `\ntarget (flat within ±5 % after ${WARMUP_MS / 60_000} min warm-up, no unexpected answers, no lag): ${flat ? 'MET' : 'NOT MET'}`,
);
if (values.out) await writeFile(values.out, JSON.stringify(report, null, 2));
process.exitCode = flat ? 0 : 1;
