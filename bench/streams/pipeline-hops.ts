/**
 * Per-hop cost model of the embedded prediction pipeline on a real broker (issue 22 item 3): µs of
 * CPU per record for each hop — fetch, decode, tensor build, batch, worker hop, infer, encode,
 * produce, commit — attributed from V8 CPU profiles, not from guesses.
 *
 * `--records` mlp-784 JSON records (`{id, pixels}`, 784 floats, ~7 KB) are produced first on 8
 * partitions; `inflow stream pipeline.yaml` (source → predict mlp-784, maxBatch 64 → select → to)
 * then drains them as a child process under `node --cpu-prof` (every thread: the event loop and
 * the ONNX worker each write a profile). Only samples between the 20 % and the 100 % output (as
 * a downstream reader sees them) count, so start-up, model load and JIT warm-up are left out.
 * Each sample is charged to the first frame from its leaf upwards that a rule in {@link HOPS}
 * recognises (e.g. `JSON.parse` called from the JSON serde's deserialize → decode), and hop µs
 * per record = that hop's sampled time ÷ the records output in the window. "idle" is the event
 * loop waiting (for the broker, for the worker); "other" is what no rule recognises, listed by
 * function so a rule can be added.
 *
 * With `--threads N` the pipeline runs as N stream threads (`threads: N`): each thread's event
 * loop and ONNX worker profile on their own, the records/s is the instance's.
 *
 *   node bench/streams/pipeline-hops.ts [--records 20000] [--guarantee at-least-once|exactly-once] [--threads 1]
 *     [--value json|passthrough] [--interval-us 250] [--top 25] [--json out.json]
 * Uses KAFKA_BOOTSTRAP_SERVERS when set, else starts the project's local broker. Not in `npm test`.
 */
process.env.ORT_DISABLE_TELEMETRY ??= '1';

import { randomUUID } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startLocalBroker } from '../../src/kafka/broker/local-broker.ts';
import { createKafkaClient, type ProducerRecord } from '../../src/kafka/index.ts';
import { attributeHops, type CpuProfile, type HopRule } from '../lib/cpu-profile-hops.ts';
import { loadAverage, startService } from '../lib/process.ts';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '20000' },
    guarantee: { type: 'string', default: 'at-least-once' },
    value: { type: 'string', default: 'json' },
    threads: { type: 'string', default: '1' },
    'interval-us': { type: 'string', default: '250' },
    top: { type: 'string', default: '25' },
    json: { type: 'string', default: '' },
    'keep-profiles': { type: 'boolean', default: false },
  },
});
const N = Number(values.records);
const PARTITIONS = 8;
const ROOT = join(import.meta.dirname, '..', '..');

/**
 * Hop rules, tried on each frame from the sample's leaf upwards; the first match names the hop.
 * `url` and `fn` are substrings/regexes of the frame's script URL and function name.
 */
export const HOPS: readonly HopRule[] = [
  { hop: 'gc', fn: /^\(garbage collector\)$/ },
  { hop: 'idle', fn: /^\(idle\)$/ },
  // The ONNX worker thread: the session run is the model; the rest of the worker is the hop.
  { hop: 'infer', url: /onnxruntime-node\/dist\/backend/ },
  { hop: 'worker hop', url: /onnx-worker(-slot)?\.ts|onnx-protocol\.ts|onnx-servable\.ts/ },
  { hop: 'worker hop', fn: /^(postMessage|structuredClone|deserialize|serialize)$/, url: /^$|node:internal\/worker/ },
  { hop: 'decode', url: /src\/kafka\/serdes\.ts|src\/kafka\/json-numeric\.ts/, fn: /deserialize|decode|parse/i },
  { hop: 'encode', url: /src\/kafka\/serdes\.ts|src\/kafka\/json-numeric\.ts/, fn: /serialize|encode|stringify|toJSON/i },
  { hop: 'tensor build', url: /field-mapping\.ts|feature-assembly\.ts|typed-array|src\/tensor\/(tensor|dtype)\.ts/ },
  { hop: 'batch', url: /predict-batcher\.ts|src\/tensor\/batch\.ts|dynamic-batcher\.ts/ },
  { hop: 'infer (servable)', url: /src\/runtime\/|local-inference\.ts|inference-service\.ts|src\/serving\// },
  { hop: 'commit', fn: /commit|Transaction|addOffsetsToTxn|endTxn|txnOffset/i, url: /platformatic|src\/kafka|streams-producer/ },
  // The wire format: records written are produce, records read are fetch (dynamic-buffer frames
  // match nothing, so they go to whichever of these called them).
  { hop: 'produce', fn: /^(createRecord|prepareRecordsBatch)$/ },
  {
    hop: 'produce',
    url: /platformatic\/kafka\/dist\/(clients\/producer|protocol\/writer|apis\/producer)|platformatic-producer\.ts|record-collector\.ts|streams-producer\.ts/,
  },
  {
    hop: 'fetch',
    url: /platformatic\/kafka\/dist\/(clients\/consumer|protocol\/(reader|records)|apis\/consumer)|platformatic-consumer\.ts|read-committed-consumer\.ts|partition-queue\.ts/,
  },
  { hop: 'kafka socket I/O', url: /platformatic\/kafka\/dist\/network/ },
  { hop: 'runtime', url: /src\/streams\// },
];

// --- the run ---------------------------------------------------------------------------------------
const broker = process.env.KAFKA_BOOTSTRAP_SERVERS ? undefined : await startLocalBroker({ heapMb: 1024 });
const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS ?? broker?.bootstrapServers ?? '';
const client = createKafkaClient({ bootstrapServers: bootstrap.split(','), clientId: 'bench-pipeline-hops' });
const admin = client.admin();
const work = await mkdtemp(join(tmpdir(), 'inflow-bench-hops-'));
async function topic(label: string): Promise<string> {
  const name = `bench-hops-${label}-${randomUUID().slice(0, 8)}`;
  await admin.createTopics([{ topic: name, partitions: PARTITIONS }]);
  while (!(await admin.listTopics()).includes(name)) await new Promise((r) => setTimeout(r, 20));
  return name;
}
const sample = JSON.parse(await readFile(join(ROOT, 'models', 'samples', 'mlp-784.json'), 'utf8')) as {
  inputs: { input: { data: number[] } };
};
const rows = Array.from({ length: 8 }, (_, i) => JSON.stringify(sample.inputs.input.data.slice(i * 784, (i + 1) * 784)));
const input = await topic('in');
const output = await topic('out');
{
  const producer = client.producer();
  for (let id = 0; id < N; id += 256) {
    const batch: ProducerRecord[] = Array.from({ length: Math.min(256, N - id) }, (_, i) => ({
      topic: input,
      key: Buffer.from(`k${(id + i) % 37}`),
      value: Buffer.from(`{"id":${id + i},"pixels":${rows[(id + i) % rows.length]}}`),
    }));
    await producer.send(batch);
  }
  await producer.close();
}
const repo = join(work, 'repo');
await cp(join(ROOT, 'models', 'repository', 'mlp-784', '1', 'model.onnx'), join(repo, 'mlp-784', '1', 'model.onnx'));
await writeFile(
  join(repo, 'mlp-784', 'config.yaml'),
  'platform: onnx\nbatching: { maxBatchSize: 64, maxDelayMicros: 0 }\nruntime: { file: model.onnx, intraOpThreads: 1 }\n',
);
const appId = `bench-hops-${randomUUID().slice(0, 8)}`;
const steps =
  values.value === 'passthrough'
    ? `  - source: { topic: ${input}, key: bytes, value: bytes }\n  - to: { topic: ${output}, value: bytes }\n`
    : `  - source: { topic: ${input}, key: string, value: json }
  - predict:
      model: mlp-784
      using: local
      inputs: { input: { field: pixels, dtype: FP32 } }
      outputs: { label: { tensor: label }, probabilities: { tensor: probabilities } }
      maxBatch: 64
      maxDelayMs: 2
  - select: { fields: [id, label, probabilities] }
  - to: { topic: ${output}, value: json }
`;
const file = join(work, 'pipeline.yaml');
await writeFile(
  file,
  `applicationId: ${appId}
kafka: { bootstrapServers: [${bootstrap}] }
guarantee: ${values.guarantee}
errors: { policy: fail }
limits: { commitIntervalMs: 100 }
threads: ${values.threads}
models:
  local:
    embedded: { modelRepository: ${repo} }
pipeline:
${steps}`,
);
const profiles = join(work, 'profiles');
const reader = client.consumer({
  groupId: `bench-hops-reader-${randomUUID().slice(0, 8)}`,
  autoOffsetReset: 'earliest',
  isolationLevel: values.guarantee === 'exactly-once' ? 'read_committed' : 'read_uncommitted',
});
await reader.subscribe([output]);
const load0 = await loadAverage();
const service = await startService({
  name: 'inflow stream',
  command: process.execPath,
  args: [
    '--cpu-prof',
    '--cpu-prof-dir',
    profiles,
    '--cpu-prof-interval',
    values['interval-us'],
    join(ROOT, 'bin', 'inflow.js'),
    'stream',
    file,
  ],
  env: { ORT_DISABLE_TELEMETRY: '1', INFLOW_LOG_LEVEL: 'warn' },
  readyText: 'running (',
});
let received = 0;
let from = 0n;
let to = 0n;
let t20 = 0;
let t100 = 0;
let cpu20 = 0;
let cpu100 = 0;
const deadline = Date.now() + 300_000;
while (received < N && Date.now() < deadline) {
  received += (await reader.poll({ maxRecords: 4000, timeoutMs: 100 })).length;
  if (from === 0n && received >= N * 0.2) {
    from = process.hrtime.bigint();
    t20 = received;
    cpu20 = await service.cpuSeconds();
  }
  if (received >= N) {
    to = process.hrtime.bigint();
    t100 = received;
    cpu100 = await service.cpuSeconds();
  }
}
await service.stop(30_000);
await reader.close();
const load1 = await loadAverage();
if (received < N) throw new Error(`only ${received} of ${N} outputs within 300 s: ${service.output().slice(-2000)}`);
const windowRecords = t100 - t20;
const wallS = Number(to - from) / 1e9;

// --- attribution ---------------------------------------------------------------------------------
const fromUs = Number(from / 1000n);
const toUs = Number(to / 1000n);
const threads: Array<{ name: string; hops: Map<string, number>; other: Map<string, number>; total: number }> = [];
for (const f of (await readdir(profiles)).filter((x) => x.endsWith('.cpuprofile')).sort()) {
  const p = JSON.parse(await readFile(join(profiles, f), 'utf8')) as CpuProfile;
  const { hops, leaves: other, total } = attributeHops(p, HOPS, fromUs, toUs);
  if (total === 0) continue;
  // The event loop's profile is the one with the streams runtime in it.
  const main = p.nodes.some((n) => n.callFrame.url.includes('src/streams/runtime/'));
  threads.push({ name: `${main ? 'event loop' : 'worker'} (${f})`, hops, other, total });
}
const perRecord = (us: number): number => us / windowRecords;
// Sampled time is wall time while a thread runs JS or native code: on a loaded machine a thread
// that waits for a core has its wait charged to the next sample. The shares are what counts: each
// hop's CPU µs = its share of all busy samples × the CPU per record /proc measured.
const busyAll = threads.reduce((a, t) => a + t.total - (t.hops.get('idle') ?? 0), 0);
const cpuPerRecordUs = ((cpu100 - cpu20) * 1e6) / windowRecords;
const cpuOf = (us: number): number => (us / busyAll) * cpuPerRecordUs;
const order = [
  'fetch',
  'kafka socket I/O',
  'decode',
  'tensor build',
  'batch',
  'worker hop',
  'infer',
  'infer (servable)',
  'encode',
  'produce',
  'commit',
  'runtime',
  'gc',
  'other',
  'idle',
];
const result = {
  records: N,
  window: { records: windowRecords, seconds: wallS, recordsPerSecond: windowRecords / wallS },
  guarantee: values.guarantee,
  value: values.value,
  streamThreads: Number(values.threads),
  load: { before: load0, after: load1 },
  /** CPU of the whole process (every thread) per record in the window, from /proc: what the shares below divide. */
  cpuUsPerRecord: ((cpu100 - cpu20) * 1e6) / windowRecords,
  threads: threads.map((t) => ({
    name: t.name,
    busyUsPerRecord: perRecord(t.total - (t.hops.get('idle') ?? 0)),
    /** Hop → CPU µs per record (share of busy samples × measured CPU per record); idle: sampled µs per record. */
    hops: Object.fromEntries(
      order.filter((h) => t.hops.has(h)).map((h) => [h, h === 'idle' ? perRecord(t.hops.get(h) ?? 0) : cpuOf(t.hops.get(h) ?? 0)]),
    ),
    other: [...t.other.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, Number(values.top))
      .map(([fn, us]) => [fn, perRecord(us)]),
  })),
};
console.error(
  `${values.value} ${values.guarantee}, ${values.threads} thread(s): ${windowRecords} records in ${wallS.toFixed(2)} s = ${Math.round(windowRecords / wallS)} records/s; load ${load0.toFixed(1)} → ${load1.toFixed(1)}`,
);
for (const t of result.threads) {
  console.error(
    `  ${t.name}: sampled busy ${t.busyUsPerRecord.toFixed(1)} µs/record; CPU µs/record by hop (process ${cpuPerRecordUs.toFixed(1)}):`,
  );
  for (const [h, us] of Object.entries(t.hops)) console.error(`    ${h.padEnd(32)} ${us.toFixed(1).padStart(7)}`);
  for (const [fn, us] of t.other) console.error(`      ${(us as number).toFixed(2).padStart(6)} sampled  ${fn}`);
}
if (values.json) await writeFile(values.json, JSON.stringify(result, null, 1));
console.log(JSON.stringify(result));
if (values['keep-profiles']) console.error(`profiles kept in ${profiles}`);
else await rm(work, { recursive: true, force: true });
await admin.close();
await client.close();
await broker?.stop();
