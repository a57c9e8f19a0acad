/**
 * `inflow demo --scene card-payments`: the stateful example live. It runs
 * examples/pipelines/card-payments.yaml (or card-payments-avro.yaml with `--avro`) as shipped —
 * only its topic names and application id get the run's id, and the registry URL is the one given —
 * produces the merchants table, replays the bundled generated payments
 * (models/datasets/card-payments.json) at a steady rate, and reads what the pipeline writes: each
 * payment with the features it computed (per card, sliding 10-minute window; the merchant's row)
 * and card-fraud-gbt's answer. It ends with accuracy against the labels and whether every feature
 * equals the pandas reference models/build.py computed offline from the same payments.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InflowError } from '../errors.ts';
import { createSchemaRegistryClient } from '../kafka/schema-registry/registry-client.ts';
import { createRegistrySerde } from '../kafka/schema-registry/registry-serde.ts';
import type { ProducerRecord } from '../kafka/types.ts';
import { createLogger } from '../observability/logger.ts';
import { setRuntimeLogger } from '../runtime/index.ts';
import { createStreamsRunner } from '../streams/index.ts';
import { buildPipeline, parsePipelineConfig } from '../streams/pipeline/index.ts';
import { openDemoKafka } from './demo-setup.ts';
import { type CardPayment, compareWithReference, loadCardPayments, type ScoredPayment } from './demo-stateful-dataset.ts';
import { createLiveLines, type ProgressStream, withSpinner } from './progress.ts';

/** Where the example files live (repository checkout and npm package alike). */
const EXAMPLES = join(import.meta.dirname, '..', '..', 'examples');

/** The scenes `--scene` takes. */
export const DEMO_SCENES = ['card-payments', 'monitoring'] as const;

/** Flags of the scene (from `inflow demo`). */
export interface StatefulDemoFlags {
  readonly kafka?: string | undefined;
  readonly rate?: string | undefined;
  readonly avro?: boolean | undefined;
  readonly json?: boolean | undefined;
}

/** The topics of the example file, in the order they are renamed (longest first). */
const TOPICS = {
  json: { scored: 'card-payments-scored', dlq: 'card-payments-dlq', payments: 'card-payments', merchants: 'merchants' },
  avro: { scored: 'card-payments-avro-scored', dlq: 'card-payments-avro-dlq', payments: 'card-payments-avro', merchants: 'merchants-avro' },
} as const;

export type SceneTopics = Record<keyof (typeof TOPICS)['json'], string>;

/**
 * The example file's text for run `run`: its topics and dead-letter topic prefixed with
 * `inflow-demo-<run>-`, its application id suffixed with the run, the registry URL replaced.
 */
export function renameExample(text: string, avro: boolean, run: string, registryUrl?: string): { text: string; topics: SceneTopics } {
  const names = avro ? TOPICS.avro : TOPICS.json;
  const prefix = `inflow-demo-${run}-`;
  let out = text;
  for (const t of Object.values(names))
    out = out.replaceAll(`topic: ${t} `, `topic: ${prefix}${t} `).replaceAll(`topic: ${t},`, `topic: ${prefix}${t},`);
  out = out.replace(`deadLetterTopic: ${names.dlq}`, `deadLetterTopic: ${prefix}${names.dlq}`);
  out = out.replace(/^applicationId: (.*)$/m, (_, id: string) => `applicationId: ${id}-${run}`);
  if (registryUrl !== undefined) out = out.replace(/^( {2}url: ).*$/m, `$1${registryUrl}`);
  const topics = Object.fromEntries(Object.entries(names).map(([k, t]) => [k, `${prefix}${t}`])) as SceneTopics;
  for (const t of Object.values(topics)) {
    if (!out.includes(t)) throw new InflowError('INTERNAL', `the example file no longer names the topic ${t.slice(prefix.length)}`);
  }
  return { text: out, topics };
}

function rateOf(text: string | undefined): number {
  if (text === undefined) return 300;
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n > 1_000_000)
    throw new InflowError('INVALID_ARGUMENT', `--rate must be an integer 0-1000000, got "${text}"`);
  return n;
}

/** "p-3-000042 c-3-0017  3 in 10 min, mean 102.33, gap 41.3 s, online (risk 0.50) → 0.97 FRAUD (true: fraud)" */
export function describeScored(v: ScoredPayment & Record<string, unknown>, label: number | undefined): string {
  const info = v.merchant_info as { category?: string; risk?: number } | null | undefined;
  const gap = typeof v.gap_ms === 'number' ? `${(v.gap_ms / 1000).toFixed(1)} s` : 'none';
  const p = typeof v.fraud_probability === 'number' ? v.fraud_probability.toFixed(2) : '?';
  const truth = label === undefined ? '' : ` (true: ${label === 1 ? 'fraud' : 'legit'})`;
  return `${String(v.id)} ${String(v.card)}  ${String(v.n_10m)} in 10 min, mean ${(Number(v.mean_amount_10m) / 100).toFixed(2)}, gap ${gap}, ${info?.category ?? '?'} (risk ${info?.risk?.toFixed(2) ?? '?'}) → ${p} ${v.fraud === 1 ? 'FRAUD' : 'legit'}${truth}`;
}

/** Runs the card-payments scene; resolves when it ended and everything it started is stopped. */
export async function statefulDemo(flags: StatefulDemoFlags, out: (line: string) => void): Promise<void> {
  const rate = rateOf(flags.rate);
  const avro = flags.avro ?? false;
  const registryUrl = avro ? process.env.SCHEMA_REGISTRY_URL : undefined;
  if (avro && !registryUrl) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      '--avro needs a Schema Registry: set SCHEMA_REGISTRY_URL (inflow registry up starts one and prints the export line)',
    );
  }
  const progress: ProgressStream = flags.json ? process.stderr : process.stdout;
  const say = (line: string): void => void progress.write(`${line}\n`);
  const logger = createLogger({ name: 'inflow.demo', level: process.env.INFLOW_LOG_LEVEL ?? 'warn' });
  setRuntimeLogger(logger);
  const dataset = await loadCardPayments();
  const file = avro ? 'card-payments-avro.yaml' : 'card-payments.yaml';
  const path = join(EXAMPLES, 'pipelines', file);
  const run = randomUUID().slice(0, 8);
  const { text, topics } = renameExample(await readFile(path, 'utf8'), avro, run, registryUrl);
  const registry = registryUrl === undefined ? undefined : createSchemaRegistryClient({ url: registryUrl });
  const schema = async (name: string): Promise<string> => readFile(join(EXAMPLES, 'schemas', name), 'utf8');
  const encode = async (topic: string, schemaFile: string): Promise<(v: unknown) => Promise<Buffer>> => {
    if (!registry) return async (v) => Buffer.from(JSON.stringify(v));
    const serde = createRegistrySerde({ client: registry, format: 'avro', topic, write: { schema: await schema(schemaFile) } });
    return async (v) => (await serde.serialize(v)) as Buffer;
  };
  const decoder = registry ? createRegistrySerde({ client: registry, format: 'avro', topic: topics.scored }) : undefined;
  const decode = async (bytes: Buffer): Promise<Record<string, unknown>> =>
    (decoder ? await decoder.deserialize(bytes) : JSON.parse(bytes.toString('utf8'))) as Record<string, unknown>;

  const undo: Array<() => Promise<unknown>> = [];
  try {
    const kafka = await openDemoKafka(flags.kafka, progress);
    undo.push(() => kafka.close());
    const admin = kafka.client.admin();
    undo.push(() => admin.close());
    await admin.createTopics([
      { topic: topics.payments, partitions: 3 },
      { topic: topics.merchants, partitions: 1 },
      { topic: topics.scored, partitions: 3 },
      { topic: topics.dlq, partitions: 1 },
    ]);
    if (kafka.external) undo.push(() => admin.deleteTopics(Object.values(topics)));
    say(`inflow demo --scene card-payments on ${kafka.description}${avro ? `, Avro records under ${registryUrl ?? ''}` : ''}`);
    say(`  pipeline: examples/pipelines/${file} (topics prefixed inflow-demo-${run}-)`);
    say(`  data: ${dataset.events.length} payments of generated cards (${dataset.source})`);

    const producer = kafka.client.producer();
    undo.push(() => producer.close());
    // The table first: the runner reads it to its end before it processes a payment.
    const merchantValue = await encode(topics.merchants, 'merchant.avsc');
    const rows: ProducerRecord[] = [];
    for (const m of dataset.merchants) {
      rows.push({
        topic: topics.merchants,
        key: Buffer.from(m.merchant),
        value: await merchantValue({ category: m.category, risk: m.risk }),
      });
    }
    await producer.send(rows);

    const config = parsePipelineConfig(text, path);
    const built = await withSpinner(
      progress,
      'building the pipeline (loading card-fraud-gbt)',
      buildPipeline(config, { baseDir: join(EXAMPLES, 'pipelines'), source: path, logger }),
    );
    undo.push(() => built.close());
    const runner = createStreamsRunner(built.topology, { ...built.runnerOptions, client: kafka.client, instanceId: `demo-${run}`, logger });
    undo.push(() => runner.close());
    const stop = new AbortController();
    runner.done.catch((error: unknown) => stop.abort(InflowError.from(error)));

    const consumer = kafka.client.consumer({
      groupId: `inflow-demo-scene-${run}`,
      autoOffsetReset: 'earliest',
      isolationLevel: 'read_committed',
    });
    undo.push(() => consumer.close());
    await consumer.subscribe([topics.scored]);
    await runner.start();

    const labels = new Map(dataset.events.map((e, i) => [e.id, dataset.labels[i] as number]));
    const scored = new Map<string, Record<string, unknown>>();
    const flagged: string[] = [];
    const live = createLiveLines(progress);
    const paymentValue = await encode(topics.payments, 'card-payment.avsc');
    const started = performance.now();
    let sent = 0;
    let lastAt = started;
    const view = (): string[] => [
      `sent ${sent}/${dataset.events.length}  scored ${scored.size}  flagged ${flagged.length}`,
      // Always four lines: the live view redraws in place.
      ...[0, 1, 2].map((k) => {
        const line = flagged[flagged.length - 3 + k];
        return line === undefined ? '' : `  ${line}`;
      }),
    ];
    const reading = (async () => {
      while (scored.size < dataset.events.length && !stop.signal.aborted) {
        for (const r of await consumer.poll({ maxRecords: 1000, timeoutMs: 200 })) {
          const v = await decode(r.value as Buffer);
          scored.set(String(v.id), v);
          lastAt = performance.now();
          if (v.fraud === 1) flagged.push(describeScored(v, labels.get(String(v.id))));
        }
        if (performance.now() - lastAt > 30_000)
          throw new InflowError('DEADLINE_EXCEEDED', 'no scored payment for 30 s; see the log on stderr (INFLOW_LOG_LEVEL=info)');
      }
    })();
    const ticker = setInterval(() => live.update(view()), 250);
    try {
      for (let i = 0; i < dataset.events.length && !stop.signal.aborted; ) {
        const due =
          rate > 0 ? Math.min(dataset.events.length, Math.floor(((performance.now() - started) * rate) / 1000) + 1) : dataset.events.length;
        if (due <= i) {
          await new Promise((r) => setTimeout(r, 5));
          continue;
        }
        const batch: ProducerRecord[] = [];
        for (; i < due && batch.length < 500; i++) {
          const e = dataset.events[i] as CardPayment;
          batch.push({ topic: topics.payments, key: Buffer.from(e.card), value: await paymentValue({ ...e }), timestamp: e.ts });
        }
        await producer.send(batch);
        sent = i;
      }
      await Promise.race([
        reading,
        new Promise((_, reject) => stop.signal.addEventListener('abort', () => reject(stop.signal.reason as Error), { once: true })),
      ]);
    } finally {
      clearInterval(ticker);
      live.finish(view());
    }
    const seconds = (lastAt - started) / 1000;
    const outputs = [...scored.values()];
    const problems = compareWithReference(dataset, outputs);
    const hits = outputs.filter((v) => v.fraud === labels.get(String(v.id))).length;
    const frauds = outputs.filter((v) => labels.get(String(v.id)) === 1);
    const caught = frauds.filter((v) => v.fraud === 1).length;
    const called = outputs.filter((v) => v.fraud === 1);
    const summary = {
      payments: dataset.events.length,
      scored: outputs.length,
      seconds: Number(seconds.toFixed(2)),
      recordsPerSecond: Math.round(outputs.length / seconds),
      accuracy: hits / outputs.length,
      fraudPrecision: called.length === 0 ? null : called.filter((v) => labels.get(String(v.id)) === 1).length / called.length,
      fraudRecall: frauds.length === 0 ? null : caught / frauds.length,
      featuresEqualReference: problems.length === 0,
      problems: problems.slice(0, 5),
      avro,
    };
    if (flags.json) {
      out(JSON.stringify(summary));
      return;
    }
    out('');
    out(`${outputs.length} payments scored in ${summary.seconds} s (${summary.recordsPerSecond}/s at --rate ${rate})`);
    out(
      `accuracy ${(summary.accuracy * 100).toFixed(2)} % against the generator's labels; fraud precision ${((summary.fraudPrecision ?? 0) * 100).toFixed(1)} %, recall ${((summary.fraudRecall ?? 0) * 100).toFixed(1)} %`,
    );
    out(
      problems.length === 0
        ? 'every feature equals the pandas reference computed offline from the same payments (models/build.py), every probability Python onnxruntime’s'
        : `${problems.length} differences from the pandas reference, e.g. ${problems.slice(0, 3).join('; ')}`,
    );
  } finally {
    for (const step of undo.reverse())
      await step().catch((error: unknown) => logger.warn({ err: (error as Error).message }, 'stopping failed'));
    logger.flush();
  }
}
