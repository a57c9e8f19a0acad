/** A group-less reader of assigned partitions on the in-process log (see ../types.ts RestoreConsumer). */
import { InflowError } from '../../errors.ts';
import type {
  ConsumedRecord,
  PollOptions,
  RestoreConsumer,
  RestoreConsumerOptions,
  TopicPartition,
  TopicPartitionOffset,
} from '../types.ts';
import { partitionKey } from '../types.ts';
import type { MemoryLog } from './memory-log.ts';

export class MemoryRestoreConsumer implements RestoreConsumer {
  readonly #log: MemoryLog;
  readonly #readCommitted: boolean;
  /** Assigned partitions in assignment order, with the next offset to read. */
  readonly #positions = new Map<string, TopicPartitionOffset>();
  #cursor = 0;
  #closed = false;

  constructor(log: MemoryLog, options: RestoreConsumerOptions = {}) {
    this.#log = log;
    this.#readCommitted = (options.isolationLevel ?? 'read_committed') === 'read_committed';
  }

  assign(positions: TopicPartitionOffset[]): void {
    this.#assertOpen();
    for (const p of positions) {
      this.#log.partition(p.topic, p.partition);
      if (p.offset < 0n)
        throw new InflowError(
          'INVALID_ARGUMENT',
          `cannot assign ${partitionKey(p.topic, p.partition)} at offset ${p.offset}: expected ≥ 0`,
        );
    }
    this.#positions.clear();
    for (const p of positions) this.#positions.set(partitionKey(p.topic, p.partition), { ...p });
    this.#cursor = 0;
  }

  assignment(): TopicPartition[] {
    return [...this.#positions.values()].map(({ topic, partition }) => ({ topic, partition }));
  }

  position(partition: TopicPartition): bigint {
    const found = this.#positions.get(partitionKey(partition.topic, partition.partition));
    if (!found) throw notAssigned(partition);
    const start = this.#log.partition(found.topic, found.partition).startOffset;
    return found.offset < start ? start : found.offset;
  }

  async poll(options: PollOptions = {}): Promise<ConsumedRecord[]> {
    this.#assertOpen();
    const max = options.maxRecords ?? 500;
    const deadline = this.#log.now() + (options.timeoutMs ?? 1000);
    for (;;) {
      const records = this.#readAvailable(max);
      const left = deadline - this.#log.now();
      if (records.length > 0 || left <= 0 || options.signal?.aborted || this.#closed) return records;
      await this.#log.waitForChange(left, options.signal);
    }
  }

  async endOffsets(partitions: TopicPartition[]): Promise<TopicPartitionOffset[]> {
    return partitions.map((p) => {
      const log = this.#log.partition(p.topic, p.partition);
      return { topic: p.topic, partition: p.partition, offset: this.#readCommitted ? log.lastStableOffset : log.endOffset };
    });
  }

  async beginningOffsets(partitions: TopicPartition[]): Promise<TopicPartitionOffset[]> {
    return partitions.map((p) => ({
      topic: p.topic,
      partition: p.partition,
      offset: this.#log.partition(p.topic, p.partition).startOffset,
    }));
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#positions.clear();
  }

  /** Reads round-robin over the assigned partitions so none starves. */
  #readAvailable(max: number): ConsumedRecord[] {
    const out: ConsumedRecord[] = [];
    const assigned = [...this.#positions.values()];
    const n = assigned.length;
    for (let i = 0; i < n && out.length < max; i++) {
      const p = assigned[(this.#cursor + i) % n] as TopicPartitionOffset;
      if (!this.#log.hasTopic(p.topic)) continue;
      const { records, next } = this.#log.read(p.topic, p.partition, p.offset, max - out.length, this.#readCommitted);
      p.offset = next;
      for (const r of records) out.push(r);
    }
    this.#cursor = n === 0 ? 0 : (this.#cursor + 1) % n;
    return out;
  }

  #assertOpen(): void {
    if (this.#closed) throw new InflowError('FAILED_PRECONDITION', 'the restore consumer is closed');
  }
}

function notAssigned(p: TopicPartition): InflowError {
  return new InflowError('FAILED_PRECONDITION', `${partitionKey(p.topic, p.partition)} is not assigned to this restore consumer`);
}
