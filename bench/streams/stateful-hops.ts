/**
 * Per-hop cost model of the stateful benchmark's topology (issue 17's throughput target) on a real
 * broker: µs of CPU per record for each hop — fetch, decode, window aggregation, overlay reads and
 * writes, store serdes, changelog/commit, encode, produce — attributed from V8 CPU profiles.
 *
 * The same topology and input as `stateful-compare.ts` (per key, count and mean of `amount` over
 * 10 s tumbling windows, every update emitted; `--records` JSON records over `--keys` keys, 8
 * partitions, pre-produced); `inflow stream pipeline.yaml` drains them as a child process under
 * `node --cpu-prof`. Only samples between the 20 % and the 100 % output (as a downstream reader sees
 * them) count, so start-up and warm-up are left out. Each sample is charged to the first frame from
 * its leaf upwards that a rule in {@link HOPS} recognises; a hop's CPU µs per record = its share of
 * the busy samples × the process CPU per record measured from /proc over the same window (sampled
 * time on a loaded machine includes waits for a core; the shares do not). "other" is listed by
 * function so a rule can be added.
 *
 *   node bench/streams/stateful-hops.ts [--records 50000] [--keys 1000] [--guarantee at-least-once|exactly-once]
 *     [--interval-us 250] [--top 30] [--json out.json] [--keep-profiles]
 * Uses KAFKA_BOOTSTRAP_SERVERS when set, else starts the project's local broker. Not in `npm test`.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startLocalBroker } from '../../src/kafka/broker/local-broker.ts';
import { createKafkaClient, type ProducerRecord } from '../../src/kafka/index.ts';
import { attributeHops, type CpuProfile, type HopRule } from '../lib/cpu-profile-hops.ts';
import { loadAverage, startService } from '../lib/process.ts';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '50000' },
    keys: { type: 'string', default: '1000' },
    guarantee: { type: 'string', default: 'at-least-once' },
    'interval-us': { type: 'string', default: '250' },
    top: { type: 'string', default: '30' },
    json: { type: 'string', default: '' },
    'keep-profiles': { type: 'boolean', default: false },
  },
});
const N = Number(values.records);
const KEYS = Number(values.keys);
const PARTITIONS = 8;
const WINDOW_MS = 10_000;
const ROOT = join(import.meta.dirname, '..', '..');

/**
 * Hop rules, tried on each frame from the sample's leaf upwards; the first match names the hop.
 * `url` and `fn` are regexes of the frame's script URL and function name.
 */
const HOPS: readonly HopRule[] = [
  { hop: 'gc', fn: /^\(garbage collector\)$/ },
  { hop: 'idle', fn: /^\(idle\)$/ },
  { hop: 'decode', url: /src\/kafka\/serdes\.ts|src\/kafka\/json-numeric\.ts/, fn: /deserialize|decode|parse/i },
  { hop: 'encode', url: /src\/kafka\/serdes\.ts|src\/kafka\/json-numeric\.ts/, fn: /serialize|encode|stringify|toJSON/i },
  { hop: 'engine (lmdb fold/read)', url: /lmdb-engine\.ts|node_modules\/lmdb\// },
  { hop: 'changelog + fold (commit)', url: /transactional-store\.ts/, fn: /prepareCommit|fold|changelog/i },
  { hop: 'overlay read/write', url: /transactional-store\.ts|memory-store\.ts|sorted-btree|store-provider\.ts/ },
  { hop: 'store key/value serdes', url: /ordered-key\.ts|window-key\.ts|key-value-store\.ts|aggregate-processor\.ts/ },
  { hop: 'window aggregation', url: /window-aggregate\.ts|windows\.ts|pipeline-aggregate\.ts|grouped-stream\.ts/ },
  { hop: 'commit', fn: /commit|Transaction|addOffsetsToTxn|endTxn|txnOffset/i, url: /platformatic|src\/kafka|streams-producer/ },
  { hop: 'produce', fn: /^(createRecord|prepareRecordsBatch)$/ },
  {
    hop: 'produce',
    url: /platformatic\/kafka\/dist\/(clients\/producer|protocol\/writer|apis\/producer)|platformatic-producer\.ts|record-collector\.ts|streams-producer\.ts|sink-record\.ts/,
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
const client = createKafkaClient({ bootstrapServers: bootstrap.split(','), clientId: 'bench-stateful-hops' });
const admin = client.admin();
const work = await mkdtemp(join(tmpdir(), 'inflow-bench-stateful-hops-'));
async function topic(label: string): Promise<string> {
  const name = `bench-shops-${label}-${randomUUID().slice(0, 8)}`;
  await admin.createTopics([{ topic: name, partitions: PARTITIONS }]);
  while (!(await admin.listTopics()).includes(name)) await new Promise((r) => setTimeout(r, 20));
  return name;
}
const input = await topic('in');
const output = await topic('out');
const t0 = Math.floor((Date.now() - 60_000) / WINDOW_MS) * WINDOW_MS;
{
  const producer = client.producer();
  for (let id = 0; id < N; id += 512) {
    const batch: ProducerRecord[] = [];
    for (let i = id; i < Math.min(N, id + 512); i++)
      batch.push({
        topic: input,
        key: Buffer.from(`k${i % KEYS}`),
        value: Buffer.from(`{"id":${i},"amount":${((i * 7919) % 1000) / 10}}`),
        timestamp: t0 + i,
      });
    await producer.send(batch);
  }
  await producer.close();
}
const appId = `bench-shops-${randomUUID().slice(0, 8)}`;
const file = join(work, 'pipeline.yaml');
await writeFile(
  file,
  `applicationId: ${appId}
kafka: { bootstrapServers: [${bootstrap}] }
guarantee: ${values.guarantee}
errors: { policy: fail }
limits: { commitIntervalMs: 100 }
state: { dir: ${join(work, 'state')} }
pipeline:
  - source: { topic: ${input}, key: string, value: json }
  - aggregate:
      window: { tumbling: ${WINDOW_MS} }
      emit: update
      aggregations: { count: count, mean: { mean: amount } }
  - to: { topic: ${output}, value: json }
`,
);
const profiles = join(work, 'profiles');
const reader = client.consumer({
  groupId: `bench-shops-reader-${randomUUID().slice(0, 8)}`,
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
  env: { INFLOW_LOG_LEVEL: 'warn' },
  readyText: 'running (',
});
let received = 0;
let from = 0n;
let to = 0n;
let n20 = 0;
let cpu20 = 0;
let cpu100 = 0;
const deadline = Date.now() + 300_000;
while (received < N && Date.now() < deadline) {
  received += (await reader.poll({ maxRecords: 4000, timeoutMs: 100 })).length;
  if (from === 0n && received >= N * 0.2) {
    from = process.hrtime.bigint();
    n20 = received;
    cpu20 = await service.cpuSeconds();
  }
  if (received >= N) {
    to = process.hrtime.bigint();
    cpu100 = await service.cpuSeconds();
  }
}
await service.stop(30_000);
await reader.close();
const load1 = await loadAverage();
if (received < N) throw new Error(`only ${received} of ${N} outputs within 300 s: ${service.output().slice(-2000)}`);
const windowRecords = received - n20;
const wallS = Number(to - from) / 1e9;

// --- attribution ---------------------------------------------------------------------------------
const fromUs = Number(from / 1000n);
const toUs = Number(to / 1000n);
const threads: Array<{ name: string; hops: Map<string, number>; leaves: Map<string, number>; total: number }> = [];
for (const f of (await readdir(profiles)).filter((x) => x.endsWith('.cpuprofile')).sort()) {
  const p = JSON.parse(await readFile(join(profiles, f), 'utf8')) as CpuProfile;
  const a = attributeHops(p, HOPS, fromUs, toUs);
  if (a.total > 0) threads.push({ name: f, ...a });
}
const busyAll = threads.reduce((a, t) => a + t.total - (t.hops.get('idle') ?? 0), 0);
const cpuPerRecordUs = ((cpu100 - cpu20) * 1e6) / windowRecords;
const cpuOf = (us: number): number => (us / busyAll) * cpuPerRecordUs;
const order = [
  'fetch',
  'kafka socket I/O',
  'decode',
  'window aggregation',
  'store key/value serdes',
  'overlay read/write',
  'changelog + fold (commit)',
  'engine (lmdb fold/read)',
  'encode',
  'produce',
  'commit',
  'runtime',
  'gc',
  'other',
];
const hops = new Map<string, number>();
for (const t of threads) for (const [h, us] of t.hops) if (h !== 'idle') hops.set(h, (hops.get(h) ?? 0) + us);
const leaves = new Map<string, number>();
for (const t of threads) for (const [k, us] of t.leaves) if (!k.startsWith('idle')) leaves.set(k, (leaves.get(k) ?? 0) + us);
const result = {
  records: N,
  keys: KEYS,
  guarantee: values.guarantee,
  window: { records: windowRecords, seconds: wallS, recordsPerSecond: windowRecords / wallS },
  load: { before: load0, after: load1 },
  /** CPU of the whole process (every thread) per record in the window, from /proc: what the shares divide. */
  cpuUsPerRecord: cpuPerRecordUs,
  /** Hop → CPU µs per record (share of busy samples × measured CPU per record). */
  hops: Object.fromEntries(order.filter((h) => hops.has(h)).map((h) => [h, cpuOf(hops.get(h) ?? 0)])),
  /** Leaf functions → CPU µs per record, the largest first. */
  top: [...leaves.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, Number(values.top))
    .map(([fn, us]) => [fn, cpuOf(us)]),
};
console.error(
  `${values.guarantee}: ${windowRecords} records in ${wallS.toFixed(2)} s = ${Math.round(windowRecords / wallS)} records/s; ` +
    `process CPU ${cpuPerRecordUs.toFixed(1)} µs/record; load ${load0.toFixed(1)} → ${load1.toFixed(1)}`,
);
for (const [h, us] of Object.entries(result.hops)) console.error(`  ${h.padEnd(28)} ${us.toFixed(2).padStart(7)}`);
for (const [fn, us] of result.top) console.error(`    ${(us as number).toFixed(2).padStart(6)}  ${fn}`);
if (values.json) await writeFile(values.json, JSON.stringify(result, null, 1));
console.log(JSON.stringify(result));
if (values['keep-profiles']) console.error(`profiles kept in ${profiles}`);
else await rm(work, { recursive: true, force: true });
await admin.deleteTopics((await admin.listTopics()).filter((t) => t === input || t === output || t.startsWith(appId))).catch(() => {});
await admin.close();
await client.close();
await broker?.stop();
