/**
 * What a `process` node's function gets besides the record (Kafka Streams' `ProcessorContext`):
 * its declared stores, typed, and where the record stands — its timestamp, the task's stream
 * time, its input partition and offset. The function returns the records to forward.
 */
import type { KafkaHeader } from '../../kafka/types.ts';
import type { KeyValueStore, StoreKey, StoreSerdes } from '../state/key-value-store.ts';
import type { KeyValue, StreamRecord } from './stream-record.ts';

/** The context of one call of a process function. */
export interface ProcessorContext {
  /**
   * The task's instance of store `name`, typed by the serdes the store was declared with
   * (default: ordered keys, JSON values). Only stores the node declared are reachable.
   */
  store<K = StoreKey, V = unknown>(name: string): KeyValueStore<K, V>;
  /** The record's timestamp, ms since the epoch. */
  readonly timestamp: number;
  /** The largest record timestamp the task has seen, ms since the epoch. */
  readonly streamTime: number;
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
  readonly headers: readonly KafkaHeader[];
  /** `<subtopology>_<partition>`. */
  readonly taskId: string;
}

/** A record a process function forwards; `timestamp`, when given, replaces the input's. */
export interface Forward<K, V> extends KeyValue<K, V> {
  readonly timestamp?: number;
}

/** A process function: returns the records to forward (none when it returns nothing). */
export type ProcessFn<K, V, K2, V2> = (record: StreamRecord<K, V>, context: ProcessorContext) => Iterable<Forward<K2, V2>> | undefined;

/** A store a node uses: the name of one declared elsewhere, or a declaration. */
export type StoreRef =
  | string
  | {
      readonly name: string;
      /** Default key-value; window and session stores are keyed as in `state/window-key.ts`. */
      readonly kind?: 'key-value' | 'window' | 'session';
      /** Whether a compacted changelog topic backs the store (default true). */
      readonly changelog?: boolean;
      /** Key and value serdes of the typed view (default: ordered keys, JSON values). */
      readonly serdes?: StoreSerdes<unknown, unknown>;
    };
