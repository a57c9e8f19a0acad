/** Producers and transactions on the in-process log (see ./memory-log.ts for the semantics). */
import { InflowError } from '../../errors.ts';
import type {
  KafkaConsumer,
  KafkaProducer,
  KafkaTransaction,
  ProducerOptions,
  ProducerRecord,
  RecordMetadata,
  TopicPartitionOffset,
} from '../types.ts';
import { MemoryConsumer } from './memory-consumer.ts';
import type { MemoryLog, TxnState } from './memory-log.ts';

export class MemoryProducer implements KafkaProducer {
  readonly #log: MemoryLog;
  readonly #transactionalId: string | undefined;
  readonly #epoch: number;
  #current: MemoryTransaction | undefined;
  #closed = false;

  constructor(log: MemoryLog, options: ProducerOptions = {}) {
    this.#log = log;
    this.#transactionalId = options.transactionalId;
    this.#epoch = options.transactionalId === undefined ? -1 : log.initTransactionalId(options.transactionalId);
  }

  async send(records: ProducerRecord[]): Promise<RecordMetadata[]> {
    this.#assertOpen();
    if (this.#transactionalId !== undefined) {
      throw new InflowError('FAILED_PRECONDITION', 'a transactional producer sends inside a transaction: call beginTransaction() first');
    }
    return this.#log.append(records);
  }

  async beginTransaction(): Promise<KafkaTransaction> {
    this.#assertOpen();
    if (this.#transactionalId === undefined) {
      throw new InflowError('FAILED_PRECONDITION', 'beginTransaction() needs a producer created with a transactionalId');
    }
    this.#log.assertNotFenced(this.#transactionalId, this.#epoch);
    if (this.#current?.open) {
      throw new InflowError('FAILED_PRECONDITION', 'a transaction is already open on this producer: commit or abort it first');
    }
    this.#current = new MemoryTransaction(this.#log, () => this.#log.assertNotFenced(this.#transactionalId ?? '', this.#epoch));
    this.#current.register(this.#transactionalId);
    return this.#current;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#current?.open) await this.#current.abort();
  }

  #assertOpen(): void {
    if (this.#closed) throw new InflowError('FAILED_PRECONDITION', 'producer is closed');
  }
}

class MemoryTransaction implements KafkaTransaction {
  readonly #log: MemoryLog;
  readonly #assertNotFenced: () => void;
  readonly #state: TxnState = { state: 'open' };
  readonly #offsets: Array<{ consumer: MemoryConsumer; offsets: TopicPartitionOffset[] }> = [];

  constructor(log: MemoryLog, assertNotFenced: () => void) {
    this.#log = log;
    this.#assertNotFenced = assertNotFenced;
  }

  get open(): boolean {
    return this.#state.state === 'open';
  }

  register(transactionalId: string): void {
    this.#log.beginTransaction(transactionalId, this.#state);
  }

  async send(records: ProducerRecord[]): Promise<RecordMetadata[]> {
    this.#assertUsable();
    return this.#log.append(records, this.#state);
  }

  async sendOffsets(consumer: KafkaConsumer, offsets: TopicPartitionOffset[]): Promise<void> {
    this.#assertUsable();
    if (!(consumer instanceof MemoryConsumer)) {
      throw new InflowError('INVALID_ARGUMENT', 'sendOffsets() needs a consumer of the same in-process log');
    }
    const group = this.#log.group(consumer.groupId);
    group.assertOwner(offsets, consumer.memberId);
    group.holdPending(this.#state, offsets);
    this.#offsets.push({ consumer, offsets: offsets.map((o) => ({ ...o })) });
  }

  async commit(): Promise<void> {
    this.#assertUsable();
    // KIP-447: offsets of a member that lost its partitions in a rebalance are refused, and
    // then the whole transaction aborts, so no output is kept without its input's offset.
    try {
      for (const { consumer, offsets } of this.#offsets) this.#log.group(consumer.groupId).assertOwner(offsets, consumer.memberId);
    } catch (error) {
      this.#log.endTransaction(this.#state, false);
      throw error;
    }
    for (const { consumer, offsets } of this.#offsets) this.#log.group(consumer.groupId).commit(offsets);
    this.#log.endTransaction(this.#state, true);
  }

  async abort(): Promise<void> {
    if (!this.open) return;
    this.#log.endTransaction(this.#state, false);
  }

  #assertUsable(): void {
    // Fencing first: a newer instance aborted this transaction when it took the id.
    try {
      this.#assertNotFenced();
    } catch (error) {
      this.#log.endTransaction(this.#state, false);
      throw error;
    }
    if (!this.open) throw new InflowError('FAILED_PRECONDITION', `transaction is already ${this.#state.state}`);
  }
}
