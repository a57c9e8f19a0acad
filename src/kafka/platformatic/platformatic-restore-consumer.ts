/**
 * RestoreConsumer over @platformatic/kafka: Fetch requests for explicitly assigned partitions,
 * with no group. The library's MessagesStream always joins a group, so this drives the
 * consumer's fetch() itself — grouped per partition leader, read_committed filtered by
 * ./read-committed-consumer.ts like every inflow consumer (aborted changelog writes must never
 * reach a restored store). The consumer's groupId is required by the library but never used:
 * no JoinGroup, no OffsetCommit.
 */
import { type fetchV17, findErrorBy, IS_CONTROL } from '@platformatic/kafka';
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
import type { BaseClientOptions } from './connection-options.ts';
import { mapErrors, toInflowError } from './kafka-errors.ts';
import { ReadCommittedConsumer } from './read-committed-consumer.ts';

type FetchResponse = fetchV17.FetchResponse;

/** ListOffsets special timestamps (Kafka protocol): -2 earliest, -1 latest. */
const EARLIEST = -2n;
const LATEST = -1n;
/** Longest one Fetch waits at the broker for data, ms (the poll's own timeout bounds it too). */
const MAX_WAIT_MS = 500;
/** Default of {@link RestoreConsumerOptions.maxFetchBytes}: Kafka's `max.partition.fetch.bytes`. */
export const DEFAULT_RESTORE_FETCH_BYTES = 1024 * 1024;
/** Default of {@link RestoreConsumerOptions.maxBufferBytes}. */
export const DEFAULT_RESTORE_BUFFER_BYTES = 16 * 1024 * 1024;
/** Smallest fetch the sizing asks for, bytes (a batch larger than it still comes whole). */
const MIN_FETCH_BYTES = 16 * 1024;
/**
 * Heap one decoded record takes beyond its key, value and header bytes, bytes: the library's
 * record and ours, their Buffer views, the bigint offset (measured: 1 M records of an 8-byte key
 * and 100-byte value held ≈ 500 MiB of heap).
 */
const RECORD_OVERHEAD_BYTES = 512;
/**
 * Decoded bytes per fetched byte assumed before the first fetch says better: compressed
 * changelogs of similar values reach ~60 (the restore bench: 1 M records of 108 bytes in ~8 MiB).
 */
const INITIAL_EXPANSION = 64;

let instances = 0;

export class PlatformaticRestoreConsumer implements RestoreConsumer {
  readonly #raw: ReadCommittedConsumer;
  readonly #isolationLevel: 0 | 1;
  readonly #positions = new Map<string, TopicPartitionOffset>();
  /** Records fetched beyond a poll's maxRecords, handed out first by the next poll. */
  #pending: ConsumedRecord[] = [];
  #closed = false;
  readonly #maxFetchBytes: number;
  readonly #maxBufferBytes: number;
  /** Decoded bytes per fetched byte, from the latest fetches (only grows fast, shrinks by halves). */
  #expansion = INITIAL_EXPANSION;

  constructor(base: BaseClientOptions, options: RestoreConsumerOptions = {}) {
    this.#maxFetchBytes = positive(options.maxFetchBytes, DEFAULT_RESTORE_FETCH_BYTES, 'maxFetchBytes');
    this.#maxBufferBytes = positive(options.maxBufferBytes, DEFAULT_RESTORE_BUFFER_BYTES, 'maxBufferBytes');
    this.#isolationLevel = (options.isolationLevel ?? 'read_committed') === 'read_committed' ? 1 : 0;
    this.#raw = new ReadCommittedConsumer(base, {
      ...base,
      groupId: `inflow-restore-${process.pid}-${++instances}`,
      autocommit: false,
      isolationLevel: this.#isolationLevel,
      maxWaitTime: MAX_WAIT_MS,
    });
  }

  assign(positions: TopicPartitionOffset[]): void {
    this.#assertOpen();
    for (const p of positions) {
      if (p.offset < 0n)
        throw new InflowError(
          'INVALID_ARGUMENT',
          `cannot assign ${partitionKey(p.topic, p.partition)} at offset ${p.offset}: expected ≥ 0`,
        );
    }
    this.#positions.clear();
    this.#pending = [];
    for (const p of positions) this.#positions.set(partitionKey(p.topic, p.partition), { ...p });
    this.#raw.topics.clear();
    this.#raw.topics.trackAll(...new Set(positions.map((p) => p.topic)));
  }

  assignment(): TopicPartition[] {
    return [...this.#positions.values()].map(({ topic, partition }) => ({ topic, partition }));
  }

  position(partition: TopicPartition): bigint {
    const key = partitionKey(partition.topic, partition.partition);
    const found = this.#positions.get(key);
    if (!found) throw new InflowError('FAILED_PRECONDITION', `${key} is not assigned to this restore consumer`);
    // Records handed out later still count as unread.
    const next = this.#pending.find((r) => r.topic === partition.topic && r.partition === partition.partition);
    return next ? next.offset : found.offset;
  }

  async poll(options: PollOptions = {}): Promise<ConsumedRecord[]> {
    this.#assertOpen();
    const max = options.maxRecords ?? 500;
    const deadline = Date.now() + (options.timeoutMs ?? 1000);
    while (this.#pending.length === 0 && this.#positions.size > 0) {
      const left = deadline - Date.now();
      await this.#fetchOnce(Math.max(0, Math.min(left, MAX_WAIT_MS)));
      if (this.#pending.length > 0 || Date.now() >= deadline || options.signal?.aborted || this.#closed) break;
    }
    return this.#pending.splice(0, max);
  }

  async endOffsets(partitions: TopicPartition[]): Promise<TopicPartitionOffset[]> {
    return this.#listOffsets(partitions, LATEST);
  }

  async beginningOffsets(partitions: TopicPartition[]): Promise<TopicPartitionOffset[]> {
    return this.#listOffsets(partitions, EARLIEST);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#positions.clear();
    this.#pending = [];
    await this.#raw.close(true);
  }

  async #listOffsets(partitions: TopicPartition[], timestamp: bigint): Promise<TopicPartitionOffset[]> {
    if (partitions.length === 0) return [];
    const byTopic: Record<string, number[]> = {};
    for (const p of partitions) (byTopic[p.topic] ??= []).push(p.partition);
    const offsets = await mapErrors(`listing ${timestamp === EARLIEST ? 'beginning' : 'end'} offsets`, () =>
      this.#raw.listOffsets({ topics: Object.keys(byTopic), partitions: byTopic, timestamp, isolationLevel: this.#isolationLevel }),
    );
    return partitions.map((p) => {
      const offset = offsets.get(p.topic)?.[p.partition];
      if (offset === undefined)
        throw new InflowError('KAFKA_ERROR', `the broker listed no offset for ${partitionKey(p.topic, p.partition)}`);
      return { topic: p.topic, partition: p.partition, offset };
    });
  }

  /**
   * Bytes the next fetch asks for, all partitions of all leaders together: what decodes to at
   * most maxBufferBytes at the latest expansion seen, within [MIN_FETCH_BYTES, maxFetchBytes].
   */
  #fetchBytes(): number {
    return Math.max(MIN_FETCH_BYTES, Math.min(this.#maxFetchBytes, Math.floor(this.#maxBufferBytes / this.#expansion)));
  }

  /** One Fetch per partition leader, in parallel; decoded records go to #pending in partition order. */
  async #fetchOnce(maxWaitMs: number): Promise<void> {
    const assigned = [...this.#positions.values()];
    const fetchBytes = this.#fetchBytes();
    const metadata = await mapErrors('reading metadata for a restore', () =>
      this.#raw.metadata({ topics: [...new Set(assigned.map((p) => p.topic))] }),
    );
    const byNode = new Map<number, Map<string, fetchV17.FetchRequestTopic>>();
    const topicNames = new Map<string, string>();
    for (const p of assigned) {
      const topic = metadata.topics.get(p.topic);
      const partition = topic?.partitions[p.partition];
      if (!topic || !partition) throw new InflowError('KAFKA_TOPIC_NOT_FOUND', `${partitionKey(p.topic, p.partition)} does not exist`);
      topicNames.set(topic.id, p.topic);
      let node = byNode.get(partition.leader);
      if (!node) byNode.set(partition.leader, (node = new Map<string, fetchV17.FetchRequestTopic>()));
      let request = node.get(topic.id);
      if (!request) node.set(topic.id, (request = { topicId: topic.id, partitions: [] }));
      request.partitions.push({
        partition: p.partition,
        fetchOffset: p.offset,
        currentLeaderEpoch: partition.leaderEpoch,
        lastFetchedEpoch: -1,
        partitionMaxBytes: 0, // set below, once the number of leaders is known
      });
    }
    // Each leader's response decodes into memory at once: they share the fetch size.
    const perNode = Math.max(MIN_FETCH_BYTES, Math.floor(fetchBytes / Math.max(1, byNode.size)));
    for (const topics of byNode.values()) for (const t of topics.values()) for (const p of t.partitions) p.partitionMaxBytes = perNode;
    const responses = await Promise.all(
      [...byNode].map(async ([node, topics]) => {
        try {
          return await this.#raw.fetch({
            node,
            topics: [...topics.values()],
            maxWaitTime: maxWaitMs,
            maxBytes: perNode,
            isolationLevel: this.#isolationLevel,
          });
        } catch (error) {
          if (!findErrorBy(error as Error, 'apiId', 'OFFSET_OUT_OF_RANGE')) throw error;
          // Records below a position were deleted or compacted away since it was taken: go on
          // from the log start, as a consumer with auto.offset.reset=earliest would.
          await this.#skipToLogStart();
          return undefined;
        }
      }),
    ).catch((error: unknown) => {
      throw toInflowError(error, 'fetching changelog records for a restore');
    });
    let fetched = 0;
    let decoded = 0;
    for (const response of responses) {
      if (!response) continue;
      const taken = this.#take(response, topicNames);
      fetched += taken.fetched;
      decoded += taken.decoded;
    }
    // Size the next fetch from this one: a tiny fetch (a partition caught up) says little.
    if (fetched >= MIN_FETCH_BYTES / 4) this.#expansion = Math.max(decoded / fetched, this.#expansion / 2, 1);
  }

  /** Decodes a response into #pending; returns the stored bytes of its batches and the estimated heap its records take. */
  #take(response: FetchResponse, topicNames: Map<string, string>): { fetched: number; decoded: number } {
    let fetched = 0;
    let decoded = 0;
    for (const t of response.responses) {
      const topic = topicNames.get(t.topicId);
      if (topic === undefined) continue;
      for (const p of t.partitions) {
        const position = this.#positions.get(partitionKey(topic, p.partitionIndex));
        if (!position || !p.records) continue;
        for (const batch of p.records) {
          // The batch on the wire: offset (8) and length (4) fields, then `length` bytes.
          fetched += batch.length + 12;
          const last = batch.firstOffset + BigInt(batch.lastOffsetDelta);
          // Control batches (transaction markers) and emptied aborted batches move the position too.
          if ((batch.attributes & IS_CONTROL) === 0) {
            for (const r of batch.records) {
              const offset = batch.firstOffset + BigInt(r.offsetDelta);
              decoded += RECORD_OVERHEAD_BYTES + (r.key?.length ?? 0) + (r.value?.length ?? 0);
              if (offset < position.offset) continue; // a batch starting before the position
              this.#pending.push({
                topic,
                partition: p.partitionIndex,
                offset,
                key: r.key ?? null,
                value: r.value ?? null,
                headers: r.headers.map(([k, v]) => [k?.toString() ?? '', v ?? Buffer.alloc(0)] as const),
                timestamp: Number(batch.firstTimestamp + r.timestampDelta),
              });
            }
          }
          if (last + 1n > position.offset) position.offset = last + 1n;
        }
      }
    }
    return { fetched, decoded };
  }

  async #skipToLogStart(): Promise<void> {
    const starts = await this.beginningOffsets(this.assignment());
    for (const s of starts) {
      const position = this.#positions.get(partitionKey(s.topic, s.partition));
      if (position && position.offset < s.offset) position.offset = s.offset;
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new InflowError('FAILED_PRECONDITION', 'the restore consumer is closed');
  }
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1)
    throw new InflowError('INVALID_ARGUMENT', `restore consumer ${name} is ${value}: expected a positive whole number of bytes`);
  return value;
}
