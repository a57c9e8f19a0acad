/**
 * Bad records of global tables (rows that do not deserialize): logged, then handled by the
 * pipeline's error policy — dead-lettered with the reason, skipped, or the pipeline stops. Table
 * records are read outside any task, so their dead letters go out through a plain idempotent
 * producer, opened on the first one.
 *
 * Every instance reads every global table, but one writes its dead letters: the *writer*, the
 * instance that owns the designated task (partition 0 of the first sub-topology's first input
 * topic — one member of the group at a time, `setWriter` follows its assignment). The others
 * keep the bad records they read (bounded, {@link MAX_PENDING_BYTES}) and write them if they
 * become the writer, so a bad row read during a hand-over is not lost: a hand-over of the
 * designated task, or a restart of its instance (which reads the table again), writes the
 * held ones again — at least once, as any dead letter after a crash, but no longer once per
 * instance.
 */
import type { InflowError } from '../../errors.ts';
import type { ConsumedRecord, KafkaClient } from '../../kafka/types.ts';
import type { Logger } from '../../observability/logger.ts';
import { deadLetterRecord, type ErrorPolicy } from './dead-letter.ts';
import { Stage, StageError } from './stage-error.ts';
import type { StreamsMetrics } from './streams-metrics.ts';

export interface TableDeadLettersOptions {
  readonly client: KafkaClient;
  readonly policy: ErrorPolicy;
  readonly dlqTopic: string;
  /** Dead letters are cut to this, bytes. */
  readonly maxRecordBytes: number;
  readonly metrics: StreamsMetrics;
  readonly labels: { readonly pipeline: string };
  readonly log: Logger;
  /** The `fail` policy: stops the pipeline. */
  readonly fail: (error: InflowError) => void;
}

/** Bad table records a non-writer keeps for when it becomes the writer, key + value bytes at most; beyond, the oldest go. */
export const MAX_PENDING_BYTES = 8 * 1024 * 1024;

export interface TableDeadLetters {
  /** Handles one bad record of `table`. */
  onBadRecord(record: ConsumedRecord, table: string, error: InflowError): Promise<void>;
  /** Whether this instance writes the dead letters (it owns the designated task); becoming it writes those held. */
  setWriter(writer: boolean): Promise<void>;
  close(): Promise<void>;
}

interface BadRecord {
  readonly record: ConsumedRecord;
  readonly table: string;
  readonly error: InflowError;
}

const sizeOf = (b: BadRecord): number => (b.record.key?.length ?? 0) + (b.record.value?.length ?? 0);

export function createTableDeadLetters(o: TableDeadLettersOptions): TableDeadLetters {
  let producer: ReturnType<KafkaClient['producer']> | undefined;
  let writer = false;
  let pending: BadRecord[] = [];
  let pendingBytes = 0;
  /** Sends one at a time: a flush on becoming the writer and the table loop's records keep their order. */
  let chain: Promise<void> = Promise.resolve();

  const write = (bad: readonly BadRecord[]): Promise<void> => {
    const next = chain.then(async () => {
      if (bad.length === 0) return;
      producer ??= o.client.producer();
      const now = Date.now();
      await producer.send(
        bad.map((b) =>
          deadLetterRecord(o.dlqTopic, b.record, new StageError(Stage.DESERIALIZE, `table:${b.table}`, b.error), now, o.maxRecordBytes),
        ),
      );
      for (const b of bad) o.metrics.deadLettered.inc({ ...o.labels, stage: Stage.DESERIALIZE, code: b.error.code });
    });
    chain = next.catch(() => undefined);
    return next;
  };

  return {
    async onBadRecord(record, table, error) {
      o.log.warn(
        { table, topic: record.topic, partition: record.partition, offset: String(record.offset), err: error.message },
        'bad table record',
      );
      if (o.policy === 'fail') return o.fail(error);
      if (o.policy !== 'dlq') return;
      const bad = { record, table, error };
      if (writer) return write([bad]);
      pending.push(bad);
      pendingBytes += sizeOf(bad);
      while (pendingBytes > MAX_PENDING_BYTES && pending.length > 1) {
        const dropped = pending.shift() as BadRecord;
        pendingBytes -= sizeOf(dropped);
        o.log.warn(
          { table: dropped.table, partition: dropped.record.partition, offset: String(dropped.record.offset) },
          'bad table record no longer held for its dead letter (the designated instance writes it)',
        );
      }
    },
    async setWriter(next) {
      writer = next;
      if (!next) return;
      const held = pending;
      pending = [];
      pendingBytes = 0;
      await write(held);
    },
    async close() {
      await chain;
      await producer?.close().catch(() => undefined);
    },
  };
}
