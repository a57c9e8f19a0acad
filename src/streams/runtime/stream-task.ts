/**
 * A task: the unit of work and, later, of state — one per input partition of a sub-topology
 * (Kafka Streams' `StreamTask`, task id `<subtopology>_<partition>`). A sub-topology reading
 * several topics gets partition p of each in the same task (co-partitioning), one
 * {@link PartitionQueue} per topic: records are admitted in offset order, processed
 * concurrently, and released (produced, then committed) in offset order per input partition.
 * The task also keeps its stream time: the largest record timestamp it has admitted.
 */
import type { ConsumedRecord, TopicPartition } from '../../kafka/types.ts';
import { type InFlightRecord, PartitionQueue } from './partition-queue.ts';

/** Which task a partition belongs to. */
export interface TaskId {
  /** Index of the sub-topology in the topology. */
  readonly subtopology: number;
  readonly partition: number;
}

/** `<subtopology>_<partition>`, like Kafka Streams' task ids. */
export function taskIdText(id: TaskId): string {
  return `${id.subtopology}_${id.partition}`;
}

/** An offset to commit for one input partition. */
export interface PartitionOffset extends TopicPartition {
  readonly offset: bigint;
}

export class StreamTask {
  readonly id: TaskId;
  /** Largest timestamp of an admitted record, ms since the epoch; -1 before the first. */
  streamTime = -1;
  readonly #queues = new Map<string, PartitionQueue>();

  constructor(id: TaskId) {
    this.id = id;
  }

  /** The queue of `topic`'s partition, created on first use. */
  queue(topic: string): PartitionQueue {
    let q = this.#queues.get(topic);
    if (!q) {
      q = new PartitionQueue({ topic, partition: this.id.partition });
      this.#queues.set(topic, q);
    }
    return q;
  }

  /** The queue of `topic`'s partition, if the task has one. */
  existingQueue(topic: string): PartitionQueue | undefined {
    return this.#queues.get(topic);
  }

  queues(): IterableIterator<PartitionQueue> {
    return this.#queues.values();
  }

  /** Whether the task holds no input partition any more. */
  get empty(): boolean {
    return this.#queues.size === 0;
  }

  /** Records admitted and not yet released. */
  get size(): number {
    let n = 0;
    for (const q of this.#queues.values()) n += q.size;
    return n;
  }

  /** Queues `record` in its partition; undefined for a record delivered twice (see {@link PartitionQueue.add}). */
  admit(record: ConsumedRecord): { queue: PartitionQueue; entry: InFlightRecord } | undefined {
    const queue = this.queue(record.topic);
    const entry = queue.add(record);
    if (!entry) return undefined;
    if (record.timestamp > this.streamTime) this.streamTime = record.timestamp;
    return { queue, entry };
  }

  /**
   * Takes the finished records at the head of every partition, in offset order per partition;
   * returns, per partition that released any, the offset after its last released record.
   */
  release(into: InFlightRecord[]): [PartitionQueue, bigint][] {
    const advanced: [PartitionQueue, bigint][] = [];
    for (const q of this.#queues.values()) {
      if (q.takeReady(into) > 0) advanced.push([q, (into[into.length - 1] as InFlightRecord).record.offset + 1n]);
    }
    return advanced;
  }

  /** Offsets produced but not yet committed, per live partition. */
  offsetsToCommit(into: PartitionOffset[]): void {
    for (const q of this.#queues.values()) {
      if (q.live && q.produced !== undefined && q.produced !== q.committed) into.push({ ...q.tp, offset: q.produced });
    }
  }

  /** The oldest record not yet released, over all partitions of the task. */
  oldest(): InFlightRecord | undefined {
    let oldest: InFlightRecord | undefined;
    for (const q of this.#queues.values()) {
      const head = q.head();
      if (head && (!oldest || head.at < oldest.at)) oldest = head;
    }
    return oldest;
  }

  /** Drops one partition (revoked): its late results are ignored. Returns the records dropped. */
  closePartition(topic: string): number {
    const q = this.#queues.get(topic);
    if (!q) return 0;
    q.drop();
    this.#queues.delete(topic);
    return q.size;
  }

  /** Drops every partition's in-flight work (rewind, revocation): late results are ignored. Returns the records dropped. */
  abort(): number {
    let n = 0;
    for (const q of this.#queues.values()) {
      q.drop();
      n += q.size;
    }
    this.#queues.clear();
    return n;
  }
}
