/**
 * KafkaConsumer over @platformatic/kafka's MessagesStream. The stream pushes records; we keep
 * them in a bounded buffer that poll() drains (the stream is paused while the buffer is full,
 * and heartbeats go on). The library pauses whole streams only, so per-partition pause holds
 * a paused partition's records back in order until resume(); when held records would fill the
 * buffer while other partitions flow, they are dropped instead and the partition is fetched
 * again from its position on resume (one long-paused partition must not stall the others —
 * the cost is fetching its records twice). seek() opens a new stream at the
 * wanted positions before closing the old one (topics stay tracked, so no group rejoin).
 * Offsets are committed explicitly only (autocommit off).
 */
import type { Consumer, Message, MessagesStream } from '@platformatic/kafka';
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
import type { BaseClientOptions } from './connection-options.ts';
import { encodeUserData, GROUP_PROTOCOLS, taskPartitionAssigner } from './group-assignor.ts';
import { mapErrors } from './kafka-errors.ts';
import { ReadCommittedConsumer } from './read-committed-consumer.ts';

type RawStream = MessagesStream<Buffer, Buffer, Buffer, Buffer>;

function toRecord(m: Message): ConsumedRecord {
  return {
    topic: m.topic,
    partition: m.partition,
    offset: m.offset,
    key: m.key ?? null,
    value: m.value ?? null,
    headers: m.headerEntries.map(([k, v]) => [k.toString(), v ?? Buffer.alloc(0)] as const),
    timestamp: Number(m.timestamp),
  };
}

export class PlatformaticConsumer implements KafkaConsumer {
  readonly groupId: string;
  /** The library consumer (transactions need its group metadata). */
  readonly raw: Consumer;
  readonly #options: ConsumerOptions;
  readonly #maxBuffered: number;
  #topics: string[] = [];
  #listener: RebalanceListener = {};
  #stream: RawStream | undefined;
  #streamPaused = false;
  readonly #ready: ConsumedRecord[] = [];
  readonly #held = new Map<string, ConsumedRecord[]>();
  #heldCount = 0;
  readonly #paused = new Set<string>();
  /** Paused partitions whose fetched records were dropped to keep the others flowing: refetched on resume. */
  readonly #dropped = new Set<string>();
  /** Next offset to hand out per partition (last delivered + 1). */
  readonly #positions = new Map<string, bigint>();
  /**
   * Next offset expected from the stream per partition (last buffered + 1). After a rebalance
   * the library fetches every partition it still owns again from the committed offset; records
   * below this mark are those re-deliveries and are dropped (the partition was never revoked).
   */
  readonly #fetched = new Map<string, bigint>();
  /** The stream was opened at explicit offsets (after a seek): the library then fetches no partition assigned later. */
  #manual = false;
  #reopening: Promise<void> = Promise.resolve();
  /** Reopens asked for so far; a queued reopen that is not the latest does nothing. */
  #reopens = 0;
  #assigned = new Map<string, TopicPartition>();
  /** Generation of the library's current assignment (its SyncGroup completed: 'consumer:group:join'). */
  #assignedGeneration = -1;
  /** Generation of the assignment poll() last applied (what the caller has seen). */
  #seenGeneration = -1;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  #closed = false;

  constructor(base: BaseClientOptions, options: ConsumerOptions) {
    this.groupId = options.groupId;
    this.#options = options;
    this.#maxBuffered = options.maxBufferedRecords ?? 1024;
    this.raw = new ReadCommittedConsumer(base, {
      ...base,
      groupId: options.groupId,
      autocommit: false,
      sessionTimeout: options.sessionTimeoutMs ?? 10_000,
      heartbeatInterval: options.heartbeatIntervalMs ?? 1000,
      rebalanceTimeout: options.rebalanceTimeoutMs ?? 30_000,
      isolationLevel: options.isolationLevel === 'read_committed' ? 1 : 0,
      maxWaitTime: 500,
      highWaterMark: Math.max(16, Math.min(this.#maxBuffered, 1024)),
      // Task-aware, sticky, co-partitioning (./group-assignor.ts): each member tells the leader
      // what it owns and which topics are co-partitioned.
      protocols: GROUP_PROTOCOLS,
      protocolsMetadata: () => encodeUserData({ owned: [...this.#assigned.values()], copartitioned: options.copartitioned ?? [] }),
      partitionAssigner: taskPartitionAssigner,
    });
    // The library sets its generation at JoinGroup and its assignment at SyncGroup, then emits
    // this: only here do the two belong together.
    this.raw.on('consumer:group:join', () => {
      this.#assignedGeneration = this.raw.generationId;
    });
  }

  /** The group generation of the assignment poll() last applied (transactions send offsets with it, KIP-447). */
  get seenGeneration(): number {
    return this.#seenGeneration;
  }

  async subscribe(topics: string[], listener: RebalanceListener = {}): Promise<void> {
    this.#assertOpen();
    this.#topics = [...topics];
    this.#listener = listener;
    await mapErrors(`subscribing group "${this.groupId}" to ${topics.join(', ')}`, async () => {
      const metadata = await this.raw.metadata({ topics, autocreateTopics: false });
      for (const t of topics) if (!metadata.topics.has(t)) throw new InflowError('KAFKA_TOPIC_NOT_FOUND', `topic "${t}" does not exist`);
    });
    const stream = await mapErrors(`joining group "${this.groupId}"`, () =>
      this.raw.consume({
        topics: this.#topics,
        mode: 'committed',
        fallbackMode: this.#options.autoOffsetReset === 'earliest' ? 'earliest' : 'latest',
        autocommit: false,
      }),
    );
    this.#attach(stream);
    await this.#syncAssignment();
  }

  async poll(options: PollOptions = {}): Promise<ConsumedRecord[]> {
    this.#assertOpen();
    const max = options.maxRecords ?? 500;
    const deadline = Date.now() + (options.timeoutMs ?? 1000);
    for (;;) {
      if (this.#error) throw mapErrorOnce(this.#error, this.groupId);
      await this.#syncAssignment();
      const out = this.#ready.splice(0, max);
      for (const r of out) this.#positions.set(partitionKey(r.topic, r.partition), r.offset + 1n);
      this.#maybeResumeStream();
      const left = deadline - Date.now();
      if (out.length > 0 || left <= 0 || options.signal?.aborted || this.#closed) return out;
      const signal = options.signal;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, 250));
        function done(): void {
          clearTimeout(timer);
          // Off the caller's signal again: a listener left on a signal that never aborts keeps the
          // signal (Node holds AbortSignal.any() signals with listeners) and this closure forever —
          // the streams runner leaked ~9 signals+timers a second, +49 MB/h of heap in the soak.
          signal?.removeEventListener('abort', done);
          resolve();
        }
        this.#wake = done;
        signal?.addEventListener('abort', done, { once: true });
      });
      this.#wake = undefined;
    }
  }

  async commit(offsets: TopicPartitionOffset[]): Promise<void> {
    this.#assertOpen();
    await mapErrors(`committing offsets of group "${this.groupId}"`, () =>
      this.raw.commit({ offsets: offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset, leaderEpoch: -1 })) }),
    );
  }

  async committed(partitions: TopicPartition[]): Promise<TopicPartitionOffset[]> {
    const byTopic = new Map<string, number[]>();
    for (const p of partitions) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p.partition]);
    const result = await mapErrors(`reading committed offsets of group "${this.groupId}"`, () =>
      this.raw.listCommittedOffsets({ topics: [...byTopic].map(([topic, ps]) => ({ topic, partitions: ps })) }),
    );
    return partitions.map((p) => ({ ...p, offset: result.get(p.topic)?.[p.partition] ?? -1n }));
  }

  pause(partitions: TopicPartition[]): void {
    for (const p of partitions) {
      const key = partitionKey(p.topic, p.partition);
      if (this.#paused.has(key)) continue;
      this.#paused.add(key);
      // Records of the partition already buffered go back to its held queue, in order.
      const keep: ConsumedRecord[] = [];
      for (const r of this.#ready) {
        if (partitionKey(r.topic, r.partition) === key) this.#hold(key, r);
        else keep.push(r);
      }
      this.#ready.splice(0, this.#ready.length, ...keep);
    }
  }

  resume(partitions: TopicPartition[]): void {
    let refetch = false;
    for (const p of partitions) {
      const key = partitionKey(p.topic, p.partition);
      if (!this.#paused.delete(key)) continue;
      if (this.#dropped.delete(key)) refetch = true;
      const held = this.#held.get(key) ?? [];
      this.#held.delete(key);
      this.#heldCount -= held.length;
      this.#ready.push(...held);
    }
    // Fetch again from the positions (records not yet handed out are dropped and refetched too).
    if (refetch) this.#reopen('resuming a partition whose records were dropped while paused');
    this.#maybeResumeStream();
    this.#wake?.();
  }

  paused(): TopicPartition[] {
    return [...this.#assigned.values()].filter((p) => this.#paused.has(partitionKey(p.topic, p.partition)));
  }

  seek(position: TopicPartitionOffset): void {
    const key = partitionKey(position.topic, position.partition);
    if (!this.#assigned.has(key)) {
      throw new InflowError('FAILED_PRECONDITION', `cannot seek ${key}: the partition is not assigned to this consumer`);
    }
    this.#positions.set(key, position.offset);
    this.#reopen(key);
  }

  assignment(): TopicPartition[] {
    return [...this.#assigned.values()].map((p) => ({ ...p }));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake?.();
    const stream = this.#stream;
    this.#stream = undefined;
    if (stream) await stream.close().catch(() => undefined);
    await this.#reopening;
    await this.raw.close(true).catch(() => undefined);
  }

  #attach(stream: RawStream): void {
    this.#stream = stream;
    this.#streamPaused = false;
    stream.on('data', (message) => {
      if (this.#stream !== stream) return;
      const key = partitionKey(message.topic, message.partition);
      // A fetch that was in flight during a rebalance may still deliver a partition we lost.
      if (!this.#assigned.has(key) && !this.#libraryAssigns(message.topic, message.partition)) return;
      const expected = this.#fetched.get(key);
      if (expected !== undefined && message.offset < expected) return;
      this.#fetched.set(key, message.offset + 1n);
      const record = toRecord(message);
      if (!this.#paused.has(key)) this.#ready.push(record);
      else if (!this.#dropped.has(key)) this.#hold(key, record);
      if (this.#ready.length + this.#heldCount >= this.#maxBuffered) {
        // Held records must not stop the partitions that flow: drop them while any flows.
        if (this.#heldCount > 0 && this.#paused.size < this.#assigned.size) this.#dropHeld();
        if (this.#ready.length + this.#heldCount >= this.#maxBuffered && !this.#streamPaused) {
          this.#streamPaused = true;
          stream.pause();
        }
      }
      this.#wake?.();
    });
    stream.on('error', (error: Error) => {
      if (this.#stream === stream && !this.#closed) this.#error = error;
      this.#wake?.();
    });
  }

  #hold(key: string, record: ConsumedRecord): void {
    const queue = this.#held.get(key) ?? [];
    queue.push(record);
    this.#held.set(key, queue);
    this.#heldCount += 1;
  }

  /** Drops every held record; their partitions are refetched from their positions on resume. */
  #dropHeld(): void {
    for (const key of this.#held.keys()) this.#dropped.add(key);
    this.#held.clear();
    this.#heldCount = 0;
  }

  #maybeResumeStream(): void {
    if (this.#streamPaused && this.#stream && this.#ready.length + this.#heldCount < this.#maxBuffered / 2) {
      this.#streamPaused = false;
      this.#stream.resume();
    }
  }

  #libraryAssigns(topic: string, partition: number): boolean {
    return (this.raw.assignments ?? []).some((a) => a.topic === topic && a.partitions.includes(partition));
  }

  /** Diffs the library's assignment with ours: revoke (dropping buffered records), then assign. */
  async #syncAssignment(): Promise<void> {
    // Read together, synchronously: the assignment below is the one of this generation.
    const generation = this.#assignedGeneration;
    const next = new Map<string, TopicPartition>();
    for (const a of this.raw.assignments ?? [])
      for (const partition of a.partitions) next.set(partitionKey(a.topic, partition), { topic: a.topic, partition });
    const revoked = [...this.#assigned].filter(([k]) => !next.has(k)).map(([, p]) => p);
    const added = [...next].filter(([k]) => !this.#assigned.has(k)).map(([, p]) => p);
    if (revoked.length === 0 && added.length === 0) {
      this.#seenGeneration = generation;
      return;
    }
    this.#assigned = next;
    if (revoked.length > 0) {
      const gone = new Set(revoked.map((p) => partitionKey(p.topic, p.partition)));
      const keep = this.#ready.filter((r) => !gone.has(partitionKey(r.topic, r.partition)));
      this.#ready.splice(0, this.#ready.length, ...keep);
      for (const k of gone) {
        this.#heldCount -= this.#held.get(k)?.length ?? 0;
        this.#held.delete(k);
        this.#paused.delete(k);
        this.#dropped.delete(k);
        this.#positions.delete(k);
        this.#fetched.delete(k);
      }
      await this.#listener.onRevoked?.(revoked);
    }
    // Only now: offsets of the revoked partitions, sent before the listener dropped their work,
    // still go with the old generation and are refused.
    this.#seenGeneration = generation;
    if (added.length > 0) {
      // A stream opened at explicit offsets does not fetch partitions assigned later: reopen it
      // with the new ones at their committed offsets (the kept ones stay where they are).
      if (this.#manual) {
        this.#reopen('a rebalance');
        await this.#reopening;
      }
      await this.#listener.onAssigned?.(added);
    }
  }

  /**
   * Queues a reopen (one at a time; a failure surfaces at the next poll()). At once, the current
   * stream is detached and every buffered record dropped: nothing fetched before the seek or
   * rebalance can reach poll() any more; the new stream refetches from the positions.
   */
  #reopen(why: string): void {
    const old = this.#stream;
    this.#stream = undefined;
    this.#streamPaused = false;
    this.#ready.length = 0;
    this.#held.clear();
    this.#heldCount = 0;
    const generation = ++this.#reopens;
    this.#reopening = this.#reopening
      .then(() => this.#reopenAt(why, old, generation))
      .catch((error: unknown) => {
        this.#error = error as Error;
      });
  }

  /**
   * Opens a stream at the current positions (the seeked one included), then closes the old one.
   * Only the latest queued reopen opens one: seeking 8 partitions queues 8, and an earlier one
   * attached would deliver records that move the positions before the next one reads them,
   * which then fetched the still-buffered records a second time.
   */
  async #reopenAt(seekKey: string, old: RawStream | undefined, generation: number): Promise<void> {
    if (this.#closed || generation !== this.#reopens) {
      await old?.close().catch(() => undefined);
      return;
    }
    const committed = await this.committed([...this.#assigned.values()]);
    const offsets = committed.map((c) => {
      const key = partitionKey(c.topic, c.partition);
      return { topic: c.topic, partition: c.partition, offset: this.#positions.get(key) ?? c.offset };
    });
    const unknown = offsets.filter((o) => o.offset < 0n);
    if (unknown.length > 0) {
      const at = this.#options.autoOffsetReset === 'earliest' ? -2n : -1n;
      const listed = await this.raw.listOffsets({ topics: [...new Set(unknown.map((o) => o.topic))], timestamp: at });
      for (const o of unknown) o.offset = listed.get(o.topic)?.[o.partition] ?? 0n;
    }
    this.#fetched.clear();
    for (const o of offsets) this.#fetched.set(partitionKey(o.topic, o.partition), o.offset);
    const stream = await mapErrors(`seeking ${seekKey}`, () =>
      this.raw.consume({ topics: this.#topics, mode: 'manual', offsets, autocommit: false }),
    );
    this.#manual = true;
    if (this.#closed || generation !== this.#reopens) {
      await Promise.all([stream.close(), old?.close()]).catch(() => undefined);
      return;
    }
    this.#attach(stream);
    if (old) await old.close().catch(() => undefined);
  }

  #assertOpen(): void {
    if (this.#closed) throw new InflowError('FAILED_PRECONDITION', `consumer of group "${this.groupId}" is closed`);
  }
}

function mapErrorOnce(error: Error, groupId: string): InflowError {
  return error instanceof InflowError
    ? error
    : new InflowError('KAFKA_ERROR', `consumer of group "${groupId}" failed: ${error.message}`, { cause: error });
}
