/**
 * RSS of one pipeline instance against its in-flight budget (issue 22 item 6, second half): is a
 * pipeline's memory bounded by `limits.maxInFlight`, or by the backlog waiting on its input topic?
 *
 * `--records` JSON `{id, pixels}` records of `--model` are produced once to an 8-partition topic.
 * Then, per budget of `--budgets`, `inflow stream` (the CLI, its own process, the model embedded,
 * at-least-once, predict maxBatch 64, one stream thread) starts under a fresh application id and
 * drains that whole backlog, so the budget is full the whole time (the model, not the fetch, is the
 * slower side). While it drains, the harness reads VmRSS from /proc/<pid>/status every 100 ms and
 * scrapes `--metrics-port` every 250 ms (prom-client's `nodejs_heap_size_used_bytes`, the
 * `inflow_stream_in_flight_records` gauge, the records-out counter). Per budget it prints:
 *
 *   - RSS when ready (model loaded, before the first record), RSS peak (VmHWM) and steady (the
 *     median of the samples taken between 20 % and 90 % of the records out);
 *   - V8 heap used, median over the same span, and the peak scraped; heap committed (total); external memory (Buffers and
 *     ArrayBuffers outside the heap: the fetched record bytes), median over the same span — both of
 *     the main thread only (the ONNX worker thread's heap is in RSS, not in these);
 *   - in flight: the highest gauge value scraped (shows the budget filled);
 *   - records/s: records ÷ (time of the last output − time of the first), and CPU ms per 1 k records;
 *   - and, across budgets, the least-squares slope of steady RSS (and heap) per in-flight record.
 *
 *   node bench/streams/pipeline-memory.ts [--model mlp-784] [--records 100000] [--budgets 64,512,2048,8192,16384] [--max-poll 500]
 * Uses KAFKA_BOOTSTRAP_SERVERS when set, else starts the project's local broker. Not in `npm test`
 * or `npm run bench`.
 */
process.env.ORT_DISABLE_TELEMETRY ??= '1';

import { randomUUID } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startLocalBroker } from '../../src/kafka/broker/local-broker.ts';
import { createKafkaClient, type ProducerRecord } from '../../src/kafka/index.ts';
import { freePort, loadAverage, type Service, startService } from '../lib/process.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'mlp-784' },
    records: { type: 'string', default: '100000' },
    budgets: { type: 'string', default: '64,512,2048,8192,16384' },
    'max-poll': { type: 'string', default: '500' },
  },
});
const MODEL = values.model;
const N = Number(values.records);
const BUDGETS = values.budgets.split(',').map(Number);
const MAX_POLL = Number(values['max-poll']);
const PARTITIONS = 8;
const ROOT = join(import.meta.dirname, '..', '..');
const MiB = 1024 * 1024;

const broker = process.env.KAFKA_BOOTSTRAP_SERVERS ? undefined : await startLocalBroker({ heapMb: 1024 });
const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS ?? broker?.bootstrapServers ?? '';
const client = createKafkaClient({ bootstrapServers: bootstrap.split(','), clientId: 'bench-pipeline-memory' });
const admin = client.admin();
const work = await mkdtemp(join(tmpdir(), 'inflow-bench-memory-'));
const topics: string[] = [];

async function topic(label: string): Promise<string> {
  const name = `bench-mem-${label}-${randomUUID().slice(0, 8)}`;
  await admin.createTopics([{ topic: name, partitions: PARTITIONS }]);
  while (!(await admin.listTopics()).includes(name)) await new Promise((r) => setTimeout(r, 20));
  topics.push(name);
  return name;
}

const sample = JSON.parse(await readFile(join(ROOT, 'models', 'samples', `${MODEL}.json`), 'utf8')) as {
  inputs: { input: { shape: number[]; data: number[] } };
};
const width = sample.inputs.input.shape[1] ?? 0;
const rows = Array.from({ length: 8 }, (_, i) => JSON.stringify(sample.inputs.input.data.slice(i * width, (i + 1) * width)));
const recordOf = (t: string, id: number): ProducerRecord => ({
  topic: t,
  key: Buffer.from(`k${id % 37}`),
  value: Buffer.from(`{"id":${id},"pixels":${rows[id % rows.length]}}`),
});

// --- the backlog, produced once; every budget's instance reads all of it under its own group ---
const input = await topic('in');
{
  const producer = client.producer();
  const sends: Promise<unknown>[] = [];
  for (let id = 0; id < N; id += 500) {
    sends.push(producer.send(Array.from({ length: Math.min(500, N - id) }, (_, i) => recordOf(input, id + i))));
    if (sends.length >= 4) await sends.shift();
  }
  await Promise.all(sends);
  await producer.close();
}
const recordBytes = Buffer.byteLength(recordOf(input, 0).value ?? '');
console.error(`backlog: ${N} records of ~${recordBytes} bytes (${((N * recordBytes) / MiB).toFixed(0)} MiB) on ${PARTITIONS} partitions`);

const repo = join(work, 'repo');
await cp(join(ROOT, 'models', 'repository', MODEL, '1', 'model.onnx'), join(repo, MODEL, '1', 'model.onnx'), { preserveTimestamps: true });
await writeFile(
  join(repo, MODEL, 'config.yaml'),
  'platform: onnx\nbatching: { maxBatchSize: 64, maxDelayMicros: 0 }\nruntime: { file: model.onnx, intraOpThreads: 1 }\n',
);

async function startPipeline(budget: number, output: string, metricsPort: number): Promise<Service> {
  const file = join(work, `pipeline-${budget}.yaml`);
  await writeFile(
    file,
    `applicationId: bench-mem-${budget}-${randomUUID().slice(0, 8)}
kafka: { bootstrapServers: [${bootstrap}] }
guarantee: at-least-once
errors: { policy: fail }
limits: { maxInFlight: ${budget}, maxPollRecords: ${MAX_POLL}, commitIntervalMs: 100 }
models:
  local:
    embedded: { modelRepository: ${repo} }
pipeline:
  - source: { topic: ${input}, key: string, value: json }
  - predict:
      model: ${MODEL}
      using: local
      inputs: { input: { field: pixels, dtype: FP32 } }
      outputs: { label: { tensor: label }, probabilities: { tensor: probabilities } }
      maxBatch: 64
      maxDelayMs: 2
  - select: { fields: [id, label, probabilities] }
  - to: { topic: ${output}, value: json }
`,
  );
  return await startService({
    name: 'inflow stream',
    command: process.execPath,
    args: [join(ROOT, 'bin', 'inflow.js'), 'stream', file, '--metrics-port', `${metricsPort}`],
    env: { ORT_DISABLE_TELEMETRY: '1', INFLOW_LOG_LEVEL: 'warn' },
    readyText: 'running (',
  });
}

/** VmRSS and VmHWM of a process, MiB (/proc/<pid>/status gives kB). */
async function rssOf(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

/** Sum of a Prometheus metric's samples (every label set) in an exposition text. */
function metric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(name) && /[\s{]/.test(line[name.length] ?? '')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : (s[Math.floor(s.length / 2)] as number);
};

interface Row {
  readonly budget: number;
  readonly readyRss: number;
  readonly peakRss: number;
  readonly steadyRss: number;
  readonly steadyHeap: number;
  readonly peakHeap: number;
  readonly steadyExternal: number;
  readonly steadyHeapTotal: number;
  readonly maxInFlight: number;
  readonly rate: number;
  readonly cpuMsPer1k: number;
  readonly load: number;
}

async function measure(budget: number): Promise<Row> {
  const output = await topic(`out-${budget}`);
  const port = await freePort();
  const service = await startPipeline(budget, output, port);
  try {
    const readyRss = (await rssOf(service.pid)).rss;
    const cpu0 = await service.cpuSeconds();
    const rss: { t: number; out: number; mib: number }[] = [];
    const heap: { out: number; mib: number }[] = [];
    const external: { out: number; mib: number }[] = [];
    const heapTotal: { out: number; mib: number }[] = [];
    let out = 0;
    let maxInFlight = 0;
    let first: number | undefined;
    let last = 0;
    const rssTimer = setInterval(() => {
      const t = performance.now();
      rssOf(service.pid).then(
        (r) => rss.push({ t, out, mib: r.rss }),
        () => undefined,
      );
    }, 100);
    const deadline = Date.now() + 600_000;
    try {
      while (out < N) {
        if (Date.now() > deadline) throw new Error(`budget ${budget}: ${out}/${N} records out after 600 s`);
        const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
        const text = await res.text();
        const now = performance.now();
        const seen = metric(text, 'inflow_stream_records_out_total');
        if (seen > 0 && first === undefined) first = now;
        if (seen > out) last = now;
        out = seen;
        maxInFlight = Math.max(maxInFlight, metric(text, 'inflow_stream_in_flight_records'));
        heap.push({ out, mib: metric(text, 'nodejs_heap_size_used_bytes') / MiB });
        heapTotal.push({ out, mib: metric(text, 'nodejs_heap_size_total_bytes') / MiB });
        external.push({ out, mib: metric(text, 'nodejs_external_memory_bytes') / MiB });
        await new Promise((r) => setTimeout(r, 250));
      }
    } finally {
      clearInterval(rssTimer);
    }
    // RSS along the drain (at 10 %, 30 %, … of the records out): flat = bounded, rising = something grows with the backlog read.
    const along = [0.1, 0.3, 0.5, 0.7, 0.9].map((f) => rss.find((x) => x.out >= f * N)?.mib.toFixed(0) ?? '?');
    console.error(`maxInFlight ${budget}: RSS at 10/30/50/70/90 % of the records out: ${along.join(' / ')} MiB`);
    const cpu = (await service.cpuSeconds()) - cpu0;
    const hwm = (await rssOf(service.pid)).hwm;
    const steady = (xs: readonly { out: number; mib: number }[]) =>
      median(xs.filter((x) => x.out >= 0.2 * N && x.out <= 0.9 * N).map((x) => x.mib));
    return {
      budget,
      readyRss,
      peakRss: hwm,
      steadyRss: steady(rss),
      steadyHeap: steady(heap),
      peakHeap: Math.max(...heap.map((h) => h.mib)),
      steadyExternal: steady(external),
      steadyHeapTotal: steady(heapTotal),
      maxInFlight,
      rate: N / ((last - (first ?? last)) / 1000),
      cpuMsPer1k: (cpu * 1000 * 1000) / N,
      load: await loadAverage(),
    };
  } finally {
    await service.stop();
  }
}

/** Least-squares slope of y over x. */
function slope(xs: readonly number[], ys: readonly number[]): number {
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    num += ((xs[i] as number) - mx) * ((ys[i] as number) - my);
    den += ((xs[i] as number) - mx) ** 2;
  }
  return num / den;
}

const results: Row[] = [];
try {
  for (const budget of BUDGETS) {
    const r = await measure(budget);
    results.push(r);
    console.error(`maxInFlight ${budget}: ${JSON.stringify(r)}`);
  }
  console.log(
    `\n${MODEL}, ${N} records of ~${recordBytes} B backlog, maxPollRecords ${MAX_POLL}, node ${process.version}, ${new Date().toISOString()}`,
  );
  console.log(
    '| maxInFlight | in flight seen | RSS ready | RSS steady | RSS peak | heap used steady | heap peak | heap committed steady | external steady | records/s | CPU ms / 1 k | load |',
  );
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    console.log(
      `| ${r.budget} | ${r.maxInFlight} | ${r.readyRss.toFixed(0)} MiB | ${r.steadyRss.toFixed(0)} MiB | ${r.peakRss.toFixed(0)} MiB | ` +
        `${r.steadyHeap.toFixed(0)} MiB | ${r.peakHeap.toFixed(0)} MiB | ${r.steadyHeapTotal.toFixed(0)} MiB | ${r.steadyExternal.toFixed(0)} MiB | ${r.rate.toFixed(0)} | ${r.cpuMsPer1k.toFixed(0)} | ${r.load.toFixed(1)} |`,
    );
  }
  if (results.length >= 2) {
    const x = results.map((r) => r.budget);
    const kib = (ys: number[]) => (slope(x, ys) * 1024).toFixed(1);
    console.log(
      `\nslope per in-flight record: RSS steady ${kib(results.map((r) => r.steadyRss))} KiB, RSS peak ${kib(results.map((r) => r.peakRss))} KiB, ` +
        `heap steady ${kib(results.map((r) => r.steadyHeap))} KiB, external steady ${kib(results.map((r) => r.steadyExternal))} KiB (record ~${(recordBytes / 1024).toFixed(1)} KiB of JSON)`,
    );
  }
} finally {
  await admin.deleteTopics(topics).catch(() => undefined);
  await admin.close();
  await client.close();
  await broker?.stop();
  await rm(work, { recursive: true, force: true });
}
