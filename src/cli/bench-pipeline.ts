/**
 * Load through a stream pipeline (a pipeline file, run in this process by the streams runner):
 * events are produced to its source topic at a rate, and a downstream consumer reads its output
 * and dead-letter topics; the latency of an event is from handing it to the producer to reading
 * its first output (matched by record key, which the pipeline's operators keep).
 */
import { dirname } from 'node:path';
import { type KafkaConfig, kafkaConfigSchema, parseBootstrapServers } from '../config/kafka-config.ts';
import { validateConfig } from '../config/load-config.ts';
import { createKafkaClient, createMemoryClient } from '../kafka/index.ts';
import type { KafkaClient } from '../kafka/types.ts';
import type { Logger } from '../observability/logger.ts';
import { createStreamsRunner } from '../streams/index.ts';
import { buildPipeline, loadPipelineFile, oneLineConfigError } from '../streams/pipeline/index.ts';
import { replayDataset } from './demo-replay.ts';
import { createLatencyRecorder, type LatencyRecorder } from './latency-recorder.ts';

/** Options of {@link benchPipeline}. */
export interface BenchPipelineOptions {
  readonly file: string;
  /** undefined or `memory`: the in-process log; else `host:port[,…]` (topics missing there are created). */
  readonly kafka: string | undefined;
  readonly records: number;
  /** Events per second; 0 = as fast as the producer takes them. */
  readonly rate: number;
  /** Key and value (JSON text) of event `seq`; the key must be unique per event. */
  readonly event: (seq: number) => { key: string; value: string };
  readonly signal: AbortSignal;
  readonly logger: Logger;
  /** How long outputs may stop arriving before the run ends, ms. Default 5000 after the replay, 30 000 before. */
  readonly idleMs?: number;
  readonly onProgress?: (sent: number, answered: number) => void;
  /** Called once the pipeline runs (e.g. to print its topics). */
  readonly onStart?: (description: string) => void;
}

/** What a pipeline bench measured. */
export interface PipelineBenchResult {
  readonly sent: number;
  /** Events with an output on an output topic. */
  readonly answered: number;
  /** Events that went to the dead-letter topic. */
  readonly deadLettered: number;
  readonly seconds: number;
  /** End-to-end latency of the answered events, ms. */
  readonly latency: LatencyRecorder;
}

function kafkaFor(fileKafka: KafkaConfig, flag: string | undefined): { client: KafkaClient; memory: boolean } {
  if (flag === undefined || flag === 'memory') return { client: createMemoryClient(), memory: true };
  try {
    const config = validateConfig(kafkaConfigSchema, { ...fileKafka, bootstrapServers: parseBootstrapServers(flag) }, '--kafka');
    return { client: createKafkaClient(config), memory: false };
  } catch (error) {
    throw oneLineConfigError(error);
  }
}

/** Runs the pipeline under load; everything it started is stopped before it resolves. */
export async function benchPipeline(o: BenchPipelineOptions): Promise<PipelineBenchResult> {
  const config = await loadPipelineFile(o.file);
  const { client, memory } = kafkaFor(config.kafka, o.kafka);
  const closers: Array<() => Promise<unknown>> = [() => client.close()];
  try {
    const built = await buildPipeline(config, { baseDir: dirname(o.file), source: o.file, logger: o.logger });
    closers.push(() => built.close());
    const t = built.topology;
    const dlq = built.runnerOptions.deadLetterTopic ?? `${config.applicationId}-dlq`;
    const admin = client.admin();
    closers.push(() => admin.close());
    const existing = new Set(memory ? [] : await admin.listTopics());
    const wanted = [...new Set([...t.inputTopics, ...t.outputTopics, dlq])].filter((topic) => !existing.has(topic));
    if (wanted.length > 0)
      await admin.createTopics(
        wanted.map((topic) => ({ topic, partitions: topic === dlq ? 1 : 4 })),
        { ifNotExists: true },
      );
    const runner = createStreamsRunner(t, { ...built.runnerOptions, client });
    closers.push(() => runner.close());
    const consumer = client.consumer({
      groupId: `inflow-bench-${Date.now()}`,
      autoOffsetReset: 'earliest',
      isolationLevel: config.guarantee === 'exactly-once' ? 'read_committed' : 'read_uncommitted',
    });
    closers.push(() => consumer.close());
    await consumer.subscribe([...new Set([...t.outputTopics, dlq])]);
    await runner.start();
    o.onStart?.(`${config.applicationId}: ${t.inputTopics.join(', ')} → ${t.outputTopics.join(', ')} (dead letters: ${dlq})`);

    const sentAt = new Float64Array(o.records).fill(Number.NaN);
    const keyToSeq = new Map<string, number>();
    const seen = new Uint8Array(o.records);
    const latency = createLatencyRecorder();
    let sent = 0;
    let answered = 0;
    let deadLettered = 0;
    let replayDone = false;
    let lastOutput = performance.now();
    const started = performance.now();
    const producer = client.producer();
    closers.push(() => producer.close());
    const failed = new Promise<never>((_, reject) => void runner.done.catch(reject));
    failed.catch(() => undefined);
    const replay = replayDataset({
      producer,
      topic: t.inputTopics[0] as string,
      event: (seq) => {
        const e = o.event(seq);
        keyToSeq.set(e.key, seq);
        return e;
      },
      records: o.records,
      rate: o.rate,
      sentAt,
      signal: o.signal,
      onProgress: (n) => {
        sent = n;
        o.onProgress?.(sent, answered + deadLettered);
      },
    }).then((n) => {
      sent = n;
      replayDone = true;
    });
    const read = (async () => {
      const idle = (): number => o.idleMs ?? (replayDone ? 5000 : 30_000);
      while (!o.signal.aborted && answered + deadLettered < o.records && performance.now() - lastOutput < idle()) {
        const records = await consumer.poll({ maxRecords: 1000, timeoutMs: 100 });
        const now = performance.now();
        for (const r of records) {
          const seq = r.key ? keyToSeq.get(r.key.toString('utf8')) : undefined;
          if (seq === undefined || seen[seq]) continue;
          seen[seq] = 1;
          lastOutput = now;
          if (r.topic === dlq) deadLettered++;
          else {
            answered++;
            latency.record(now - (sentAt[seq] as number));
          }
        }
        if (records.length > 0) o.onProgress?.(sent, answered + deadLettered);
      }
    })();
    await Promise.race([Promise.all([replay, read]), failed]);
    return { sent, answered, deadLettered, seconds: (lastOutput - started) / 1000, latency };
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  }
}
