/**
 * What a stream thread costs when it has nothing to do: `inflow stream --threads N` (the
 * mlp-784 pipeline of pipeline-hops.ts) on an empty input topic; after `--warm` seconds the
 * process's CPU over `--seconds` (from /proc: every thread, the ONNX workers included) gives CPU
 * ms per second of wall time. Subtracted from a loaded run's CPU, it is the fixed part of a
 * thread's cost (polls, heartbeats, metrics probes, timers) as against the per-record part.
 *
 *   node bench/streams/pipeline-idle.ts [--threads 1,2] [--seconds 10] [--warm 5] [--reps 2]
 * Uses KAFKA_BOOTSTRAP_SERVERS when set, else starts the project's local broker. Not in `npm test`.
 */
process.env.ORT_DISABLE_TELEMETRY ??= '1';

import { randomUUID } from 'node:crypto';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startLocalBroker } from '../../src/kafka/broker/local-broker.ts';
import { createKafkaClient } from '../../src/kafka/index.ts';
import { loadAverage, startService } from '../lib/process.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1,2' },
    seconds: { type: 'string', default: '10' },
    warm: { type: 'string', default: '5' },
    reps: { type: 'string', default: '2' },
  },
});
const ROOT = join(import.meta.dirname, '..', '..');
const broker = process.env.KAFKA_BOOTSTRAP_SERVERS ? undefined : await startLocalBroker({ heapMb: 1024 });
const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS ?? broker?.bootstrapServers ?? '';
const client = createKafkaClient({ bootstrapServers: bootstrap.split(','), clientId: 'bench-pipeline-idle' });
const admin = client.admin();
const work = await mkdtemp(join(tmpdir(), 'inflow-bench-idle-'));
const repo = join(work, 'repo');
await cp(join(ROOT, 'models', 'repository', 'mlp-784', '1', 'model.onnx'), join(repo, 'mlp-784', '1', 'model.onnx'));
await writeFile(
  join(repo, 'mlp-784', 'config.yaml'),
  'platform: onnx\nbatching: { maxBatchSize: 64, maxDelayMicros: 0 }\nruntime: { file: model.onnx, intraOpThreads: 1 }\n',
);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const rows: string[] = [];
for (let rep = 0; rep < Number(values.reps); rep++) {
  for (const threads of values.threads.split(',').map(Number)) {
    const input = `bench-idle-in-${randomUUID().slice(0, 8)}`;
    const output = `bench-idle-out-${randomUUID().slice(0, 8)}`;
    await admin.createTopics([
      { topic: input, partitions: 8 },
      { topic: output, partitions: 8 },
    ]);
    const file = join(work, `pipeline-${threads}.yaml`);
    await writeFile(
      file,
      `applicationId: bench-idle-${randomUUID().slice(0, 8)}
kafka: { bootstrapServers: [${bootstrap}] }
errors: { policy: fail }
limits: { commitIntervalMs: 100 }
threads: ${threads}
models:
  local:
    embedded: { modelRepository: ${repo} }
pipeline:
  - source: { topic: ${input}, key: string, value: json }
  - predict:
      model: mlp-784
      using: local
      inputs: { input: { field: pixels, dtype: FP32 } }
      outputs: { label: { tensor: label } }
      maxBatch: 64
  - to: { topic: ${output}, value: json }
`,
    );
    const service = await startService({
      name: 'inflow stream',
      command: process.execPath,
      args: [join(ROOT, 'bin', 'inflow.js'), 'stream', file],
      env: { ORT_DISABLE_TELEMETRY: '1', INFLOW_LOG_LEVEL: 'warn' },
      readyText: 'running (',
    });
    await sleep(Number(values.warm) * 1000);
    const load = await loadAverage();
    const c0 = await service.cpuSeconds();
    const t0 = performance.now();
    await sleep(Number(values.seconds) * 1000);
    const cpu = (await service.cpuSeconds()) - c0;
    const wall = (performance.now() - t0) / 1000;
    await service.stop(30_000);
    const row = `| ${threads} | ${((cpu / wall) * 1000).toFixed(1)} | ${load.toFixed(1)} |`;
    rows.push(row);
    process.stderr.write(`${row}\n`);
  }
}
console.log('| stream threads | idle CPU ms per second | load |\n|---|---:|---|');
for (const r of rows) console.log(r);
await rm(work, { recursive: true, force: true });
await admin.close();
await client.close();
await broker?.stop();
