/**
 * Sends the outputs of released records (Kafka Streams' `RecordCollector`): outputs and dead
 * letters of one pump go to the streams producer as one send, in the order the tasks released
 * them, and the send is counted in the metrics once the broker acknowledged it.
 */
import type { ProducerRecord, RecordMetadata } from '../../kafka/types.ts';
import type { InFlightRecord } from './partition-queue.ts';
import type { StreamsMetrics } from './streams-metrics.ts';
import type { StreamsProducer } from './streams-producer.ts';

export interface RecordCollector {
  /**
   * Sends the outputs of `released` (each processed: `out` set) and `changelog`, the changelog
   * records of the commit that follows, in one send; resolves with where they went (each
   * record's partition and offset), rejects when the send failed.
   */
  send(released: readonly InFlightRecord[], changelog?: readonly ProducerRecord[]): Promise<readonly RecordMetadata[]>;
}

export function createRecordCollector(
  producer: StreamsProducer,
  metrics: StreamsMetrics,
  labels: { readonly pipeline: string },
): RecordCollector {
  return {
    async send(released, changelog = []) {
      const records = released.flatMap((e) => e.out as ProducerRecord[]);
      for (const r of changelog) records.push(r);
      const sent = records.length > 0 ? await producer.send(records) : [];
      const now = Date.now();
      for (const e of released) metrics.endToEnd.observe(labels, Math.max(0, now - e.record.timestamp) / 1000);
      for (const r of records) metrics.recordsOut.inc({ ...labels, topic: r.topic });
      return sent;
    },
  };
}
