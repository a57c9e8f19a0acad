/**
 * The narrow Kafka interfaces the rest of inflow is written against. Two implementations:
 * the real client (src/kafka/platformatic) and the in-process log (src/kafka/memory).
 * Nothing outside src/kafka imports a Kafka client library.
 *
 * Keys, values and header values are bytes; serdes (./serdes.ts) sit above this layer.
 * Offsets are int64 on the wire and bigint here.
 */
import type { ConnectionMonitor } from './connection.ts';

/** A header; Kafka allows the same key more than once, so headers are a list. */
export type KafkaHeader = readonly [key: string, value: Buffer];

/** A record to produce. */
export interface ProducerRecord {
  topic: string;
  key?: Buffer | null;
  value: Buffer | null;
  headers?: readonly KafkaHeader[];
  /** Explicit partition; otherwise murmur2(key) like Kafka's Java client, round-robin for null keys. */
  partition?: number;
  /** Milliseconds since the epoch; the producer's clock by default. */
  timestamp?: number;
}

/** Where a produced record landed. */
export interface RecordMetadata {
  topic: string;
  partition: number;
  offset: bigint;
}

/** A consumed record. */
export interface ConsumedRecord {
  topic: string;
  partition: number;
  offset: bigint;
  key: Buffer | null;
  value: Buffer | null;
  headers: KafkaHeader[];
  /** Milliseconds since the epoch. */
  timestamp: number;
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

/** A position: `offset` is the next offset to read (Kafka's committed-offset convention). */
export interface TopicPartitionOffset extends TopicPartition {
  offset: bigint;
}

/** Called around group rebalances (Kafka's ConsumerRebalanceListener). */
export interface RebalanceListener {
  /** Partitions newly assigned to this member. */
  onAssigned?(partitions: TopicPartition[]): void | Promise<void>;
  /** Partitions taken away; records of them no longer come from poll(). */
  onRevoked?(partitions: TopicPartition[]): void | Promise<void>;
}

export const IsolationLevel = {
  READ_UNCOMMITTED: 'read_uncommitted',
  READ_COMMITTED: 'read_committed',
} as const;
export type IsolationLevel = (typeof IsolationLevel)[keyof typeof IsolationLevel];

export const OffsetReset = { EARLIEST: 'earliest', LATEST: 'latest' } as const;
export type OffsetReset = (typeof OffsetReset)[keyof typeof OffsetReset];

export const Compression = { NONE: 'none', GZIP: 'gzip', SNAPPY: 'snappy', LZ4: 'lz4', ZSTD: 'zstd' } as const;
export type Compression = (typeof Compression)[keyof typeof Compression];

/** Options of {@link KafkaClient.consumer}. Times are milliseconds. */
export interface ConsumerOptions {
  groupId: string;
  /** Where to start when the group has no committed offset. Default `latest`, like Kafka. */
  autoOffsetReset?: OffsetReset;
  /** Default `read_uncommitted`, like Kafka; exactly-once readers use `read_committed`. */
  isolationLevel?: IsolationLevel;
  sessionTimeoutMs?: number;
  /**
   * Static membership (KIP-345, Kafka's `group.instance.id`): a stable id of this member, unique
   * in the group — e.g. the pod name of a StatefulSet. A member that comes back under the same
   * id within `sessionTimeoutMs` (a restart, a broker outage) gets its partitions back without a
   * rebalance; it does not leave the group on close, so its partitions wait for it until the
   * session times out. Two live members with one id fence each other: the later one wins and
   * the other fails with KAFKA_FENCED. Default: none (dynamic membership).
   */
  groupInstanceId?: string;
  heartbeatIntervalMs?: number;
  rebalanceTimeoutMs?: number;
  /** Records buffered ahead of poll() before fetching pauses (bounds memory). Default 1024. */
  maxBufferedRecords?: number;
  /**
   * Groups of subscribed topics that are co-partitioned: the group's assignor gives partition p
   * of every topic of a group to one member (src/kafka/task-assignor.ts). A streams task reads
   * partition p of each input topic of its sub-topology.
   */
  copartitioned?: readonly (readonly string[])[];
  /**
   * How long subscribe() waits out an unreachable broker before it fails with the last error
   * (KAFKA_UNREACHABLE), ms. Default: for ever, as the Java consumer does — a pipeline started
   * while its broker boots waits for it. Tools that should give up (a CLI check) set a bound.
   */
  subscribeTimeoutMs?: number;
  /**
   * This member's query address (`host:port`), advertised to the group in its subscription (Kafka
   * Streams' `application.server`): interactive queries find the instance that owns a key with
   * {@link KafkaAdmin.describeGroup}.
   */
  applicationServer?: string;
}

/** Options of {@link KafkaConsumer.poll}. */
export interface PollOptions {
  /** At most this many records. Default 500 (Kafka's max.poll.records). */
  maxRecords?: number;
  /** Wait at most this long for a first record, ms. Default 1000. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** A consumer-group member. Offsets are committed only explicitly (no auto-commit). */
export interface KafkaConsumer {
  readonly groupId: string;
  /** Joins the group for `topics`; resolves once the first assignment is known. */
  subscribe(topics: string[], listener?: RebalanceListener): Promise<void>;
  /** Returns buffered records in partition order (empty after `timeoutMs`). */
  poll(options?: PollOptions): Promise<ConsumedRecord[]>;
  /** Commits positions (next offset to read) for the group. */
  commit(offsets: TopicPartitionOffset[]): Promise<void>;
  /** The group's committed positions (`-1n` where none). */
  committed(partitions: TopicPartition[]): Promise<TopicPartitionOffset[]>;
  /** Stops fetching these partitions; the member stays in the group and keeps heart-beating. */
  pause(partitions: TopicPartition[]): void;
  resume(partitions: TopicPartition[]): void;
  paused(): TopicPartition[];
  /** Next poll() returns records of the partition from `offset` on (buffered ones are dropped). */
  seek(position: TopicPartitionOffset): void;
  /** Partitions currently assigned to this member. */
  assignment(): TopicPartition[];
  /** Leaves the group (its partitions are handed to the others at once) and closes. */
  close(): Promise<void>;
}

/** Options of {@link KafkaClient.restoreConsumer}. */
export interface RestoreConsumerOptions {
  /**
   * Default `read_committed`: a store's changelog is written in the transactions of its task's
   * outputs, and a restore must see exactly what was committed (aborted writes never happened).
   */
  isolationLevel?: IsolationLevel;
  /**
   * Most bytes one fetch asks the broker for, as stored (compressed), bytes; default 1 MiB
   * (Kafka's `max.partition.fetch.bytes`). A record batch larger than this still comes whole
   * (KIP-74), so a restore always progresses.
   */
  maxFetchBytes?: number;
  /**
   * Bound on what one fetch decodes into memory, bytes (estimated: each record's key, value and
   * headers plus a fixed per-record cost); default 16 MiB. Compressed changelogs decode to many
   * times their fetched size (1 M compressible 108-byte records fit in one 8 MiB fetch and took
   * 500 MiB of heap decoded), so the consumer sizes each fetch from what the previous one
   * decoded: memory is bounded by this setting, not by the length of the changelog.
   */
  maxBufferBytes?: number;
}

/**
 * A group-less reader of explicitly assigned partitions, like the Java client's
 * `assign()` + `seek()` (Kafka Streams' restore consumer): it joins no group, commits nothing,
 * and reads each partition from the offset it was given. A streams task uses it to replay a
 * store's changelog from a checkpoint (or the beginning) up to the end offset read at start.
 */
export interface RestoreConsumer {
  /**
   * Reads exactly these partitions from these offsets on (the next offset to read), replacing
   * any earlier assignment; `[]` unassigns all. An offset below the partition's log start
   * (records deleted or compacted away) reads from the log start.
   */
  assign(positions: TopicPartitionOffset[]): void;
  assignment(): TopicPartition[];
  /** The next offset poll() reads of an assigned partition: past the last record returned, and past transaction markers and aborted records it skipped. */
  position(partition: TopicPartition): bigint;
  /** Records of the assigned partitions from their positions (empty after `timeoutMs`). */
  poll(options?: PollOptions): Promise<ConsumedRecord[]>;
  /**
   * End offsets: the last stable offset under read_committed (the first offset of the oldest
   * open transaction, else the high watermark), the high watermark under read_uncommitted.
   * Reading until `position(p) >= end` reads everything committed when the end was taken.
   */
  endOffsets(partitions: TopicPartition[]): Promise<TopicPartitionOffset[]>;
  /** The log start offset of each partition (it moves on deleteRecords and retention). */
  beginningOffsets(partitions: TopicPartition[]): Promise<TopicPartitionOffset[]>;
  close(): Promise<void>;
}

/** Options of {@link KafkaClient.producer}. */
export interface ProducerOptions {
  /** Idempotent producer (no duplicates from retries). Default true, like Kafka 3+. */
  idempotent?: boolean;
  /** Enables transactions; must be stable across restarts of the same logical producer. */
  transactionalId?: string;
  /**
   * transaction.timeout.ms: the coordinator aborts a transaction left open longer, e.g. by an
   * instance that died; read_committed readers and stable offset reads wait at most this long
   * for it. Default: the client's requestTimeoutMs. Also bounds this producer's requests.
   */
  transactionTimeoutMs?: number;
  /** `all` (-1, default), `leader` (1) or `none` (0). */
  acks?: 'all' | 'leader' | 'none';
  compression?: Compression;
}

/** A producer; `send` resolves when the broker acknowledged every record. */
export interface KafkaProducer {
  send(records: ProducerRecord[]): Promise<RecordMetadata[]>;
  /** Starts a transaction; only for producers with a `transactionalId`; one at a time. */
  beginTransaction(): Promise<KafkaTransaction>;
  close(): Promise<void>;
}

/** A producer transaction (KIP-98; offsets with KIP-447 generation fencing). */
export interface KafkaTransaction {
  send(records: ProducerRecord[]): Promise<RecordMetadata[]>;
  /** Commits `offsets` for `consumer`'s group as part of this transaction (sendOffsetsToTransaction). */
  sendOffsets(consumer: KafkaConsumer, offsets: TopicPartitionOffset[]): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** Options of {@link KafkaAdmin.createTopics}. */
export interface NewTopic {
  topic: string;
  partitions?: number;
  replicationFactor?: number;
  /** Topic configs, e.g. `{ 'cleanup.policy': 'compact' }`. */
  configs?: Record<string, string>;
}

export interface TopicDescription {
  topic: string;
  partitions: number;
}

/** Per-partition positions of a group, with lag = end offset − committed offset. */
export interface PartitionLag extends TopicPartition {
  committed: bigint;
  end: bigint;
  lag: bigint;
}

/** A consumer group's members as the coordinator last recorded them ({@link KafkaAdmin.describeGroup}). */
export interface GroupDescription {
  /** `Stable`, `PreparingRebalance`, `CompletingRebalance`, `Empty`, `Dead` (Kafka's group states). */
  readonly state: string;
  readonly members: readonly {
    readonly memberId: string;
    /** The member's advertised query address (ConsumerOptions.applicationServer), when it has one. */
    readonly applicationServer?: string;
    readonly assignment: readonly TopicPartition[];
  }[];
}

export interface KafkaAdmin {
  /** Creates topics; existing ones are left alone when `ifNotExists` (default true). */
  createTopics(topics: NewTopic[], options?: { ifNotExists?: boolean }): Promise<void>;
  deleteTopics(topics: string[]): Promise<void>;
  listTopics(): Promise<string[]>;
  describeTopics(topics: string[]): Promise<TopicDescription[]>;
  /** Earliest or latest (high watermark / last stable offset) offsets per partition. */
  listOffsets(topic: string, at: 'earliest' | 'latest'): Promise<TopicPartitionOffset[]>;
  groupOffsets(groupId: string, topics: string[]): Promise<TopicPartitionOffset[]>;
  groupLag(groupId: string, topics: string[]): Promise<PartitionLag[]>;
  /** The group's state, members, their advertised query addresses and assignments. */
  describeGroup(groupId: string): Promise<GroupDescription>;
  /**
   * Deletes every record below `offset` in each partition (Kafka's DeleteRecords: the log start
   * offset moves up; `-1n` means the high watermark). Resolves with each partition's new low
   * watermark. A streams runner trims its repartition topics with it once their records are
   * committed downstream.
   */
  deleteRecords(offsets: TopicPartitionOffset[]): Promise<TopicPartitionOffset[]>;
  close(): Promise<void>;
}

/** Factory for one cluster (or the in-process log). */
export interface KafkaClient {
  /** `memory` or `kafka`, for logs and metrics. */
  readonly kind: 'memory' | 'kafka';
  /** Whether the cluster is reachable, as this client last saw it; absent: always reachable (the in-process log). */
  readonly connection?: ConnectionMonitor;
  producer(options?: ProducerOptions): KafkaProducer;
  consumer(options: ConsumerOptions): KafkaConsumer;
  /** A group-less consumer of explicitly assigned partitions (restoring state stores from changelogs). */
  restoreConsumer(options?: RestoreConsumerOptions): RestoreConsumer;
  admin(): KafkaAdmin;
  /** Closes every producer, consumer and admin made by this client. */
  close(): Promise<void>;
}

/** `topic:partition`, the key of per-partition maps. */
export function partitionKey(topic: string, partition: number): string {
  return `${topic}:${partition}`;
}
