/** A consumer-group member on the in-process log (see ./memory-log.ts for the semantics). */
import { randomUUID } from 'node:crypto';
import { InflowError } from '../../errors.ts';
import type {
  ConsumedRecord,
  ConsumerOptions,
  KafkaConsumer,
  PollOptions,
  RebalanceListener,
  TopicPartition,
  TopicPartitionOffset,
} from '../types.ts';
import { partitionKey } from '../types.ts';
import type { MemoryGroup } from './memory-group.ts';
import type { MemoryLog } from './memory-log.ts';

export class MemoryConsumer implements KafkaConsumer {
  readonly groupId: string;
  readonly memberId = `inflow-${randomUUID()}`;
  readonly #log: MemoryLog;
  readonly #group: MemoryGroup;
  readonly #options: ConsumerOptions;
  #topics: string[] = [];
  #listener: RebalanceListener = {};
  #generation = -1;
  #assigned: TopicPartition[] = [];
  readonly #positions = new Map<string, bigint>();
  readonly #paused = new Set<string>();
  #cursor = 0;
  #closed = false;

  constructor(log: MemoryLog, options: ConsumerOptions) {
    this.#log = log;
    this.#options = options;
    this.groupId = options.groupId;
    this.#group = log.group(options.groupId);
  }

  async subscribe(topics: string[], listener: RebalanceListener = {}): Promise<void> {
    this.#assertOpen();
    for (const topic of topics) if (!this.#log.hasTopic(topic)) throw this.#log.topicNotFound(topic);
    this.#topics = [...topics];
    this.#listener = listener;
    this.#group.join({
      memberId: this.memberId,
      topics: this.#topics,
      copartitioned: this.#options.copartitioned ?? [],
      ...(this.#options.applicationServer === undefined ? {} : { applicationServer: this.#options.applicationServer }),
    });
    await this.#syncAssignment();
  }

  async poll(options: PollOptions = {}): Promise<ConsumedRecord[]> {
    this.#assertOpen();
    const max = options.maxRecords ?? 500;
    const deadline = this.#log.now() + (options.timeoutMs ?? 1000);
    for (;;) {
      await this.#syncAssignment();
      const records = this.#readAvailable(max);
      const left = deadline - this.#log.now();
      if (records.length > 0 || left <= 0 || options.signal?.aborted || this.#closed) return records;
      await this.#log.waitForChange(left, options.signal);
    }
  }

  async commit(offsets: TopicPartitionOffset[]): Promise<void> {
    this.#assertOpen();
    this.#group.commit(offsets, this.memberId);
  }

  async committed(partitions: TopicPartition[]): Promise<TopicPartitionOffset[]> {
    // KIP-447 require_stable: a read_committed member waits for open transactions holding offsets.
    while (this.#options.isolationLevel === 'read_committed' && this.#group.isPending(partitions) && !this.#closed) {
      await this.#log.waitForChange(1000);
    }
    return partitions.map((p) => ({ ...p, offset: this.#group.committed(p.topic, p.partition) }));
  }

  pause(partitions: TopicPartition[]): void {
    for (const p of partitions) this.#paused.add(partitionKey(p.topic, p.partition));
  }

  resume(partitions: TopicPartition[]): void {
    for (const p of partitions) this.#paused.delete(partitionKey(p.topic, p.partition));
    this.#log.notify();
  }

  paused(): TopicPartition[] {
    return this.#assigned.filter((p) => this.#paused.has(partitionKey(p.topic, p.partition)));
  }

  seek(position: TopicPartitionOffset): void {
    const key = partitionKey(position.topic, position.partition);
    if (!this.#positions.has(key)) {
      throw new InflowError('FAILED_PRECONDITION', `cannot seek ${key}: the partition is not assigned to this consumer`);
    }
    this.#positions.set(key, position.offset);
  }

  assignment(): TopicPartition[] {
    return this.#assigned.map((p) => ({ ...p }));
  }

  /** Generation this member last synced to (used by transactions for fencing). */
  get generation(): number {
    return this.#generation;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#group.leave(this.memberId);
  }

  /** Applies a new group generation: revoke, then assign, like the Java consumer inside poll(). */
  async #syncAssignment(): Promise<void> {
    if (this.#generation === this.#group.generation) return;
    this.#generation = this.#group.generation;
    const next = this.#group.assignmentOf(this.memberId);
    const nextKeys = new Set(next.map((p) => partitionKey(p.topic, p.partition)));
    const oldKeys = new Set(this.#assigned.map((p) => partitionKey(p.topic, p.partition)));
    const revoked = this.#assigned.filter((p) => !nextKeys.has(partitionKey(p.topic, p.partition)));
    const added = next.filter((p) => !oldKeys.has(partitionKey(p.topic, p.partition)));
    for (const p of revoked) {
      this.#positions.delete(partitionKey(p.topic, p.partition));
      this.#paused.delete(partitionKey(p.topic, p.partition));
    }
    this.#assigned = next.map((p) => ({ ...p }));
    if (revoked.length > 0) await this.#listener.onRevoked?.(revoked);
    for (const p of added) {
      const committed = this.#group.committed(p.topic, p.partition);
      const start =
        committed >= 0n
          ? committed
          : this.#options.autoOffsetReset === 'earliest'
            ? this.#log.partition(p.topic, p.partition).startOffset
            : this.#log.partition(p.topic, p.partition).endOffset;
      this.#positions.set(partitionKey(p.topic, p.partition), start);
    }
    if (added.length > 0) await this.#listener.onAssigned?.(added);
  }

  /** Reads round-robin over assigned, unpaused partitions so none starves. */
  #readAvailable(max: number): ConsumedRecord[] {
    const out: ConsumedRecord[] = [];
    const n = this.#assigned.length;
    const readCommitted = this.#options.isolationLevel === 'read_committed';
    for (let i = 0; i < n && out.length < max; i++) {
      const p = this.#assigned[(this.#cursor + i) % n] as TopicPartition;
      const key = partitionKey(p.topic, p.partition);
      if (this.#paused.has(key) || !this.#log.hasTopic(p.topic)) continue;
      const from = this.#positions.get(key) ?? 0n;
      const { records, next } = this.#log.read(p.topic, p.partition, from, max - out.length, readCommitted);
      this.#positions.set(key, next);
      for (const r of records) out.push(r);
    }
    this.#cursor = n === 0 ? 0 : (this.#cursor + 1) % n;
    return out;
  }

  #assertOpen(): void {
    if (this.#closed) throw new InflowError('FAILED_PRECONDITION', `consumer of group "${this.groupId}" is closed`);
  }
}
