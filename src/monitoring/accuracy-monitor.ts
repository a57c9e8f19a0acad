/**
 * The live-accuracy monitor: reads the prediction log and a labels topic in one consumer group
 * (`<groupId>-accuracy`), joins them by id (./label-join.ts), and when a window of prediction time
 * closes writes its report (key `<model>/<version>/<window start>`) to the monitoring topic, sets
 * the Prometheus gauges (`inflow_live_accuracy` is what a rollout's accuracy guard reads) and
 * dead-letters the labels it cannot use, with the reason.
 *
 * Exactly-once: reports, dead letters and the group's offsets go in one Kafka transaction. The
 * offsets committed stop at the earliest record still held (a prediction of an open window, its
 * label, a label waiting for its prediction), so a restart reads those again; the reports already
 * on the monitoring topic tell the restarted monitor which windows are done, so none is reported
 * twice. One instance per group: the state is not split by partition.
 */
import type { Registry } from 'prom-client';
import { InflowError } from '../errors.ts';
import type { ConsumedRecord, KafkaClient, ProducerRecord, TopicPartitionOffset } from '../kafka/types.ts';
import { deadLetterRecord } from '../streams/runtime/dead-letter.ts';
import { StageError } from '../streams/runtime/stage-error.ts';
import type { AccuracyConfig } from './accuracy-config.ts';
import { createAccuracyMetrics } from './accuracy-metrics.ts';
import { type AccuracyReport, type BadLabel, createLabelJoin, LabelOutcome } from './label-join.ts';
import { readTopicToEnd } from './rollout-state.ts';

export interface AccuracyMonitorOptions {
  client: KafkaClient;
  /** The prediction log topic. */
  predictionLog: string;
  /** The monitor's group; this monitor's is `<groupId>-accuracy`. */
  groupId: string;
  monitoringTopic: string;
  accuracy: AccuracyConfig;
  registry: Registry;
  /**
   * Reports, dead letters and offsets are committed together at most this often, ms (one
   * transaction per interval, not per window: catching up closes many windows). Default 1000.
   */
  commitIntervalMs?: number;
  now?: () => number;
  onReport?: (report: AccuracyReport) => void;
}

export interface AccuracyMonitor {
  /** Runs until `signal` aborts; rejects with NOT_FOUND when the labels topic or the prediction log does not exist. */
  run(signal: AbortSignal): Promise<void>;
  stats(): { predictions: number; labels: number; reports: number; skipped: number; late: number; outcomes: Record<LabelOutcome, number> };
}

/** Checks that `topics` exist, naming the setting of each missing one. */
export async function requireTopics(client: KafkaClient, topics: Record<string, string>): Promise<void> {
  const admin = client.admin();
  try {
    const existing = new Set(await admin.listTopics());
    for (const [setting, topic] of Object.entries(topics)) {
      if (!existing.has(topic)) {
        throw new InflowError(
          'NOT_FOUND',
          `${setting} "${topic}" does not exist on the cluster: create it, or name the topic that holds them`,
        );
      }
    }
  } finally {
    await admin.close();
  }
}

export function createAccuracyMonitor(options: AccuracyMonitorOptions): AccuracyMonitor {
  const { client, accuracy: config } = options;
  const now = options.now ?? Date.now;
  const commitIntervalMs = options.commitIntervalMs ?? 1000;
  const metrics = createAccuracyMetrics(options.registry);
  const join = createLabelJoin(config);
  const counts = { predictions: 0, labels: 0, reports: 0 };
  const groupId = `${options.groupId}-accuracy`;

  const deadLetter = (b: BadLabel): ProducerRecord =>
    deadLetterRecord(
      config.deadLetterTopic,
      b.record,
      new StageError('process', 'monitor:labels', new InflowError(b.code, b.reason)),
      now(),
    );

  return {
    stats: () => ({ ...counts, skipped: join.skipped(), late: join.late(), outcomes: join.outcomes() }),
    async run(signal) {
      await requireTopics(client, { 'labels topic (accuracy.labelsTopic)': config.labelsTopic, 'prediction log': options.predictionLog });
      const admin = client.admin();
      try {
        await admin.createTopics(
          [
            { topic: options.monitoringTopic, partitions: 1 },
            { topic: config.deadLetterTopic, partitions: 1 },
          ],
          { ifNotExists: true },
        );
      } finally {
        await admin.close();
      }
      // Windows already reported (by this group before a restart) are not reported again.
      await readTopicToEnd(client, options.monitoringTopic, (_key, value) => {
        try {
          const r = JSON.parse(value?.toString('utf8') ?? 'null') as Partial<AccuracyReport> | null;
          if (r?.kind === 'accuracy-report' && typeof r.model === 'string' && typeof r.version === 'number' && r.window) {
            join.reported(r.model, r.version, r.window.end);
          }
        } catch {
          // Another writer's record.
        }
      });
      const consumer = client.consumer({
        groupId,
        autoOffsetReset: 'earliest',
        isolationLevel: 'read_committed',
        maxBufferedRecords: 4096,
      });
      const producer = client.producer({ transactionalId: groupId, acks: 'all' });
      const read = new Map<string, TopicPartitionOffset>();
      let lastCommit = now();
      let before = join.outcomes();
      /** Written at the next commit. */
      const out: ProducerRecord[] = [];
      const closed: AccuracyReport[] = [];
      try {
        await consumer.subscribe([options.predictionLog, config.labelsTopic]);
        while (!signal.aborted) {
          const records: ConsumedRecord[] = await consumer.poll({ maxRecords: 1000, timeoutMs: 500, signal }).catch((error: unknown) => {
            if (signal.aborted) return [];
            throw error;
          });
          for (const r of records) {
            if (r.topic === config.labelsTopic) {
              counts.labels++;
              const bad = join.addLabel(r);
              if (bad) out.push(deadLetter(bad));
            } else {
              counts.predictions++;
              join.addPrediction(r);
            }
            read.set(`${r.topic}:${r.partition}`, { topic: r.topic, partition: r.partition, offset: r.offset + 1n });
          }
          const { reports, badLabels } = join.closeDue();
          for (const b of badLabels) out.push(deadLetter(b));
          closed.push(...reports);
          for (const report of reports) {
            out.push({
              topic: options.monitoringTopic,
              key: Buffer.from(`${report.model}/${report.version}/${report.window.start}`),
              value: Buffer.from(JSON.stringify(report)),
              headers: [['inflow-report-kind', Buffer.from(report.kind)]],
            });
          }
          if (read.size === 0 || now() - lastCommit < commitIntervalMs) continue;
          const held = join.heldOffsets();
          const offsets = [...read.values()].map((p) => {
            const h = held.get(`${p.topic}:${p.partition}`);
            return h !== undefined && h < p.offset ? { ...p, offset: h } : p;
          });
          const tx = await producer.beginTransaction();
          try {
            if (out.length > 0) await tx.send(out);
            await tx.sendOffsets(consumer, offsets);
            await tx.commit();
          } catch (error) {
            await tx.abort().catch(() => undefined);
            throw error;
          }
          lastCommit = now();
          out.length = 0;
          // Metrics after the commit: what they say is on the monitoring topic.
          for (const report of closed.splice(0)) {
            metrics.record(report);
            counts.reports++;
            options.onReport?.(report);
          }
          const after = join.outcomes();
          for (const o of Object.values(LabelOutcome)) metrics.labels(o, after[o] - before[o]);
          before = after;
        }
      } finally {
        await producer.close();
        await consumer.close();
      }
    },
  };
}
