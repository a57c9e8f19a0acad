/**
 * The runner's producer and, in exactly-once mode, its transaction lifecycle (Kafka Streams'
 * `StreamsProducer`): one transaction at a time carries outputs, dead letters and the input
 * offsets; it is begun lazily, committed by the task manager, aborted on a rewind, and the
 * producer is replaced when its state can no longer be trusted.
 */
import type { Logger } from '../../observability/logger.ts';
import type {
  KafkaClient,
  KafkaConsumer,
  KafkaProducer,
  KafkaTransaction,
  ProducerOptions,
  ProducerRecord,
  RecordMetadata,
} from '../../kafka/types.ts';
import type { PartitionOffset } from './stream-task.ts';

export interface StreamsProducerOptions {
  readonly client: KafkaClient;
  /** Exactly-once: `<applicationId>-<instanceId>`; undefined = idempotent, at-least-once. */
  readonly transactionalId?: string;
  readonly transactionTimeoutMs?: number;
  readonly log: Logger;
}

export class StreamsProducer {
  readonly eos: boolean;
  readonly #client: KafkaClient;
  readonly #log: Logger;
  readonly #options: ProducerOptions;
  #producer: KafkaProducer | undefined;
  #txn: KafkaTransaction | undefined;
  /** Whether the open transaction holds anything (an empty one is neither committed nor aborted). */
  #txnUsed = false;

  constructor(options: StreamsProducerOptions) {
    this.#client = options.client;
    this.#log = options.log;
    this.eos = options.transactionalId !== undefined;
    this.#options =
      options.transactionalId !== undefined
        ? {
            transactionalId: options.transactionalId,
            ...(options.transactionTimeoutMs === undefined ? {} : { transactionTimeoutMs: options.transactionTimeoutMs }),
          }
        : { idempotent: true };
  }

  /** Whether start() ran. */
  get started(): boolean {
    return this.#producer !== undefined;
  }

  /** Whether a transaction is open (exactly-once). */
  get inTransaction(): boolean {
    return this.#txn !== undefined;
  }

  /** Whether the open transaction holds outputs or offsets. */
  get transactionUsed(): boolean {
    return this.#txnUsed;
  }

  /**
   * Creates the producer. In exactly-once mode this fences our predecessor before any offset is
   * read (Kafka Streams' initTransactions() first): registering the transactional id makes the
   * coordinator finish a killed instance's transaction — commit if it was prepared, abort
   * otherwise — so the committed offsets read next are stable (the client fetches them without
   * require_stable, KIP-447). The transaction stays open, empty, and carries the first outputs
   * (an empty one cannot be ended).
   */
  async start(): Promise<void> {
    this.#producer = this.#client.producer(this.#options);
    if (this.eos) this.#txn = await this.#producer.beginTransaction();
  }

  /** Sends records: in the open transaction (begun if needed) in exactly-once mode. Resolves with each record's partition and offset. */
  async send(records: ProducerRecord[]): Promise<RecordMetadata[]> {
    const producer = this.#producer as KafkaProducer;
    if (this.eos) {
      this.#txn ??= await producer.beginTransaction();
      this.#txnUsed = true;
      return this.#txn.send(records);
    }
    return producer.send(records);
  }

  /**
   * Exactly-once: adds `offsets` to the transaction and commits it; false when there was
   * nothing to commit. On a failure the outcome is unknown: the transaction stays recorded as
   * open, and the rewind that follows aborts it or starts a new producer to end it.
   */
  async commitTransaction(consumer: KafkaConsumer, offsets: readonly PartitionOffset[]): Promise<boolean> {
    if (offsets.length === 0 && !this.#txnUsed) return false;
    const producer = this.#producer as KafkaProducer;
    this.#txn ??= await producer.beginTransaction();
    this.#txnUsed = true;
    if (offsets.length > 0) await this.#txn.sendOffsets(consumer, [...offsets]);
    const t = this.#txn;
    this.#txn = undefined;
    this.#txnUsed = false;
    try {
      await t.commit();
    } catch (error) {
      this.#txn = t;
      this.#txnUsed = true;
      throw error;
    }
    return true;
  }

  /** Aborts the open transaction if it holds anything; a failed abort starts a new producer to end it. */
  async abortTransaction(): Promise<void> {
    if (!this.#txn || !this.#txnUsed) return;
    const t = this.#txn;
    this.#txn = undefined;
    this.#txnUsed = false;
    try {
      await t.abort();
    } catch (error) {
      this.#log.warn({ err: (error as Error).message }, 'aborting the transaction failed; starting a new producer to end it');
      await this.restart();
    }
  }

  /**
   * Replaces the producer. After a failed produce or commit the producer's state (idempotent
   * sequence numbers, the transaction's) is not to be trusted: the same producer could not
   * produce again after the broker refused a record (measured). A new one starts clean, and in
   * exactly-once mode its InitProducerId ends the open transaction (commit if it was prepared,
   * abort otherwise).
   */
  async restart(): Promise<void> {
    const old = this.#producer;
    this.#txn = undefined;
    this.#txnUsed = false;
    this.#producer = this.#client.producer(this.#options);
    if (this.eos) this.#txn = await this.#producer.beginTransaction();
    await old?.close().catch(() => undefined);
  }

  /** At shutdown: aborts the open (empty or leftover) transaction, ignoring failures. */
  async abandonTransaction(): Promise<void> {
    if (this.#txn) await this.#txn.abort().catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.#producer?.close().catch(() => undefined);
  }
}
