/**
 * A task: the unit of work and, later, of state — one per input partition of a sub-topology
 * (Kafka Streams' `StreamTask`, task id `<subtopology>_<partition>`). A sub-topology reading
 * several topics gets partition p of each in the same task (co-partitioning), one
 * {@link PartitionQueue} per topic: records are admitted in offset order, processed
 * concurrently, and released (produced, then committed) in offset order per input partition.
 * The task also keeps its stream time: the largest record timestamp it has processed.
 *
 * A task reading several partitions (a join of two topics, a co-partitioned table, merged
 * sources) processes their records in timestamp order, like Kafka Streams' `PartitionGroup`:
 * admitted records are held per partition, and {@link StreamTask.next} hands out the held head
 * with the smallest timestamp. While one of its partitions holds nothing, the task waits for it up
 * to `maxIdleMs` of wall-clock time (Kafka Streams' `max.task.idle.ms`, KIP-353) before it
 * processes the others' records, so a partition that lags a little does not make its records late;
 * past that deadline it goes on without it until the partition holds records again (KIP-695's
 * per-partition deadline). Kafka Streams also waits, with `max.task.idle.ms` 0, for a partition
 * its consumer knows to lag (fetch lag metadata); inflow's consumer does not expose per-partition
 * lag to the runner, so only the wall-clock rule applies. A task with one input partition
 * processes each record as it is admitted.
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

/** The options of a task that reads several partitions. */
export interface TaskOrdering {
  /** How long the task waits for a partition that holds nothing, ms; 0: never (Kafka Streams' max.task.idle.ms). */
  readonly maxIdleMs: number;
}

/** What {@link StreamTask.next} answers: a record to process now, or when to ask again. */
export type NextRecord =
  | { readonly queue: PartitionQueue; readonly entry: InFlightRecord; readonly wakeAt?: undefined }
  | { readonly queue?: undefined; readonly entry?: undefined; readonly wakeAt: number | undefined };

const NOTHING: NextRecord = { wakeAt: undefined };

export class StreamTask {
  readonly id: TaskId;
  /** Largest timestamp of a processed record, ms since the epoch; -1 before the first. */
  streamTime = -1;
  /** Set for a task that reads several partitions: its records are held and processed in timestamp order. */
  readonly ordering: TaskOrdering | undefined;
  readonly #queues = new Map<string, PartitionQueue>();

  constructor(id: TaskId, ordering?: TaskOrdering) {
    this.id = id;
    this.ordering = ordering;
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

  /**
   * Queues `record` in its partition; undefined for a record delivered twice (see
   * {@link PartitionQueue.add}). A task with one partition processes it now (stream time moves);
   * a task with several holds it until {@link next} hands it out.
   */
  admit(record: ConsumedRecord): { queue: PartitionQueue; entry: InFlightRecord } | undefined {
    const queue = this.queue(record.topic);
    const entry = queue.add(record);
    if (!entry) return undefined;
    if (this.ordering) queue.hold(entry);
    else if (record.timestamp > this.streamTime) this.streamTime = record.timestamp;
    return { queue, entry };
  }

  /**
   * The held record to process next (a task with several partitions): the head with the smallest
   * timestamp (ties: the partition first seen), once every partition holds a record or the
   * partitions that hold none were waited for `maxIdleMs` since they were first found empty.
   * Advances stream time. Otherwise `wakeAt`: when the wait ends (ms), undefined when nothing is held.
   */
  next(now: number): NextRecord {
    const ordering = this.ordering;
    if (!ordering) return NOTHING;
    let best: PartitionQueue | undefined;
    let bestTs = 0;
    for (const q of this.#queues.values()) {
      const head = q.heldHead();
      if (head === undefined) continue;
      q.idleDeadline = undefined;
      if (best === undefined || head.record.timestamp < bestTs) {
        best = q;
        bestTs = head.record.timestamp;
      }
    }
    if (best === undefined) return NOTHING;
    let waitUntil = Number.NEGATIVE_INFINITY;
    for (const q of this.#queues.values()) {
      if (q.heldCount > 0) continue;
      q.idleDeadline ??= now + ordering.maxIdleMs;
      if (q.idleDeadline > waitUntil) waitUntil = q.idleDeadline;
    }
    if (waitUntil > now) return { wakeAt: waitUntil };
    const entry = best.takeHeld() as InFlightRecord;
    if (bestTs > this.streamTime) this.streamTime = bestTs;
    return { queue: best, entry };
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
