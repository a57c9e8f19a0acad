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
 *
 * Broker outages: when the stream (or the library's group membership) fails for a reason that
 * retrying can fix, every partition is revoked (the listener hears it, as in a rebalance), the
 * library consumer is replaced by a fresh one, and the group is joined again with capped
 * exponential backoff for as long as the outage lasts (../connection.ts); poll() answers empty
 * meanwhile. The new member fetches from the committed offsets, so nothing committed is
 * skipped and nothing uncommitted is lost.
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
import {
  type BackoffOptions,
  backoffDelay,
  type ConnectionMonitor,
  createConnectionMonitor,
  isTransient,
  retryTransient,
  sleep,
} from '../connection.ts';
import type { BaseClientOptions } from './connection-options.ts';
import { encodeUserData, GROUP_PROTOCOLS, taskPartitionAssigner } from './group-assignor.ts';
import { mapErrors, toInflowError } from './kafka-errors.ts';
import { ReadCommittedConsumer } from './read-committed-consumer.ts';

type RawStream = MessagesStream<Buffer, Buffer, Buffer, Buffer>;

/**
 * Bytes one Fetch response may carry in all, and per partition (Kafka's `fetch.max.bytes` and
 * `max.partition.fetch.bytes`; the broker still returns a first record batch larger than either,
 * KIP-74, so nothing stalls). The library's default is 50 MiB for both, and its reader finds a
 * byte of a response by walking the response's socket chunks (~64 KiB each) from the first, for
 * every field of every record: the decode cost grows with the square of the response size.
 * Measured (bench/kafka/consume-compare.ts, 300 k records of 1 KiB on 8 partitions, the library
 * stream alone): 50 MiB responses took 3.3 s of CPU, 4 MiB / 512 KiB 1.9–2.0 s, with the chunk
 * walk (readVarInt) 30 % → 5 % of the profile. Per partition: the Java client's default; in all:
 * 4 MiB keeps the walk short whatever the partition count.
 */
export const FETCH_MAX_BYTES = 4 * 1024 * 1024;
export const PARTITION_FETCH_MAX_BYTES = 1024 * 1024;

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
  #raw: Consumer;
  readonly #base: BaseClientOptions;
  readonly #monitor: ConnectionMonitor;
  /** Aborted by close(): ends the retries of an outage. */
  readonly #closing = new AbortController();
  /** Set while the member rejoins after a transient failure: no partitions are assigned meanwhile. */
  #recovery: Promise<void> | undefined;
  readonly #options: ConsumerOptions;
  /** Reconnect backoff (the cap is `kafka.reconnectBackoffMaxMs`). */
  readonly #backoff: BackoffOptions;
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

  constructor(
    base: BaseClientOptions,
    options: ConsumerOptions,
    monitor: ConnectionMonitor = createConnectionMonitor(),
    backoff: BackoffOptions = {},
  ) {
    this.groupId = options.groupId;
    this.#backoff = backoff;
    this.#options = options;
    this.#base = base;
    this.#monitor = monitor;
    this.#maxBuffered = options.maxBufferedRecords ?? 1024;
    this.#raw = this.#newRaw();
    // Another part of the client (a producer, an offsets read) may see the outage first, while
    // this member's stream is paused and fetches nothing: the library then rejoins on its own
    // when the broker returns, and streams reopened around that rejoin were seen to deliver
    // nothing more. A lost connection anywhere in the client makes this member rejoin cleanly.
    this.#unwatch = monitor.onChange((change) => {
      if (change.state === 'disconnected' && change.error?.code === 'KAFKA_UNREACHABLE' && this.#stream) this.#failed(change.error);
    });
  }

  readonly #unwatch: () => void;

  /** The library consumer (transactions need its group metadata); a new one after an outage. */
  get raw(): Consumer {
    return this.#raw;
  }

  #newRaw(): Consumer {
    const raw: ReadCommittedConsumer = new ReadCommittedConsumer(
      this.#base,
      {
        ...this.#base,
        groupId: this.#options.groupId,
        autocommit: false,
        sessionTimeout: this.#options.sessionTimeoutMs ?? 10_000,
        ...(this.#options.groupInstanceId === undefined ? {} : { groupInstanceId: this.#options.groupInstanceId }),
        heartbeatInterval: this.#options.heartbeatIntervalMs ?? 1000,
        rebalanceTimeout: this.#options.rebalanceTimeoutMs ?? 30_000,
        isolationLevel: this.#options.isolationLevel === 'read_committed' ? 1 : 0,
        maxWaitTime: 500,
        maxBytes: FETCH_MAX_BYTES,
        maxBytesPerPartition: PARTITION_FETCH_MAX_BYTES,
        highWaterMark: Math.max(16, Math.min(this.#maxBuffered, 1024)),
        // Task-aware, sticky, co-partitioning (./group-assignor.ts): each member tells the leader
        // what it owns and which topics are co-partitioned.
        protocols: GROUP_PROTOCOLS,
        protocolsMetadata: () =>
          encodeUserData({
            owned: [...this.#assigned.values()],
            copartitioned: this.#options.copartitioned ?? [],
            ...(this.#options.applicationServer === undefined ? {} : { applicationServer: this.#options.applicationServer }),
          }),
        partitionAssigner: taskPartitionAssigner,
      },
      {
        // Another live member took this static member's group.instance.id (./static-membership.ts):
        // final, as in the Java client; poll() reports it (KAFKA_FENCED, naming the id).
        onFenced: (error) => {
          if (this.#raw === raw) this.#failed(error);
        },
      },
    );
    // The library sets its generation at JoinGroup and its assignment at SyncGroup, then emits
    // this: only here do the two belong together.
    raw.on('consumer:group:join', () => {
      if (this.#raw === raw) this.#assignedGeneration = raw.generationId;
    });
    // The library emits 'error' when a rejoin fails (e.g. the broker went away); unheard, Node
    // would throw it and end the process.
    raw.on('error', (error: Error) => {
      if (this.#raw === raw) this.#failed(error);
    });
    // A paused stream (full buffer, a caller busy elsewhere) fetches nothing and so sees no
    // outage; the heartbeats go on and do. Only a lost connection counts: a slow answer is not an outage.
    raw.on('consumer:heartbeat:error', (event: { error?: Error }) => {
      if (this.#raw !== raw || !this.#stream || !event.error) return;
      if (toInflowError(event.error, 'heartbeat').code === 'KAFKA_UNREACHABLE') this.#failed(event.error);
    });
    return raw;
  }

  /** The group generation of the assignment poll() last applied (transactions send offsets with it, KIP-447). */
  get seenGeneration(): number {
    return this.#seenGeneration;
  }

  async subscribe(topics: string[], listener: RebalanceListener = {}): Promise<void> {
    this.#assertOpen();
    this.#topics = [...topics];
    this.#listener = listener;
    // A broker still booting (or away) is waited for; a missing topic or a refused login is not.
    const stream = await retryTransient(() => this.#join(), {
      ...this.#backoff,
      monitor: this.#monitor,
      signal: this.#closing.signal,
      ...(this.#options.subscribeTimeoutMs === undefined ? {} : { maxWaitMs: this.#options.subscribeTimeoutMs }),
    });
    this.#attach(stream);
    await this.#syncAssignment();
  }

  /** One try at joining the group; a failed try leaves a fresh library consumer for the next. */
  async #join(): Promise<RawStream> {
    const raw = this.#raw;
    try {
      await mapErrors(`subscribing group "${this.groupId}" to ${this.#topics.join(', ')}`, async () => {
        const metadata = await raw.metadata({ topics: this.#topics, autocreateTopics: false, forceUpdate: true });
        for (const t of this.#topics) {
          const topic = metadata.topics.get(t);
          if (!topic) throw new InflowError('KAFKA_TOPIC_NOT_FOUND', `topic "${t}" does not exist`);
          // A broker that just started may list a topic before its partitions have leaders; the
          // group's assignor then skipped them and this member stayed with no partitions for good
          // (measured after a restart). Joining waits for every leader.
          const leaderless = topic.partitions.filter((p) => !p || p.leader < 0).length;
          if (leaderless > 0 || topic.partitions.length < topic.partitionsCount) {
            throw new InflowError('UNAVAILABLE', `topic "${t}" has partitions without a leader yet (the broker is starting)`);
          }
        }
      });
      return await mapErrors(`joining group "${this.groupId}"`, () =>
        raw.consume({
          topics: this.#topics,
          mode: 'committed',
          fallbackMode: this.#options.autoOffsetReset === 'earliest' ? 'earliest' : 'latest',
          autocommit: false,
        }),
      );
    } catch (error) {
      if (!this.#closed) {
        this.#raw = this.#newRaw();
        this.#retire(raw);
      }
      throw error;
    }
  }

  /**
   * A failure of the stream or of the group membership. One retrying can fix starts a recovery
   * (revoke everything, rejoin with backoff); any other is reported by the next poll().
   */
  #failed(error: Error): void {
    if (this.#closed) return;
    const instance = this.#options.groupInstanceId === undefined ? '' : ` (group instance id "${this.#options.groupInstanceId}")`;
    const e = toInflowError(error, `consumer of group "${this.groupId}"${instance}`);
    if (!isTransient(e)) {
      this.#error ??= e;
      this.#wake?.();
      return;
    }
    this.#monitor.failed(e);
    if (this.#recovery) return;
    // Seeks and rebalance reopens still queued would open streams on the replacement consumer
    // while it joins: they are void now (the rejoined member fetches from the committed offsets).
    this.#reopens++;
    const old = this.#stream;
    this.#stream = undefined;
    this.#streamPaused = false;
    void old?.close().catch(() => undefined);
    this.#manual = false;
    this.#recovery = this.#recover().finally(() => {
      this.#recovery = undefined;
      this.#wake?.();
    });
    this.#wake?.();
  }

  /**
   * Closes a replaced library consumer for good. The library's close() sends LeaveGroup first
   * and, when that fails (the broker is away), stays open — heartbeats, rejoins and all: such a
   * zombie rejoined when the broker returned, led the group with no topics and assigned nothing
   * to anyone (measured: both members Stable with empty assignments). So close is retried with
   * backoff until it goes through; its LeaveGroup then also ends the zombie's membership at once.
   * A static member (groupInstanceId) sends no LeaveGroup (./static-membership.ts): its close
   * goes through at the first try, broker or not, and its successor under the same instance id
   * takes the membership over.
   */
  #retire(raw: Consumer): void {
    void (async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          await raw.close(true);
          return;
        } catch {
          if (this.#closed && attempt > 3) return;
          await sleep(backoffDelay(attempt));
        }
      }
    })();
  }

  /** Replaces the library consumer and joins again, with backoff, until it works or close(). */
  async #recover(): Promise<void> {
    const old = this.#raw;
    this.#raw = this.#newRaw();
    this.#retire(old);
    for (let attempt = 0; !this.#closed; attempt++) {
      await sleep(backoffDelay(attempt, this.#backoff), this.#closing.signal);
      if (this.#closed) return;
      try {
        const stream = await this.#join();
        if (this.#closed) {
          await stream.close().catch(() => undefined);
          return;
        }
        this.#monitor.succeeded();
        this.#attach(stream);
        return;
      } catch (error) {
        const e = error as InflowError;
        if (!isTransient(e)) {
          this.#error ??= e;
          return;
        }
        this.#monitor.failed(e);
      }
    }
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
      this.#raw.commit({ offsets: offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset, leaderEpoch: -1 })) }),
    );
  }

  async committed(partitions: TopicPartition[]): Promise<TopicPartitionOffset[]> {
    const byTopic = new Map<string, number[]>();
    for (const p of partitions) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p.partition]);
    // A read: safe to repeat, so it waits out an outage (a rewind needs it to go on).
    let outage: InflowError | undefined;
    const result = await retryTransient(
      async () => {
        try {
          return await mapErrors(`reading committed offsets of group "${this.groupId}"`, () =>
            this.#raw.listCommittedOffsets({ topics: [...byTopic].map(([topic, ps]) => ({ topic, partitions: ps })) }),
          );
        } catch (error) {
          outage = error as InflowError;
          throw error;
        }
      },
      { ...this.#backoff, monitor: this.#monitor, signal: this.#closing.signal },
    );
    // This member was cut off from the cluster meanwhile, maybe with its stream paused (so the
    // stream saw nothing): its group membership and fetch state are not to be trusted. Rejoin.
    if (outage && isTransient(outage) && this.#stream) this.#failed(outage);
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
    // While rejoining after an outage every partition is being revoked; the rejoined member
    // starts from the committed offsets, which is where a rewind seeks to anyway.
    if (this.#recovery) return;
    this.#positions.set(key, position.offset);
    this.#reopen(key);
  }

  assignment(): TopicPartition[] {
    return [...this.#assigned.values()].map((p) => ({ ...p }));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unwatch();
    this.#closing.abort();
    this.#wake?.();
    const stream = this.#stream;
    this.#stream = undefined;
    if (stream) await stream.close().catch(() => undefined);
    await this.#reopening;
    await this.#recovery;
    await this.#raw.close(true).catch(() => undefined);
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
      if (this.#stream === stream) this.#failed(error);
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
    return (this.#raw.assignments ?? []).some((a) => a.topic === topic && a.partitions.includes(partition));
  }

  /** Diffs the library's assignment with ours: revoke (dropping buffered records), then assign. */
  async #syncAssignment(): Promise<void> {
    // Read together, synchronously: the assignment below is the one of this generation.
    const generation = this.#assignedGeneration;
    const next = new Map<string, TopicPartition>();
    // While rejoining after an outage nothing is assigned: the old member's partitions were revoked.
    const current = this.#recovery ? [] : (this.#raw.assignments ?? []);
    for (const a of current)
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
      .catch((error: unknown) => this.#failed(error as Error));
  }

  /**
   * Opens a stream at the current positions (the seeked one included), then closes the old one.
   * Only the latest queued reopen opens one: seeking 8 partitions queues 8, and an earlier one
   * attached would deliver records that move the positions before the next one reads them,
   * which then fetched the still-buffered records a second time.
   */
  async #reopenAt(seekKey: string, old: RawStream | undefined, generation: number): Promise<void> {
    if (this.#closed || generation !== this.#reopens || this.#recovery) {
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
      const listed = await this.#raw.listOffsets({ topics: [...new Set(unknown.map((o) => o.topic))], timestamp: at });
      for (const o of unknown) o.offset = listed.get(o.topic)?.[o.partition] ?? 0n;
    }
    this.#fetched.clear();
    for (const o of offsets) this.#fetched.set(partitionKey(o.topic, o.partition), o.offset);
    const stream = await mapErrors(`seeking ${seekKey}`, () =>
      this.#raw.consume({ topics: this.#topics, mode: 'manual', offsets, autocommit: false }),
    );
    this.#manual = true;
    if (this.#closed || generation !== this.#reopens || this.#recovery) {
      await Promise.all([stream.close(), old?.close()]).catch(() => undefined);
      return;
    }
    this.#attach(stream);
    // Not awaited: closing a stream whose connection died can hang, and every later seek and
    // rebalance waits for this reopen. The old stream is detached: its records are dropped.
    if (old) void old.close().catch(() => undefined);
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
