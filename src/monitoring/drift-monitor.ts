/**
 * The live drift monitor: reads the prediction log (inputs and outputs per prediction, with the
 * model version), collects tumbling windows of record time per model version, and when a window
 * closes compares it with the version's reference profile: a report per window on the monitoring
 * topic, an alert per breached threshold on the alerts topic, and Prometheus metrics. A version
 * without a reference profile is reported once as "drift unavailable" with the reason.
 *
 * A window closes once the watermark passed its end + grace. The watermark is the slowest
 * partition's stream time (the least, over the partitions read and still assigned, of the largest
 * timestamp read from each), as the accuracy monitor's join does: a partition that lags (a slower
 * producer, a monitor catching up that reads one partition ahead of another) keeps the windows its
 * records belong to open instead of finding them closed and its records late. An assigned partition
 * not read yet that has records to read (its end offset past the group's position when it was
 * assigned) holds every window until its first record, or for at most {@link UNREAD_WAIT_MS} (its
 * remaining offsets may be transaction markers, which return no record); an empty one holds none.
 *
 * Delivery: offsets are committed after the windows they fed are written; records of a window
 * still open at a crash are read again on restart (at-least-once into the window).
 */
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { InflowError } from '../errors.ts';
import type { ConsumedRecord, KafkaClient, KafkaConsumer, ProducerRecord, TopicPartitionOffset } from '../kafka/types.ts';
import { alertRecord, driftAlerts } from './alerts.ts';
import { detectDrift, driftThresholdsSchema, type FeatureDrift } from './drift-detector.ts';
import type { MonitorConfig } from './monitor-config.ts';
import { createMonitoringMetrics } from './monitoring-metrics.ts';
import { type FeatureValue, flattenRow, loadReferenceProfile, type ReferenceProfile } from './reference-profile.ts';

/** How long an assigned partition with records to read and none read yet holds the watermark, ms of wall-clock time. */
export const UNREAD_WAIT_MS = 5000;

/** Values kept per feature and window (bounds memory; statistics over a sample beyond it). */
export const MAX_WINDOW_VALUES = 20_000;

interface Window {
  model: string;
  version: number;
  start: number;
  inputs: Map<string, FeatureValue[]>;
  outputs: Map<string, FeatureValue[]>;
  count: number;
}

/** A closed window's report (the monitoring topic's record value). */
export interface DriftReport {
  kind: 'drift-report';
  model: string;
  version: number;
  window: { start: number; end: number };
  predictions: number;
  /** Present when drift could be computed. */
  features?: FeatureDrift[];
  alerts?: number;
  /** Present when it could not: why. */
  unavailable?: string;
}

export interface DriftMonitor {
  /** Runs until `signal` aborts. */
  run(signal: AbortSignal): Promise<void>;
  /** Windows closed and reports written so far. */
  stats(): { records: number; windows: number; alerts: number; skipped: number; late: number };
}

export function createDriftMonitor(options: {
  client: KafkaClient;
  config: MonitorConfig;
  registry: Registry;
  now?: () => number;
  onReport?: (report: DriftReport) => void;
}): DriftMonitor {
  const { client, config } = options;
  const now = options.now ?? Date.now;
  const metrics = createMonitoringMetrics(options.registry);
  const windows = new Map<string, Window>();
  const profiles = new Map<string, Promise<ReferenceProfile | string>>();
  const counters = { records: 0, windows: 0, alerts: 0, skipped: 0, late: 0 };
  /** Per `model/version`: the end of the latest window reported. A record before it is late. */
  const reportedUpTo = new Map<string, number>();
  /** Per partition of the prediction log: its stream time (the largest record timestamp read), ms. */
  const partitionTimes = new Map<number, number>();

  const profile = (model: string, version: number): Promise<ReferenceProfile | string> => {
    const key = `${model}/${version}`;
    let p = profiles.get(key);
    if (!p) {
      p = loadReferenceProfile(join(config.modelRepository, model, String(version)), `model "${model}" version ${version}`).catch(
        (error: unknown) => {
          // Not cached: the version may be synced into the repository later.
          profiles.delete(key);
          return InflowError.from(error).message;
        },
      );
      profiles.set(key, p);
    }
    return p;
  };

  function add(r: ConsumedRecord): void {
    let entry: { model?: unknown; version?: unknown; inputs?: unknown; outputs?: unknown };
    try {
      entry = JSON.parse(r.value?.toString('utf8') ?? 'null') as typeof entry;
    } catch {
      counters.skipped++;
      return;
    }
    if (
      !entry ||
      typeof entry.model !== 'string' ||
      !Number.isInteger(entry.version) ||
      typeof entry.inputs !== 'object' ||
      entry.inputs === null
    ) {
      // Not a prediction-log entry with inputs (includeInputs: false, or another writer).
      counters.skipped++;
      return;
    }
    const start = Math.floor(r.timestamp / config.windowMs) * config.windowMs;
    if (start + config.windowMs <= (reportedUpTo.get(`${entry.model}/${entry.version as number}`) ?? Number.NEGATIVE_INFINITY)) {
      // Its window was reported: reopening it would send a second, partial report for the same window.
      counters.late++;
      return;
    }
    const key = `${entry.model}/${entry.version as number}/${start}`;
    let w = windows.get(key);
    if (!w) {
      w = { model: entry.model, version: entry.version as number, start, inputs: new Map(), outputs: new Map(), count: 0 };
      windows.set(key, w);
    }
    w.count++;
    counters.records++;
    const push = (into: Map<string, FeatureValue[]>, tensors: unknown) => {
      if (!tensors || typeof tensors !== 'object') return;
      const row = new Map<string, FeatureValue>();
      flattenRow(tensors as Record<string, unknown>, row);
      for (const [name, value] of row) {
        const column = into.get(name) ?? [];
        if (column.length < MAX_WINDOW_VALUES) column.push(value);
        into.set(name, column);
      }
    };
    push(w.inputs, entry.inputs);
    push(w.outputs, entry.outputs);
  }

  /** Assigned partitions with records to read and none read yet → since when (wall-clock ms). */
  const unread = new Map<number, number>();
  let known = new Set<number>();

  /** Notes newly assigned partitions that have records to read (the group's position, or the log start, before the end offset). */
  async function noteAssignment(consumer: KafkaConsumer, assigned: ReadonlySet<number>): Promise<void> {
    const added = [...assigned].filter((p) => !known.has(p));
    for (const p of [...unread.keys()]) if (!assigned.has(p)) unread.delete(p);
    known = new Set(assigned);
    if (added.length === 0) return;
    const admin = client.admin();
    try {
      const [ends, starts, committed] = await Promise.all([
        admin.listOffsets(config.predictionLog, 'latest'),
        admin.listOffsets(config.predictionLog, 'earliest'),
        consumer.committed(added.map((partition) => ({ topic: config.predictionLog, partition }))),
      ]);
      for (const p of added) {
        if (partitionTimes.has(p)) continue;
        const c = committed.find((x) => x.partition === p)?.offset ?? -1n;
        const from = c >= 0n ? c : (starts.find((x) => x.partition === p)?.offset ?? 0n);
        if (from < (ends.find((x) => x.partition === p)?.offset ?? 0n)) unread.set(p, now());
      }
    } finally {
      await admin.close();
    }
  }

  /** The slowest partition's stream time over the partitions still assigned; -∞ before any record or while one is unread. */
  function watermarkOf(assigned: ReadonlySet<number>): number {
    for (const [p, since] of unread) {
      if (now() - since < UNREAD_WAIT_MS) return Number.NEGATIVE_INFINITY;
      unread.delete(p);
    }
    let min = Number.POSITIVE_INFINITY;
    for (const [partition, t] of partitionTimes) {
      if (!assigned.has(partition)) {
        // Revoked: its records no longer come here, so it must not hold the windows open.
        partitionTimes.delete(partition);
        continue;
      }
      min = Math.min(min, t);
    }
    return min === Number.POSITIVE_INFINITY ? Number.NEGATIVE_INFINITY : min;
  }

  async function close(w: Window): Promise<ProducerRecord[]> {
    const end = w.start + config.windowMs;
    const p = await profile(w.model, w.version);
    const base = {
      kind: 'drift-report' as const,
      model: w.model,
      version: w.version,
      window: { start: w.start, end },
      predictions: w.count,
    };
    const labels = { model: w.model, version: String(w.version) };
    if (typeof p === 'string') {
      metrics.driftUnavailable.set(labels, 1);
      const report: DriftReport = { ...base, unavailable: p };
      options.onReport?.(report);
      return [{ topic: config.monitoringTopic, key: Buffer.from(w.model), value: Buffer.from(JSON.stringify(report)) }];
    }
    metrics.driftUnavailable.set(labels, 0);
    const thresholds = config.models[w.model]?.drift ?? driftThresholdsSchema.parse({});
    const drift = detectDrift(p, { inputs: w.inputs, outputs: w.outputs }, thresholds);
    const alerts = driftAlerts(w.model, w.version, { start: w.start, end }, drift, now());
    for (const f of drift) {
      metrics.driftStatistic.set({ ...labels, feature: f.feature, statistic: 'psi' }, f.psi);
      if (f.ks) metrics.driftStatistic.set({ ...labels, feature: f.feature, statistic: 'ks' }, f.ks.statistic);
      if (f.chiSquare) metrics.driftStatistic.set({ ...labels, feature: f.feature, statistic: 'chi_square' }, f.chiSquare.statistic);
      if (f.jensenShannon !== undefined)
        metrics.driftStatistic.set({ ...labels, feature: f.feature, statistic: 'jensen_shannon' }, f.jensenShannon);
    }
    for (const a of alerts) metrics.driftAlerts.inc({ ...labels, statistic: a.statistic });
    counters.alerts += alerts.length;
    const report: DriftReport = { ...base, features: drift, alerts: alerts.length };
    options.onReport?.(report);
    return [
      { topic: config.monitoringTopic, key: Buffer.from(w.model), value: Buffer.from(JSON.stringify(report)) },
      ...alerts.map((a) => alertRecord(config.alertsTopic, a)),
    ];
  }

  return {
    stats: () => ({ ...counters }),
    async run(signal: AbortSignal): Promise<void> {
      const admin = client.admin();
      try {
        await admin.createTopics(
          [
            { topic: config.alertsTopic, partitions: 1 },
            { topic: config.monitoringTopic, partitions: 1 },
          ],
          { ifNotExists: true },
        );
      } finally {
        await admin.close();
      }
      const consumer: KafkaConsumer = client.consumer({ groupId: config.groupId, autoOffsetReset: 'earliest' });
      const producer = client.producer({ acks: 'all', idempotent: true });
      await consumer.subscribe([config.predictionLog]);
      /** Per partition: the offset after the last record read, and the earliest offset of a record in a still-open window. */
      const read = new Map<number, bigint>();
      const firstOpen = new Map<string, Map<number, bigint>>();
      try {
        while (!signal.aborted) {
          const records = await consumer.poll({ maxRecords: 1000, timeoutMs: 500, signal }).catch((error: unknown) => {
            if (signal.aborted) return [];
            throw error;
          });
          for (const r of records) {
            add(r);
            // Every record moves its partition's stream time, a skipped or late one too: it says how far the partition got.
            partitionTimes.set(r.partition, Math.max(partitionTimes.get(r.partition) ?? Number.NEGATIVE_INFINITY, r.timestamp));
            unread.delete(r.partition);
            read.set(r.partition, r.offset + 1n);
            // Remember where each open window's first record sits, so a commit never skips it.
            const start = Math.floor(r.timestamp / config.windowMs) * config.windowMs;
            const k = String(start);
            const m = firstOpen.get(k) ?? new Map<number, bigint>();
            if (!m.has(r.partition)) m.set(r.partition, r.offset);
            firstOpen.set(k, m);
          }
          const assigned = new Set(
            consumer
              .assignment()
              .filter((p) => p.topic === config.predictionLog)
              .map((p) => p.partition),
          );
          if (assigned.size !== known.size || [...assigned].some((p) => !known.has(p))) await noteAssignment(consumer, assigned);
          const watermark = watermarkOf(assigned);
          // In window order: a lagging partition can hold an earlier window open past later ones' records.
          const due = [...windows.entries()]
            .filter(([, w]) => w.start + config.windowMs + config.graceMs <= watermark)
            .sort(([, a], [, b]) => a.start - b.start);
          if (due.length === 0) continue;
          const out: ProducerRecord[] = [];
          for (const [key, w] of due) {
            out.push(...(await close(w)));
            windows.delete(key);
            const mv = `${w.model}/${w.version}`;
            reportedUpTo.set(mv, Math.max(reportedUpTo.get(mv) ?? Number.NEGATIVE_INFINITY, w.start + config.windowMs));
            counters.windows++;
          }
          if (out.length > 0) await producer.send(out);
          const openStarts = new Set([...windows.values()].map((w) => String(w.start)));
          for (const k of [...firstOpen.keys()]) if (!openStarts.has(k)) firstOpen.delete(k);
          const commits: TopicPartitionOffset[] = [...read].map(([partition, offset]) => {
            const earliestOpen = Math.min(...[...firstOpen.values()].map((m) => Number(m.get(partition) ?? offset)));
            return { topic: config.predictionLog, partition, offset: BigInt(Math.min(Number(offset), earliestOpen)) };
          });
          await consumer.commit(commits);
        }
      } finally {
        await producer.close();
        await consumer.close();
      }
    },
  };
}
