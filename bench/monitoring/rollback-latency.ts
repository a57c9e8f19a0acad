/**
 * How long after a rollback's routing record is on the models topic traffic is back on the
 * baseline (issue 18's closing figure), on a real broker, for both consumers of the topic:
 *   - a server: an embedded inference service following the topic (as `inflow serve
 *     --models-topic` does), answering a request loop in this process: the last answer by the
 *     rolled-back version;
 *   - a pipeline: an `inflow stream` process (exactly-once, embedded model following the topic)
 *     fed a stream of inputs: the last increase of its `inflow_inference_request_success_total`
 *     for the rolled-back version, read from its /metrics every 5 ms.
 * Each round routes 50/50 to versions 1 and 2, waits until both answer by version 2, then
 * publishes the rollback (100 % on version 1) as `inflow models rollout` does; times are from
 * just before that publish. Both run with the model repository's defaults. Not in `npm test`.
 *
 *   node bench/monitoring/rollback-latency.ts [--rounds 5]
 * Uses KAFKA_BOOTSTRAP_SERVERS (required).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { publishControl, publishModel, startRepositorySync } from '../../src/delivery/index.ts';
import { createKafkaClient } from '../../src/kafka/index.ts';
import { parsePrometheusText } from '../../src/monitoring/prometheus-text.ts';
import { createInferenceMetrics } from '../../src/observability/metrics.ts';
import { loadServable } from '../../src/runtime/index.ts';
import { createLocalInference } from '../../src/serving/local-inference.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' } } });
const rounds = Number(values.rounds);
const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS?.split(',');
if (!bootstrap) throw new Error('set KAFKA_BOOTSTRAP_SERVERS');
const ROOT = join(import.meta.dirname, '..', '..');
const V1_DIR = join(ROOT, 'models', 'repository', 'digits-mlp', '1');
const CONFIG = { platform: 'onnx', versionPolicy: { all: true }, runtime: { file: 'model.onnx' }, warmup: { rows: 1, runs: 200 } };
const id = randomBytes(4).toString('hex');
const topics = { models: `bench-rb-models-${id}`, input: `bench-rb-in-${id}`, output: `bench-rb-out-${id}` };
const applicationId = `bench-rb-${id}`;
const client = createKafkaClient({ bootstrapServers: bootstrap, clientId: 'bench-rollback' });
const admin = client.admin();
await admin.createTopics([
  { topic: topics.models, partitions: 1, configs: { 'cleanup.policy': 'compact' } },
  { topic: topics.input, partitions: 4 },
  { topic: topics.output, partitions: 4 },
  { topic: `${applicationId}-dlq`, partitions: 1 },
]);
const dir = await mkdtemp(join(tmpdir(), 'inflow-bench-rollback-'));
for (const version of [1, 2]) {
  await publishModel({ client, topic: topics.models, model: 'digits-mlp', version, modelDir: V1_DIR, config: CONFIG, publisher: 'bench' });
}
const route = (split: { version: number; weight: number }[]) =>
  publishControl({ client, topic: topics.models, model: 'digits-mlp', routing: { split }, publisher: 'inflow-rollout' });
await route([{ version: 1, weight: 100 }]);

// The server side: an embedded inference service following the topic, wired as `inflow serve
// --models-topic` wires it (src/server/model-server.ts): the sync refreshes the repository on each
// delivery. (Before, this bench followed the topic with a bare model sync, so a routing change
// reached the service only through the file watcher's 250 ms debounce — 304 ms at load 8 — a
// cost `inflow serve` does not pay.)
const metrics = createInferenceMetrics();
const sync = await startRepositorySync({ client, topic: topics.models, modelRepository: join(dir, 'server-repo'), startTimeoutMs: 60_000 });
// The repository's defaults, as `inflow serve` and `inflow stream` run them (settle 1 s: a routing change waits it out).
const service = await createLocalInference({ modelRepository: join(dir, 'server-repo'), load: loadServable, watch: true, metrics });
sync.attach(service.repository);
const rows = (JSON.parse(await readFile(join(ROOT, 'models', 'datasets', 'digits-test.json'), 'utf8')) as { pixels: number[][] }).pixels;
let running = true;
let lastServerV2 = 0;
const serverLoop = (async () => {
  for (let i = 0; running; i++) {
    const row = rows[i % rows.length] as number[];
    const r = await service
      .infer({ model: 'digits-mlp', inputs: { input: { dtype: 'FP32', shape: [1, 64], data: Float32Array.from(row) } } })
      .catch(() => undefined);
    if (r?.version === 2) lastServerV2 = Date.now();
    await delay(1);
  }
})();

// The pipeline side: `inflow stream` with its /metrics, fed 20 inputs every 10 ms.
const port = await new Promise<number>((resolve) => {
  const s = createServer();
  s.listen(0, '127.0.0.1', () => {
    const a = s.address();
    s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
  });
});
const file = join(dir, 'pipeline.json');
await writeFile(
  file,
  JSON.stringify({
    applicationId,
    instanceId: 'bench',
    kafka: { bootstrapServers: bootstrap },
    guarantee: 'exactly-once',
    errors: { policy: 'dlq', deadLetterTopic: `${applicationId}-dlq` },
    limits: { commitIntervalMs: 100 },
    models: { local: { embedded: { modelRepository: join(dir, 'pipeline-repo'), modelsTopic: topics.models } } },
    pipeline: [
      { source: { topic: topics.input, key: 'string', value: 'json' } },
      {
        predict: {
          name: 'predict-digit',
          model: 'digits-mlp',
          using: 'local',
          inputs: { input: { field: 'pixels', dtype: 'FP32', shape: [64] } },
          outputs: { label: { tensor: 'label' } },
        },
      },
      { to: { topic: topics.output } },
    ],
  }),
);
const child = spawn(process.execPath, [join(ROOT, 'bin', 'inflow.js'), 'stream', file, '--metrics-port', String(port)], {
  env: { ...process.env, INFLOW_LOG_LEVEL: 'silent', ORT_DISABLE_TELEMETRY: '1' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
await new Promise<void>((resolve, reject) => {
  let out = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
    if (/pipeline .* running/.test(out)) resolve();
  });
  child.once('exit', (code) => reject(new Error(`inflow stream exited (${code}): ${out}`)));
});
const producer = client.producer();
const feeding = (async () => {
  for (let n = 0; running; n += 20) {
    await producer.send(
      Array.from({ length: 20 }, (_, i) => ({
        topic: topics.input,
        key: Buffer.from(`k${(n + i) % 37}`),
        value: Buffer.from(JSON.stringify({ id: n + i, pixels: rows[(n + i) % rows.length] })),
      })),
    );
    await delay(10);
  }
})();
const pipelineV2 = async (): Promise<number> => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const s of parsePrometheusText(text)) {
    if (s.name === 'inflow_inference_request_success_total' && s.labels.model === 'digits-mlp' && s.labels.version === '2') sum += s.value;
  }
  return sum;
};

const results: Array<{ publishMs: number; serverMs: number; pipelineMs: number }> = [];
for (let round = 0; round < rounds; round++) {
  await route([
    { version: 1, weight: 50 },
    { version: 2, weight: 50 },
  ]);
  // Both sides answer by version 2 before the rollback.
  const since = Date.now();
  const v2Before = await pipelineV2();
  while (!(lastServerV2 > since && (await pipelineV2()) > v2Before + 20)) await delay(20);
  await delay(1000);
  const t0 = Date.now();
  await route([{ version: 1, weight: 100 }]);
  const published = Date.now();
  // The pipeline's version-2 counter, every 5 ms, for 6 s: its last increase.
  let count = await pipelineV2();
  let lastIncrease = t0;
  while (Date.now() - t0 < 6000) {
    const c = await pipelineV2();
    if (c > count) lastIncrease = Date.now();
    count = c;
    await delay(5);
  }
  results.push({ publishMs: published - t0, serverMs: Math.max(0, lastServerV2 - t0), pipelineMs: lastIncrease - t0 });
}
running = false;
await Promise.all([serverLoop, feeding]);
await producer.close();
child.kill('SIGTERM');
await new Promise((resolve) => child.once('exit', resolve));
await sync.close();
await service.close();
const sorted = (k: 'publishMs' | 'serverMs' | 'pipelineMs') => results.map((r) => r[k]).sort((a, b) => a - b);
console.log(
  JSON.stringify({
    rounds: results,
    medianMs: {
      onTopic: sorted('publishMs')[Math.floor(rounds / 2)],
      server: sorted('serverMs')[Math.floor(rounds / 2)],
      pipeline: sorted('pipelineMs')[Math.floor(rounds / 2)],
    },
    load: loadavg()[0],
  }),
);
await admin.deleteTopics([...Object.values(topics), `${applicationId}-dlq`]);
await admin.close();
await client.close();
await rm(dir, { recursive: true, force: true });
