/**
 * A table: the latest value per key, held in a state store (Kafka Streams' `KTable`). An
 * aggregation makes one; its updates flow on through {@link KTable.toStream}.
 */
import type { KStream, Named } from './streams-builder.ts';

export interface KTable<K, V> {
  /** The store holding the table (readable with the test driver's `store()`, or interactive queries). */
  readonly storeName: string;
  /** The table's changes as a stream: one record per update (or per closed window with `emit: 'final'`). */
  toStream(options?: Named): KStream<K, V>;
}
