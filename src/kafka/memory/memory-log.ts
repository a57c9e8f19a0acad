/**
 * The in-process log: topics, partitions, offsets, transactions and one process's consumer
 * groups, with Kafka's semantics where inflow relies on them:
 * - keys go to partitions like the Java client (./partitioner.ts);
 * - a transaction's records take offsets when sent, are visible to read_uncommitted readers
 *   at once and to read_committed readers only once committed (never, if aborted); a commit
 *   or abort appends a control marker to each partition it touched, like the broker;
 * - a new producer with the same transactional id fences the old one (KIP-98 epochs) and
 *   aborts its open transaction;
 * - committed group offsets only move on commit, or on a transaction's commit for offsets
 *   sent to it (sendOffsetsToTransaction); read_committed members read them stable (KIP-447:
 *   committed() waits while an open transaction holds offsets of the partition).
 * It is the embedded default (no cluster) and the base of the streams test driver.
 */
import { InflowError } from '../../errors.ts';
import { createRoundRobin, partitionForKey } from '../partitioner.ts';
import type { ConsumedRecord, KafkaHeader, NewTopic, ProducerRecord, RecordMetadata, TopicPartitionOffset } from '../types.ts';
import { partitionKey } from '../types.ts';
import { MemoryGroup } from './memory-group.ts';

/** State of a transaction as seen by readers. */
export interface TxnState {
  state: 'open' | 'committed' | 'aborted';
}

interface Entry {
  offset: bigint;
  key: Buffer | null;
  value: Buffer | null;
  headers: KafkaHeader[];
  timestamp: number;
  /** Set for transactional records. */
  txn?: TxnState;
  /** Control marker (commit/abort); never returned to readers. */
  control?: true;
}

/** What a deleted record's slot holds, so its data can be collected (offsets stay array indexes). */
const DELETED: Entry = Object.freeze({ offset: -1n, key: null, value: null, headers: [], timestamp: 0, control: true as const });

/** One partition: an append-only array whose index is the offset. */
export class PartitionLog {
  readonly entries: Entry[] = [];
  /** Open transactions that wrote here, with their first offset (bounds the LSO). */
  readonly openTxns = new Map<TxnState, bigint>();
  /** Log start offset: records below it were deleted (deleteRecords); their slots hold {@link DELETED}. */
  startOffset = 0n;

  get endOffset(): bigint {
    return BigInt(this.entries.length);
  }

  /** Last stable offset: the first offset of the oldest open transaction, else the end. */
  get lastStableOffset(): bigint {
    let lso = this.endOffset;
    for (const first of this.openTxns.values()) if (first < lso) lso = first;
    return lso;
  }
}

interface Topic {
  partitions: PartitionLog[];
  configs: Record<string, string>;
}

/** Options of {@link MemoryLog}. */
export interface MemoryLogOptions {
  /** Largest record (key + value + headers) accepted, bytes. Default 1 MiB like Kafka's max.message.bytes. */
  maxRecordBytes?: number;
  /** Clock in ms since the epoch (tests inject one). */
  now?: () => number;
}

/** The shared state behind every memory client of one process (or one test). */
export class MemoryLog {
  readonly #topics = new Map<string, Topic>();
  readonly #groups = new Map<string, MemoryGroup>();
  readonly #txnEpochs = new Map<string, number>();
  /** The open transaction of each transactional id. */
  readonly #openTxns = new Map<string, TxnState>();
  readonly #waiters = new Set<() => void>();
  readonly #roundRobin = createRoundRobin();
  readonly maxRecordBytes: number;
  readonly now: () => number;

  constructor(options: MemoryLogOptions = {}) {
    this.maxRecordBytes = options.maxRecordBytes ?? 1024 * 1024;
    this.now = options.now ?? Date.now;
  }

  createTopic(spec: NewTopic, ifNotExists: boolean): void {
    const partitions = spec.partitions ?? 1;
    if (!/^[a-zA-Z0-9._-]{1,249}$/.test(spec.topic)) {
      throw new InflowError('INVALID_ARGUMENT', `invalid topic name "${spec.topic}": expected 1-249 of [a-zA-Z0-9._-]`);
    }
    if (!Number.isInteger(partitions) || partitions < 1) {
      throw new InflowError('INVALID_ARGUMENT', `topic "${spec.topic}": partitions must be a positive integer, got ${partitions}`);
    }
    if (this.#topics.has(spec.topic)) {
      if (ifNotExists) return;
      throw new InflowError('ALREADY_EXISTS', `topic "${spec.topic}" already exists`);
    }
    this.#topics.set(spec.topic, {
      partitions: Array.from({ length: partitions }, () => new PartitionLog()),
      configs: { ...spec.configs },
    });
    this.#rebalanceGroupsOf(spec.topic);
  }

  deleteTopic(topic: string): void {
    if (!this.#topics.delete(topic)) throw this.topicNotFound(topic);
    this.#rebalanceGroupsOf(topic);
  }

  topicNames(): string[] {
    return [...this.#topics.keys()].sort();
  }

  hasTopic(topic: string): boolean {
    return this.#topics.has(topic);
  }

  partitionCount(topic: string): number {
    return this.#topic(topic).partitions.length;
  }

  partition(topic: string, partition: number): PartitionLog {
    const log = this.#topic(topic).partitions[partition];
    if (!log) {
      throw new InflowError('INVALID_ARGUMENT', `topic "${topic}" has no partition ${partition}`);
    }
    return log;
  }

  topicNotFound(topic: string): InflowError {
    return new InflowError(
      'KAFKA_TOPIC_NOT_FOUND',
      `topic "${topic}" does not exist: create it first (inflow does not auto-create topics)`,
      {
        details: { topic },
      },
    );
  }

  /** Appends records (validated first, so a bad batch appends nothing). */
  append(records: readonly ProducerRecord[], txn?: TxnState): RecordMetadata[] {
    const targets = records.map((record) => {
      const topic = this.#topics.get(record.topic);
      if (!topic) throw this.topicNotFound(record.topic);
      const size = recordSize(record);
      if (size > this.maxRecordBytes) {
        throw new InflowError(
          'KAFKA_RECORD_TOO_LARGE',
          `record for topic "${record.topic}" is ${size} bytes; the limit is ${this.maxRecordBytes} bytes (max.message.bytes)`,
          { details: { topic: record.topic, size, limit: this.maxRecordBytes } },
        );
      }
      const n = topic.partitions.length;
      if (record.partition !== undefined && (record.partition < 0 || record.partition >= n)) {
        throw new InflowError('INVALID_ARGUMENT', `topic "${record.topic}" has partitions 0..${n - 1}, not ${record.partition}`);
      }
      const partition = record.partition ?? (record.key ? partitionForKey(record.key, n) : this.#roundRobin(record.topic, n));
      return { record, partition, log: topic.partitions[partition] as PartitionLog };
    });
    const now = this.now();
    const result = targets.map(({ record, partition, log }) => {
      const offset = log.endOffset;
      const entry: Entry = {
        offset,
        key: record.key ?? null,
        value: record.value,
        headers: record.headers ? record.headers.map(([k, v]) => [k, v] as const) : [],
        timestamp: record.timestamp ?? now,
      };
      if (txn) {
        entry.txn = txn;
        if (!log.openTxns.has(txn)) log.openTxns.set(txn, offset);
      }
      log.entries.push(entry);
      return { topic: record.topic, partition, offset };
    });
    this.notify();
    return result;
  }

  /** Ends a transaction: marks its records and writes a control marker where it wrote. */
  endTransaction(txn: TxnState, commit: boolean): void {
    if (txn.state !== 'open') return;
    txn.state = commit ? 'committed' : 'aborted';
    for (const group of this.#groups.values()) group.releasePending(txn);
    for (const topic of this.#topics.values()) {
      for (const log of topic.partitions) {
        if (!log.openTxns.delete(txn)) continue;
        log.entries.push({ offset: log.endOffset, key: null, value: null, headers: [], timestamp: this.now(), control: true });
      }
    }
    this.notify();
  }

  /**
   * Reads up to `max` visible records of one partition from `from`; returns them and the next
   * position (past skipped control and aborted records).
   */
  read(topic: string, partition: number, from: bigint, max: number, readCommitted: boolean): { records: ConsumedRecord[]; next: bigint } {
    const log = this.partition(topic, partition);
    const end = readCommitted ? log.lastStableOffset : log.endOffset;
    const records: ConsumedRecord[] = [];
    let position = from < log.startOffset ? log.startOffset : from;
    while (position < end && records.length < max) {
      const entry = log.entries[Number(position)] as Entry;
      position += 1n;
      if (entry.control) continue;
      if (readCommitted && entry.txn?.state === 'aborted') continue;
      records.push({
        topic,
        partition,
        offset: entry.offset,
        key: entry.key,
        value: entry.value,
        headers: entry.headers.map(([k, v]) => [k, v]),
        timestamp: entry.timestamp,
      });
    }
    return { records, next: position };
  }

  /**
   * Deletes the records of a partition below `offset` (`-1n`: the end), like DeleteRecords:
   * the log start offset moves up (never down) and readers below it continue from it.
   * Returns the new log start offset.
   */
  deleteRecords(topic: string, partition: number, offset: bigint): bigint {
    const log = this.partition(topic, partition);
    const upTo = offset === -1n ? log.endOffset : offset;
    if (upTo < 0n || upTo > log.endOffset) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `cannot delete records of ${topic}:${partition} below offset ${offset}: expected -1 (the end) or 0..${log.endOffset} (the end offset)`,
      );
    }
    for (let i = Number(log.startOffset); i < Number(upTo); i++) log.entries[i] = DELETED;
    if (upTo > log.startOffset) log.startOffset = upTo;
    this.notify();
    return log.startOffset;
  }

  /** Registers a new producer for `transactionalId`; older producers with it are fenced. */
  initTransactionalId(transactionalId: string): number {
    const epoch = (this.#txnEpochs.get(transactionalId) ?? -1) + 1;
    this.#txnEpochs.set(transactionalId, epoch);
    // Like InitProducerId: the fenced instance's open transaction is aborted at once.
    const open = this.#openTxns.get(transactionalId);
    if (open) this.endTransaction(open, false);
    return epoch;
  }

  /** Registers the open transaction of `transactionalId` (aborted when a newer producer takes the id). */
  beginTransaction(transactionalId: string, txn: TxnState): void {
    this.#openTxns.set(transactionalId, txn);
  }

  assertNotFenced(transactionalId: string, epoch: number): void {
    if (this.#txnEpochs.get(transactionalId) !== epoch) {
      throw new InflowError(
        'KAFKA_FENCED',
        `producer with transactional id "${transactionalId}" was fenced by a newer instance with the same id`,
      );
    }
  }

  group(groupId: string): MemoryGroup {
    let group = this.#groups.get(groupId);
    if (!group) {
      group = new MemoryGroup(groupId, this);
      this.#groups.set(groupId, group);
    }
    return group;
  }

  /** Committed offsets of a group (only partitions it committed). */
  committedOffsets(groupId: string): TopicPartitionOffset[] {
    return this.#groups.get(groupId)?.committedOffsets() ?? [];
  }

  /** Resolves on the next append, commit, or group change (or after `timeoutMs`). */
  waitForChange(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.#waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  #topic(topic: string): Topic {
    const found = this.#topics.get(topic);
    if (!found) throw this.topicNotFound(topic);
    return found;
  }

  #rebalanceGroupsOf(topic: string): void {
    for (const group of this.#groups.values()) if (group.subscribes(topic)) group.rebalance();
  }
}

/** Size the broker checks against max.message.bytes (close enough for a record batch of one). */
function recordSize(record: ProducerRecord): number {
  let size = (record.key?.length ?? 0) + (record.value?.length ?? 0);
  for (const [k, v] of record.headers ?? []) size += Buffer.byteLength(k) + v.length;
  return size;
}

export { partitionKey };
