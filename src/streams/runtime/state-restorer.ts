/**
 * Restores store partitions from their changelogs (issue 17): a group-less restore consumer
 * (src/kafka/types.ts RestoreConsumer, read_committed: aborted writes never happened) is
 * assigned each changelog partition from the store's checkpoint, or from the beginning after a
 * wipe, and replays it into the engine in large engine transactions up to the end offset read
 * when the restore started. Progress goes to metrics (`inflow_stream_restore_*`) and one log
 * line per store partition.
 */
import { InflowError } from '../../errors.ts';
import type { KafkaClient, RestoreConsumer, RestoreConsumerOptions } from '../../kafka/types.ts';
import { partitionKey } from '../../kafka/types.ts';
import type { Logger } from '../../observability/logger.ts';
import type { StoreEngine, StoreWrite } from '../state/store-engine.ts';
import type { StreamsMetrics } from './streams-metrics.ts';

/** One store partition to restore. */
export interface RestoreTarget {
  readonly store: string;
  readonly engine: StoreEngine;
  readonly topic: string;
  readonly partition: number;
  /** First changelog offset to replay (a checkpoint), 0 for all. */
  readonly from: bigint;
}

export interface RestoreOptions {
  readonly client: KafkaClient;
  readonly metrics: StreamsMetrics;
  readonly labels: { readonly pipeline: string };
  readonly log: Logger;
  readonly signal: AbortSignal;
  /**
   * Fetch and buffer sizes of the restore consumer (defaults: 1 MiB fetches, 16 MiB decoded):
   * with {@link RESTORE_BATCH}, what bounds a restore's memory.
   */
  readonly consumer?: Pick<RestoreConsumerOptions, 'maxFetchBytes' | 'maxBufferBytes'>;
}

/** Records per poll of the restore consumer (and at most per engine transaction). */
export const RESTORE_BATCH = 10_000;

/** Replays every target's changelog partition into its engine. */
export async function restoreStores(targets: readonly RestoreTarget[], o: RestoreOptions): Promise<void> {
  if (targets.length === 0) return;
  const consumer: RestoreConsumer = o.client.restoreConsumer({ ...o.consumer, isolationLevel: 'read_committed' });
  const started = Date.now();
  try {
    const byPartition = new Map(targets.map((t) => [partitionKey(t.topic, t.partition), t]));
    const ends = new Map<string, bigint>();
    for (const e of await consumer.endOffsets(targets.map((t) => ({ topic: t.topic, partition: t.partition })))) {
      ends.set(partitionKey(e.topic, e.partition), e.offset);
    }
    const behind = targets.filter((t) => t.from < (ends.get(partitionKey(t.topic, t.partition)) ?? 0n));
    const counts = new Map<string, number>();
    consumer.assign(behind.map((t) => ({ topic: t.topic, partition: t.partition, offset: t.from })));
    o.metrics.restoringPartitions.inc(o.labels, behind.length);
    const remaining = (t: RestoreTarget): bigint => {
      const end = ends.get(partitionKey(t.topic, t.partition)) ?? 0n;
      const at = consumer.position(t);
      return end > at ? end - at : 0n;
    };
    const active = new Set(behind);
    try {
      while (active.size > 0) {
        if (o.signal.aborted) throw new InflowError('CANCELLED', 'restore cancelled (the partition was revoked or the runner stopped)');
        const records = await consumer.poll({ maxRecords: RESTORE_BATCH, timeoutMs: 500, signal: o.signal });
        const writes = new Map<RestoreTarget, StoreWrite[]>();
        for (const r of records) {
          const target = byPartition.get(partitionKey(r.topic, r.partition));
          if (!target || r.key === null) continue;
          let list = writes.get(target);
          if (!list) writes.set(target, (list = []));
          list.push([r.key, r.value]);
        }
        for (const [target, list] of writes) {
          target.engine.write(list);
          counts.set(
            partitionKey(target.topic, target.partition),
            (counts.get(partitionKey(target.topic, target.partition)) ?? 0) + list.length,
          );
          o.metrics.restoredRecords.inc({ ...o.labels, store: target.store }, list.length);
        }
        for (const t of [...active]) {
          const left = remaining(t);
          o.metrics.restoreRemaining.set({ ...o.labels, store: t.store, partition: String(t.partition) }, Number(left));
          if (left === 0n) {
            active.delete(t);
            o.metrics.restoringPartitions.dec(o.labels);
          }
        }
      }
    } finally {
      // Cancelled restores stop counting as active.
      if (active.size > 0) o.metrics.restoringPartitions.dec(o.labels, active.size);
    }
    for (const t of targets) {
      o.log.info(
        {
          store: t.store,
          changelog: partitionKey(t.topic, t.partition),
          from: String(t.from),
          to: String(ends.get(partitionKey(t.topic, t.partition)) ?? 0n),
          records: counts.get(partitionKey(t.topic, t.partition)) ?? 0,
          ms: Date.now() - started,
        },
        'state store restored',
      );
    }
  } finally {
    await consumer.close().catch(() => undefined);
  }
}
