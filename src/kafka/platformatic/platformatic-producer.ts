/**
 * KafkaProducer over @platformatic/kafka. We choose partitions ourselves (the Java client's
 * murmur2 rule, round-robin for null keys) so offsets can be reported per record, and send
 * headers with one distinct key object per header so duplicate header names survive (the
 * library keeps headers in a Map).
 */
import { type Consumer, findErrorBy, Producer, type ProduceResult } from '@platformatic/kafka';
import { InflowError } from '../../errors.ts';
import { createRoundRobin, partitionForKey } from '../partitioner.ts';
import type {
  KafkaConsumer,
  KafkaProducer,
  KafkaTransaction,
  ProducerOptions,
  ProducerRecord,
  RecordMetadata,
  TopicPartitionOffset,
} from '../types.ts';
import { type BackoffOptions, type ConnectionMonitor, createConnectionMonitor, isTransient, retryTransient } from '../connection.ts';
import type { BaseClientOptions } from './connection-options.ts';
import { mapErrors } from './kafka-errors.ts';

/** A header name wrapped so that two headers with the same name are two Map keys. */
interface HeaderName {
  readonly name: string;
}

type RawProducer = Producer<Buffer, Buffer, HeaderName>;
type Send = (options: { messages: Array<Record<string, unknown>> }) => Promise<ProduceResult>;

const ACKS = { all: -1, leader: 1, none: 0 } as const;

/** Bytes of records per library call (below the broker's default 1 MiB message.max.bytes, with room for framing). */
const MAX_CALL_BYTES = 768 * 1024;

/** Payload bytes of a record (key, value, headers) plus the per-record framing, ~70 bytes at most. */
function recordBytes(r: ProducerRecord): number {
  let n = 70 + (r.key?.length ?? 0) + (r.value?.length ?? 0);
  for (const [k, v] of r.headers ?? []) n += k.length + v.length + 10;
  return n;
}

/** What the consumer adapter exposes to transactions (KIP-447 group metadata). */
export interface GroupMetadataSource {
  readonly raw: Consumer;
  /** The group generation of the assignment the caller last saw (poll() applied it). */
  readonly seenGeneration: number;
}

function isGroupMetadataSource(consumer: KafkaConsumer): consumer is KafkaConsumer & GroupMetadataSource {
  return 'raw' in consumer;
}

export class PlatformaticProducer implements KafkaProducer {
  #producer: RawProducer;
  readonly #transactional: boolean;
  readonly #roundRobin = createRoundRobin();
  readonly #base: BaseClientOptions;
  readonly #options: ProducerOptions;
  /** Reconnect backoff (the cap is `kafka.reconnectBackoffMaxMs`). */
  readonly #backoff: BackoffOptions;
  readonly #monitor: ConnectionMonitor;
  /** Aborted by close(): ends the retries of an outage. */
  readonly #closing = new AbortController();

  constructor(
    base: BaseClientOptions,
    options: ProducerOptions = {},
    monitor: ConnectionMonitor = createConnectionMonitor(),
    backoff: BackoffOptions = {},
  ) {
    this.#backoff = backoff;
    this.#transactional = options.transactionalId !== undefined;
    this.#base = base;
    this.#options = options;
    this.#monitor = monitor;
    this.#producer = this.#newRaw();
  }

  #newRaw(): RawProducer {
    const base = this.#base;
    const options = this.#options;
    return new Producer({
      ...base,
      // The library sends its request timeout as the transaction timeout in InitProducerId.
      ...(options.transactionTimeoutMs === undefined ? {} : { timeout: options.transactionTimeoutMs }),
      // The library turns retries <= 1 into unbounded retries for idempotent producers (an
      // unreachable broker then hangs every call forever); 2 is the least that stays bounded.
      // A transactional producer gets more: CONCURRENT_TRANSACTIONS lasts until the previous
      // transaction's markers are written, which took over 80 ms (4 tries) on a loaded broker —
      // and each failure costs the pipeline a rewind.
      retries: this.#transactional ? Math.max(10, base.retries) : Math.max(2, base.retries),
      // Right after a commit the coordinator answers the next AddPartitionsToTxn with
      // CONCURRENT_TRANSACTIONS for a few ms; the library waits its generic 1 s before retrying,
      // which made every transaction after the first take ~1 s (measured: 1.5 k vs 20 k msgs/s).
      // The Java client retries that error after 20 ms; we back off from 20 ms to 500 ms (~3 s in all).
      retryDelay: (_client, _operation, attempt, _retries, error) =>
        findErrorBy(error, 'apiId', 'CONCURRENT_TRANSACTIONS') ? Math.min(20 * 2 ** (attempt - 1), 500) : 1000,
      idempotent: options.idempotent ?? true,
      acks: ACKS[options.acks ?? 'all'],
      autocreateTopics: false,
      // InitProducerId must say "no producer yet" (-1/-1, KIP-360); the library's default 0/0
      // makes the broker answer PRODUCER_FENCED when a restarted instance takes over a
      // transactional id whose previous transaction is still open — exactly-once recovery.
      ...(options.transactionalId === undefined
        ? {}
        : { transactionalId: options.transactionalId, idempotent: true, producerId: -1n, producerEpoch: -1 }),
      ...(options.compression && options.compression !== 'none' ? { compression: options.compression } : {}),
      serializers: { headerKey: (h?: HeaderName) => (h === undefined ? undefined : Buffer.from(h.name)) },
    });
  }

  /** Reports the outcome of a request to the client's connection state. */
  async #observed<T>(work: Promise<T>): Promise<T> {
    try {
      const value = await work;
      this.#monitor.succeeded();
      return value;
    } catch (error) {
      if (error instanceof InflowError && isTransient(error)) this.#monitor.failed(error);
      throw error;
    }
  }

  async send(records: ProducerRecord[]): Promise<RecordMetadata[]> {
    if (this.#transactional) {
      throw new InflowError('FAILED_PRECONDITION', 'a transactional producer sends inside a transaction: call beginTransaction() first');
    }
    return this.#observed(this.sendWith((o) => this.#producer.send(o as never), records));
  }

  /** Sends through `send` (the producer, or an open transaction) and returns per-record metadata. */
  async sendWith(send: Send, records: ProducerRecord[]): Promise<RecordMetadata[]> {
    if (records.length === 0) return [];
    const topics = [...new Set(records.map((r) => r.topic))];
    const label = `producing to ${topics.join(', ')}`;
    const counts = await mapErrors(label, async () => {
      const metadata = await this.#producer.metadata({ topics });
      return new Map(topics.map((t) => [t, metadata.topics.get(t)?.partitionsCount ?? 0]));
    });
    const partitions = records.map((r) => {
      const n = counts.get(r.topic) ?? 0;
      if (r.partition !== undefined) {
        if (r.partition < 0 || r.partition >= n) {
          throw new InflowError('INVALID_ARGUMENT', `topic "${r.topic}" has partitions 0..${n - 1}, not ${r.partition}`);
        }
        return r.partition;
      }
      return r.key ? partitionForKey(r.key, n) : this.#roundRobin(r.topic, n);
    });
    const sizes = records.map(recordBytes);
    const messages = records.map((r, i) => ({
      topic: r.topic,
      partition: partitions[i],
      key: r.key ?? undefined,
      value: r.value ?? undefined,
      timestamp: r.timestamp === undefined ? undefined : BigInt(r.timestamp),
      headers: r.headers ? new Map(r.headers.map(([name, value]) => [{ name }, value] as const)) : undefined,
    }));
    const out: RecordMetadata[] = [];
    // The library puts a call's records for one partition in one batch, with no size bound:
    // many large records in one call exceed the broker's message.max.bytes (1 MiB by default)
    // and fail RECORD_TOO_LARGE. Calls of at most MAX_CALL_BYTES, one after the other (order
    // holds: each waits for the previous one's acknowledgement), keep every batch below it.
    for (let start = 0; start < messages.length; ) {
      let end = start;
      let bytes = 0;
      while (end < messages.length && (end === start || bytes + (sizes[end] as number) <= MAX_CALL_BYTES)) bytes += sizes[end++] as number;
      const part = messages.slice(start, end);
      const result = await mapErrors(label, () => send({ messages: part }));
      // The broker reports one base offset per partition; records of a partition are consecutive.
      const base = new Map((result.offsets ?? []).map((o) => [`${o.topic}:${o.partition}`, o.offset]));
      const seen = new Map<string, bigint>();
      for (let i = start; i < end; i++) {
        const r = records[i] as ProducerRecord;
        const partition = partitions[i] as number;
        const key = `${r.topic}:${partition}`;
        const index = seen.get(key) ?? 0n;
        seen.set(key, index + 1n);
        out.push({ topic: r.topic, partition, offset: (base.get(key) ?? -1n) + index });
      }
      start = end;
    }
    return out;
  }

  async beginTransaction(): Promise<KafkaTransaction> {
    if (!this.#transactional) {
      throw new InflowError('FAILED_PRECONDITION', 'beginTransaction() needs a producer created with a transactionalId');
    }
    // The first transaction registers the transactional id (InitProducerId), which also ends a
    // predecessor's open transaction: safe to repeat, so it waits out an outage (or a broker
    // still booting). A failed try leaves a fresh library producer: its state is not trusted.
    const txn = await retryTransient(
      async () => {
        const raw = this.#producer;
        try {
          return await mapErrors('beginning a transaction', () => raw.beginTransaction());
        } catch (error) {
          if (!this.#closing.signal.aborted) {
            this.#producer = this.#newRaw();
            await raw.close(true).catch(() => undefined);
          }
          throw error;
        }
      },
      { ...this.#backoff, monitor: this.#monitor, signal: this.#closing.signal },
    );
    return new PlatformaticTransaction(this, txn);
  }

  async close(): Promise<void> {
    this.#closing.abort();
    const txn = this.#producer.transaction;
    if (txn && !txn.completed) await txn.abort().catch(() => undefined);
    await this.#producer.close(true);
  }
}

type RawTransaction = Awaited<ReturnType<RawProducer['beginTransaction']>>;

class PlatformaticTransaction implements KafkaTransaction {
  readonly #producer: PlatformaticProducer;
  readonly #txn: RawTransaction;
  /**
   * Calls into the library's transaction run one at a time: concurrent sends to new partitions
   * share one deduplicated AddPartitionsToTxn and abort the transaction (TRANSACTION_ABORTABLE),
   * and concurrent addOffset calls silently commit only one partition (both measured).
   */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(producer: PlatformaticProducer, txn: RawTransaction) {
    this.#producer = producer;
    this.#txn = txn;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(fn, fn);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  send(records: ProducerRecord[]): Promise<RecordMetadata[]> {
    return this.#serial(() => this.#producer.sendWith((o) => this.#txn.send(o as never), records));
  }

  sendOffsets(consumer: KafkaConsumer, offsets: TopicPartitionOffset[]): Promise<void> {
    return this.#serial(() => this.#sendOffsets(consumer, offsets));
  }

  async #sendOffsets(consumer: KafkaConsumer, offsets: TopicPartitionOffset[]): Promise<void> {
    if (!isGroupMetadataSource(consumer)) {
      throw new InflowError('INVALID_ARGUMENT', 'sendOffsets() needs a consumer from the same Kafka client');
    }
    const raw = consumer.raw;
    // The library takes a new generation at JoinGroup, before poll() has shown the caller the
    // assignment that comes with it. Offsets sent with that generation for a partition another
    // member now owns were accepted by the broker (duplicates): send only with the generation
    // of the assignment the caller saw, and refuse when the group moved on since.
    const generation = consumer.seenGeneration;
    const assigned = new Set(consumer.assignment().map((p) => `${p.topic}:${p.partition}`));
    const lost = offsets.filter((o) => !assigned.has(`${o.topic}:${o.partition}`));
    if (raw.generationId !== generation || lost.length > 0) {
      throw new InflowError(
        'KAFKA_REBALANCE',
        `group "${raw.groupId}" rebalanced (generation ${generation} → ${raw.generationId}) since this member last saw its assignment${lost.length > 0 ? `, which lacks ${lost.map((o) => `${o.topic}/${o.partition}`).join(', ')}` : ''}; the transaction's offsets were not sent`,
      );
    }
    await mapErrors(`adding offsets of group "${raw.groupId}" to the transaction`, async () => {
      await this.#txn.addConsumer(raw);
      // The library commits `offset + 1` of a consumed message, with the member's current
      // generation (KIP-447 fencing); we hold positions, so pass position − 1.
      const consumerMetadata = {
        groupId: raw.groupId,
        memberId: raw.memberId,
        generationId: generation,
        coordinatorId: raw.coordinatorId,
      };
      for (const o of offsets) {
        await this.#txn.addOffset({
          topic: o.topic,
          partition: o.partition,
          offset: o.offset - 1n,
          metadata: { consumer: consumerMetadata },
        } as never);
      }
    });
  }

  commit(): Promise<void> {
    return this.#serial(() => mapErrors('committing a transaction', () => this.#txn.commit()));
  }

  abort(): Promise<void> {
    return this.#serial(async () => {
      if (this.#txn.completed) return;
      await mapErrors('aborting a transaction', () => this.#txn.abort());
    });
  }
}
