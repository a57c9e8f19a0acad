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
/** Bytes per partition per fetch: large, since a restore wants throughput (Kafka's default is 1 MiB). */
const PARTITION_MAX_BYTES = 8 * 1024 * 1024;

let instances = 0;

export class PlatformaticRestoreConsumer implements RestoreConsumer {
  readonly #raw: ReadCommittedConsumer;
  readonly #isolationLevel: 0 | 1;
  readonly #positions = new Map<string, TopicPartitionOffset>();
  /** Records fetched beyond a poll's maxRecords, handed out first by the next poll. */
  #pending: ConsumedRecord[] = [];
  #closed = false;

  constructor(base: BaseClientOptions, options: RestoreConsumerOptions = {}) {
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

  /** One Fetch per partition leader, in parallel; decoded records go to #pending in partition order. */
  async #fetchOnce(maxWaitMs: number): Promise<void> {
    const assigned = [...this.#positions.values()];
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
        partitionMaxBytes: PARTITION_MAX_BYTES,
      });
    }
    const responses = await Promise.all(
      [...byNode].map(async ([node, topics]) => {
        try {
          return await this.#raw.fetch({
            node,
            topics: [...topics.values()],
            maxWaitTime: maxWaitMs,
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
    for (const response of responses) if (response) this.#take(response, topicNames);
  }

  #take(response: FetchResponse, topicNames: Map<string, string>): void {
    for (const t of response.responses) {
      const topic = topicNames.get(t.topicId);
      if (topic === undefined) continue;
      for (const p of t.partitions) {
        const position = this.#positions.get(partitionKey(topic, p.partitionIndex));
        if (!position || !p.records) continue;
        for (const batch of p.records) {
          const last = batch.firstOffset + BigInt(batch.lastOffsetDelta);
          // Control batches (transaction markers) and emptied aborted batches move the position too.
          if ((batch.attributes & IS_CONTROL) === 0) {
            for (const r of batch.records) {
              const offset = batch.firstOffset + BigInt(r.offsetDelta);
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
