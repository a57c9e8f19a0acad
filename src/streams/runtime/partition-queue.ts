/**
 * In-order completion tracking for one input partition (Parallel Consumer style): records are
 * processed concurrently, but their outputs leave — and their offsets are committed — strictly
 * in offset order, so per-partition (and per-key) order holds with batching and concurrency.
 */
import type { ConsumedRecord, ProducerRecord, TopicPartition } from '../../kafka/types.ts';
import { Turn } from './turn.ts';

/** One consumed record on its way through the pipeline. */
export interface InFlightRecord {
  readonly record: ConsumedRecord;
  /** Set once processing finished: the records to produce (outputs, or one dead-letter record). */
  out: ProducerRecord[] | undefined;
  /** When the runner took it, ms since the epoch. */
  readonly at: number;
}

/** The in-flight records of one assigned input partition (a {@link StreamTask} holds one per input topic). */
export class PartitionQueue {
  readonly tp: TopicPartition;
  readonly #dropped = new AbortController();
  /** Offset after the last record whose outputs were acknowledged. */
  produced: bigint | undefined;
  /** Offset last committed by this runner. */
  committed: bigint | undefined;
  /**
   * The last turn taken in this partition by a predict's continuation: the next continuation
   * runs after it, so nodes after a predict run in offset order (record-processor.ts).
   */
  tail: Turn = Turn.FREE;
  readonly #queue: InFlightRecord[] = [];
  #head = 0;
  #last: bigint | undefined;
  /**
   * Records admitted but not yet processed (tasks that read several partitions process them in
   * timestamp order, stream-task.ts); a suffix of the in-flight queue, in offset order.
   */
  readonly #held: InFlightRecord[] = [];
  #heldHead = 0;
  /**
   * While this partition holds nothing and another of its task does: when the task stops waiting
   * for it, ms (Kafka Streams' idle-partition deadline, KIP-695); undefined while it holds records.
   */
  idleDeadline: number | undefined;

  constructor(tp: TopicPartition) {
    this.tp = tp;
  }

  /** False once the partition was revoked or rewound: late results are ignored. */
  get live(): boolean {
    return !this.#dropped.signal.aborted;
  }

  /** Aborted when the queue is dropped: its records' queued predictions never run. */
  get signal(): AbortSignal {
    return this.#dropped.signal;
  }

  /** Drops the queue (revocation, rewind). */
  drop(): void {
    this.#dropped.abort();
  }

  /** Records not yet handed to the producer. */
  get size(): number {
    return this.#queue.length - this.#head;
  }

  /**
   * Queues a record; returns undefined for one at or below the last queued offset (delivered
   * twice), which must not produce its outputs twice nor move the committed offset back.
   */
  add(record: ConsumedRecord, now: number = Date.now()): InFlightRecord | undefined {
    if (this.#last !== undefined && record.offset <= this.#last) return undefined;
    this.#last = record.offset;
    const entry: InFlightRecord = { record, out: undefined, at: now };
    this.#queue.push(entry);
    return entry;
  }

  /** Keeps an admitted record from processing until its task picks it (timestamp order). */
  hold(entry: InFlightRecord): void {
    this.#held.push(entry);
  }

  /** The oldest held record (the partition's next to process), if any. */
  heldHead(): InFlightRecord | undefined {
    return this.#held[this.#heldHead];
  }

  /** Takes the oldest held record for processing. */
  takeHeld(): InFlightRecord | undefined {
    const e = this.#held[this.#heldHead];
    if (e === undefined) return undefined;
    this.#heldHead++;
    if (this.#heldHead === this.#held.length) {
      this.#held.length = 0;
      this.#heldHead = 0;
    } else if (this.#heldHead > 1024 && this.#heldHead * 2 > this.#held.length) {
      this.#held.splice(0, this.#heldHead);
      this.#heldHead = 0;
    }
    return e;
  }

  /** Records held, not yet processed. */
  get heldCount(): number {
    return this.#held.length - this.#heldHead;
  }

  /** The oldest record not yet handed to the producer. */
  head(): InFlightRecord | undefined {
    return this.#queue[this.#head];
  }

  /** Whether the oldest record is done (its outputs can go). */
  headReady(): boolean {
    return this.#queue[this.#head]?.out !== undefined;
  }

  /** Takes the finished records at the head, in offset order. */
  takeReady(into: InFlightRecord[]): number {
    let n = 0;
    for (;;) {
      const e = this.#queue[this.#head];
      if (!e || e.out === undefined) break;
      into.push(e);
      this.#head++;
      n++;
    }
    // Compact now and then so the array does not grow without bound.
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#head);
      this.#head = 0;
    }
    return n;
  }
}
