/**
 * Bad records of global tables (rows that do not deserialize): logged, then handled by the
 * pipeline's error policy — dead-lettered with the reason, skipped, or the pipeline stops. Table
 * records are read outside any task, so their dead letters go out through a plain idempotent
 * producer, opened on the first one.
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

export interface TableDeadLetters {
  /** Handles one bad record of `table`. */
  onBadRecord(record: ConsumedRecord, table: string, error: InflowError): Promise<void>;
  close(): Promise<void>;
}

export function createTableDeadLetters(o: TableDeadLettersOptions): TableDeadLetters {
  let producer: ReturnType<KafkaClient['producer']> | undefined;
  return {
    async onBadRecord(record, table, error) {
      o.log.warn(
        { table, topic: record.topic, partition: record.partition, offset: String(record.offset), err: error.message },
        'bad table record',
      );
      if (o.policy === 'fail') return o.fail(error);
      if (o.policy !== 'dlq') return;
      const failure = new StageError(Stage.DESERIALIZE, `table:${table}`, error);
      producer ??= o.client.producer();
      await producer.send([deadLetterRecord(o.dlqTopic, record, failure, Date.now(), o.maxRecordBytes)]);
      o.metrics.deadLettered.inc({ ...o.labels, stage: Stage.DESERIALIZE, code: error.code });
    },
    async close() {
      await producer?.close().catch(() => undefined);
    },
  };
}
