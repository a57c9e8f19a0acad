/**
 * What OpenTelemetry tracing costs the embedded pipeline: records/s and CPU µs per record of the
 * digits pipeline (JSON `{id, pixels[64]}` → the embedded digits-mlp → JSON) on the in-process
 * log (no broker: the pipeline's own work is what is measured), with tracing off and with tracing
 * on — every record sampled, spans exported over OTLP/HTTP to a real OpenTelemetry Collector
 * (test/otel/collector, built with `go build`). Rounds alternate off/on in one process so both
 * see the same machine load; the median of each is reported. Not part of `npm test`.
 *
 *   ORT_DISABLE_TELEMETRY=1 node bench/observability/tracing-overhead.ts [--records 20000] [--rounds 3]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createMemoryClient } from '../../src/kafka/memory/memory-client.ts';
import { jsonSerde, stringSerde } from '../../src/kafka/serdes.ts';
import { startTracing } from '../../src/observability/tracing.ts';
import { loadServable } from '../../src/runtime/index.ts';
import { createLocalInference } from '../../src/serving/local-inference.ts';
import { createStreamsBuilder, createStreamsRunner } from '../../src/streams/index.ts';
import { startLocalCollector } from '../../test/setup/otel-collector.ts';

const { values } = parseArgs({ options: { records: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '3' } } });
const N = Number(values.records);
const ROUNDS = Number(values.rounds);
const PARTITIONS = 4;
const MODELS = join(import.meta.dirname, '..', '..', 'models', 'repository');

const dir = await mkdtemp(join(tmpdir(), 'inflow-bench-tracing-'));
const collector = await startLocalCollector(dir);
process.env.OTEL_EXPORTER_OTLP_ENDPOINT = collector.endpoint;
const inference = await createLocalInference({
  modelRepository: MODELS,
  models: ['digits-mlp'],
  load: loadServable,
  watch: false,
  settleMs: 0,
});
const serdes = { key: stringSerde, value: jsonSerde<Record<string, unknown>>() };
const memory = createMemoryClient();
const input = 'bench-in';
memory.log.createTopic({ topic: input, partitions: PARTITIONS }, false);
const producer = memory.producer();
for (let start = 0; start < N; start += 1000) {
  const records = [];
  for (let id = start; id < Math.min(N, start + 1000); id++) {
    const pixels = Array.from({ length: 64 }, (_, i) => ((id * 31 + i * 7) % 17) / 16);
    records.push({ topic: input, key: Buffer.from(String(id)), value: Buffer.from(JSON.stringify({ id, pixels })) });
  }
  await producer.send(records);
}
await producer.close();

function outputCount(topic: string): number {
  let n = 0;
  for (let p = 0; p < PARTITIONS; p++) n += memory.log.read(topic, p, 0n, Number.MAX_SAFE_INTEGER, false).records.length;
  return n;
}

async function round(i: number, traced: boolean): Promise<{ rps: number; cpuMicros: number }> {
  const output = `bench-out-${i}-${traced ? 'on' : 'off'}`;
  memory.log.createTopic({ topic: output, partitions: PARTITIONS }, false);
  memory.log.createTopic({ topic: `${output}-dlq`, partitions: 1 }, false);
  const b = createStreamsBuilder();
  b.stream(input, serdes)
    .predict({
      inferencer: inference,
      model: 'digits-mlp',
      inputs: { input: { field: 'pixels', shape: [64] } },
      outputs: { label: { tensor: 'label' } },
      maxBatch: 64,
    })
    .mapValues((r) => ({ id: (r.value as { id: number }).id, label: (r.value as { label: unknown }).label }))
    .to(output, serdes);
  const tracing = traced
    ? await startTracing({
        // Every span exported, none dropped: a queue that holds a second of spans, flushed often.
        env: {
          OTEL_TRACES_EXPORTER: 'otlp',
          OTEL_BSP_MAX_QUEUE_SIZE: '32768',
          OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2048',
          OTEL_BSP_SCHEDULE_DELAY: '200',
        },
        serviceName: 'bench',
      })
    : undefined;
  const runner = createStreamsRunner(b.build(), {
    client: memory,
    applicationId: `bench-${i}-${traced}`,
    deadLetterTopic: `${output}-dlq`,
    lagIntervalMs: 0,
  });
  const cpu = process.cpuUsage();
  const started = performance.now();
  await runner.start();
  while (outputCount(output) < N) await memory.log.waitForChange(100);
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  await runner.close();
  await tracing?.shutdown();
  return { rps: N / seconds, cpuMicros: (used.user + used.system) / N };
}

const results: Record<'off' | 'on', { rps: number; cpuMicros: number }[]> = { off: [], on: [] };
await round(-1, false); // warm-up: model, JIT
for (let i = 0; i < ROUNDS; i++) {
  for (const traced of [false, true]) {
    const r = await round(i, traced);
    results[traced ? 'on' : 'off'].push(r);
    process.stdout.write(
      `round ${i} tracing ${traced ? 'on ' : 'off'}: ${r.rps.toFixed(0)} records/s, ${r.cpuMicros.toFixed(1)} CPU µs/record\n`,
    );
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const off = { rps: median(results.off.map((r) => r.rps)), cpu: median(results.off.map((r) => r.cpuMicros)) };
const on = { rps: median(results.on.map((r) => r.rps)), cpu: median(results.on.map((r) => r.cpuMicros)) };
process.stdout.write(
  `median of ${ROUNDS}: off ${off.rps.toFixed(0)} records/s ${off.cpu.toFixed(1)} µs/record; on ${on.rps.toFixed(0)} records/s ${on.cpu.toFixed(1)} µs/record` +
    ` (records/s ${(((on.rps - off.rps) / off.rps) * 100).toFixed(1)} %, CPU/record +${(((on.cpu - off.cpu) / off.cpu) * 100).toFixed(1)} %)\n`,
);
await inference.close();
await memory.close();
await collector.stop();
await rm(dir, { recursive: true, force: true });
