/**
 * Backtest on history: replays the retained records of an input topic through model versions
 * side by side and, with a labels topic, scores each version with the live-accuracy metrics
 * (./label-join.ts) — what a request/response model server cannot do, since Kafka kept the inputs.
 *
 * The replay reads with a group-less consumer (assign + seek, as a state restore does): it joins
 * no consumer group and commits nothing, so no production group's offsets move. It reads each
 * partition from the start position up to the end offset taken when it began.
 */
import { InflowError } from '../errors.ts';
import type { ConsumedRecord, KafkaClient, TopicPartitionOffset } from '../kafka/types.ts';
import type { InferenceService } from '../serving/inference-service.ts';
import { rowToJson } from '../streams/api/field-mapping.ts';
import type { Tensor } from '../tensor/index.ts';
import type { AccuracyConfig } from './accuracy-config.ts';
import { requireTopics } from './accuracy-monitor.ts';
import { type AccuracyReport, createLabelJoin, type LabelJoin, type LabelOutcome } from './label-join.ts';

/** Where the replay starts: the earliest retained record, an offset (in every partition), or a time (ms since the epoch). */
export type BacktestFrom = { earliest: true } | { offset: bigint } | { time: number };

export interface BacktestOptions {
  client: KafkaClient;
  inference: InferenceService;
  model: string;
  /** The versions compared, the candidate first. */
  versions: readonly number[];
  topic: string;
  from: BacktestFrom;
  /** Record value (parsed JSON) → model inputs; throws for a record it cannot map. */
  inputs: (value: unknown) => Record<string, Tensor>;
  /** With labels: the join settings (labels topic, ids, prediction path, window). */
  accuracy?: AccuracyConfig;
  /** Records inferred at once. Default 64. */
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: (records: number) => void;
}

/** One version's result. */
export interface BacktestVersion {
  version: number;
  predictions: number;
  /** Records the version failed on (a bad input, a model error), with the first reason. */
  failed: number;
  firstError?: string;
  /** Per window of the accuracy config (one window unless it sets one); with labels only. */
  reports: AccuracyReport[];
  /** Predictions equal to the first (candidate) version's, as a share of the records both answered. */
  agreement?: number;
}

export interface BacktestResult {
  topic: string;
  /** Records replayed (after `from`). */
  records: number;
  /** Records whose value is not JSON (not replayed). */
  unreadable: number;
  versions: BacktestVersion[];
  labels?: Record<LabelOutcome, number>;
}

/** Runs a backtest to the end offsets taken at its start. */
export async function runBacktest(options: BacktestOptions): Promise<BacktestResult> {
  const { client, model, versions, topic } = options;
  if (versions.length === 0) throw new InflowError('INVALID_ARGUMENT', 'backtest: name at least one version');
  await requireTopics(client, { 'input topic': topic, ...(options.accuracy ? { 'labels topic': options.accuracy.labelsTopic } : {}) });
  const positions = await startPositions(client, topic, options.from);
  const joins = new Map<number, LabelJoin>(versions.map((v) => [v, createLabelJoin(options.accuracy ?? defaultJoin)]));
  const results = new Map<number, BacktestVersion>(versions.map((v) => [v, { version: v, predictions: 0, failed: 0, reports: [] }]));
  const agree = new Map<number, { same: number; both: number }>(versions.map((v) => [v, { same: 0, both: 0 }]));
  const predictionPath = options.accuracy?.prediction ?? 'outputs.label';
  let records = 0;
  let unreadable = 0;

  const replayOne = async (r: ConsumedRecord): Promise<void> => {
    let value: unknown;
    try {
      value = JSON.parse(r.value?.toString('utf8') ?? 'null');
    } catch {
      unreadable++;
      return;
    }
    records++;
    const answers = await Promise.all(
      versions.map(async (version) => {
        const result = results.get(version) as BacktestVersion;
        try {
          const res = await options.inference.infer({ model, version, inputs: options.inputs(value) });
          result.predictions++;
          const outputs = Object.fromEntries(Object.entries(res.outputs).map(([name, t]) => [name, rowToJson(t, 'array')]));
          const entry = { model, version, key: r.key?.toString('utf8') ?? null, outputs };
          (joins.get(version) as LabelJoin).addPrediction({ ...r, value: Buffer.from(JSON.stringify(entry)) });
          return JSON.stringify(pick(entry, predictionPath));
        } catch (error) {
          result.failed++;
          result.firstError ??= `${topic}[${r.partition}]@${r.offset}: ${InflowError.from(error).message}`;
          return undefined;
        }
      }),
    );
    const first = answers[0];
    for (const [i, v] of versions.entries()) {
      const a = answers[i];
      if (first === undefined || a === undefined) continue;
      const s = agree.get(v) as { same: number; both: number };
      s.both++;
      if (a === first) s.same++;
    }
  };

  await readRange(client, positions, options.signal, async (batch) => {
    const from = options.from;
    const wanted = 'time' in from ? batch.filter((r) => r.timestamp >= from.time) : batch;
    const size = options.concurrency ?? 64;
    for (let i = 0; i < wanted.length; i += size) await Promise.all(wanted.slice(i, i + size).map(replayOne));
    options.onProgress?.(records);
  });

  let labels: Record<LabelOutcome, number> | undefined;
  if (options.accuracy) {
    const accuracy = options.accuracy;
    const ends = await endPositions(client, accuracy.labelsTopic);
    await readRange(client, ends, options.signal, (batch) => {
      for (const r of batch) for (const j of joins.values()) j.addLabel(r);
    });
    labels = (joins.get(versions[0] as number) as LabelJoin).outcomes();
  }
  for (const v of versions) {
    const result = results.get(v) as BacktestVersion;
    if (options.accuracy) result.reports = (joins.get(v) as LabelJoin).closeDue(true).reports;
    const s = agree.get(v) as { same: number; both: number };
    if (s.both > 0) result.agreement = s.same / s.both;
  }
  return { topic, records, unreadable, versions: versions.map((v) => results.get(v) as BacktestVersion), ...(labels ? { labels } : {}) };
}

/** Without labels the join only counts predictions: one window over everything. */
const defaultJoin: AccuracyConfig = {
  labelsTopic: '',
  task: 'classification',
  id: { prediction: 'key', label: 'key' },
  labelField: 'label',
  prediction: 'outputs.label',
  windowMs: Number.MAX_SAFE_INTEGER,
  labelWindowMs: Number.MAX_SAFE_INTEGER,
  graceMs: 0,
  deadLetterTopic: '',
};

function pick(value: unknown, path: string): unknown {
  let v: unknown = value;
  for (const part of path.split('.')) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
  return Array.isArray(v) && v.length === 1 ? v[0] : v;
}

/** Per partition: [start, end) of the replay. */
type Range = { start: TopicPartitionOffset; end: bigint }[];

async function startPositions(client: KafkaClient, topic: string, from: BacktestFrom): Promise<Range> {
  const admin = client.admin();
  try {
    const earliest = await admin.listOffsets(topic, 'earliest');
    const latest = new Map((await admin.listOffsets(topic, 'latest')).map((o) => [o.partition, o.offset]));
    return earliest.map((e) => {
      const start = 'offset' in from && from.offset > e.offset ? from.offset : e.offset;
      return { start: { ...e, offset: start }, end: latest.get(e.partition) ?? start };
    });
  } finally {
    await admin.close();
  }
}

const endPositions = (client: KafkaClient, topic: string): Promise<Range> => startPositions(client, topic, { earliest: true });

/** Reads every partition from its start to its end with a group-less consumer. */
async function readRange(
  client: KafkaClient,
  range: Range,
  signal: AbortSignal | undefined,
  apply: (batch: ConsumedRecord[]) => void | Promise<void>,
): Promise<void> {
  const todo = range.filter((p) => p.end > p.start.offset);
  if (todo.length === 0) return;
  const consumer = client.restoreConsumer();
  try {
    consumer.assign(todo.map((p) => p.start));
    const remaining = new Set(todo.map((p) => p.start.partition));
    const end = new Map(todo.map((p) => [p.start.partition, p.end]));
    while (remaining.size > 0) {
      signal?.throwIfAborted();
      const batch = await consumer.poll({ maxRecords: 1000, timeoutMs: 500, ...(signal ? { signal } : {}) });
      const inRange = batch.filter((r) => r.offset < (end.get(r.partition) ?? 0n));
      if (inRange.length > 0) await apply(inRange);
      for (const p of todo) {
        if (consumer.position(p.start) >= p.end) remaining.delete(p.start.partition);
      }
    }
  } finally {
    await consumer.close();
  }
}
