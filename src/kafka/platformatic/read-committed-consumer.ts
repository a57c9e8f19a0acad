/**
 * The library consumer with read_committed done as the Java client does it (KIP-98, KIP-447):
 * - every aborted transaction is dropped from fetched data (./aborted-transactions.ts);
 * - committed offsets are read with require_stable: while a transaction that holds offsets of
 *   a partition is still open or completing, the broker answers UNSTABLE_OFFSET_COMMIT and we
 *   wait, instead of reading the offsets from before it. @platformatic/kafka 2.12 hard-codes
 *   require_stable=false in the consumer; an exactly-once member that took a partition over
 *   from a killed one could then start from offsets older than the outputs that transaction
 *   commits a moment later, and produce them twice.
 * With read_uncommitted both overrides pass straight through.
 */
import {
  Admin,
  type CallbackWithPromise,
  Consumer,
  type ConsumerOptions,
  type FetchOptions,
  type fetchV17,
  findErrorBy,
  type ListCommitsOptions,
  type Offsets,
} from '@platformatic/kafka';
import { dropAbortedRecords } from './aborted-transactions.ts';
import { kGetApi } from './library-internals.ts';
import { applyStaticMembership, type StaticMembershipOptions } from './static-membership.ts';
import type { BaseClientOptions } from './connection-options.ts';

type FetchResponse = fetchV17.FetchResponse;

/** Where a fetch response's aborted-transaction list waits while the library's own filter runs. */
const HIDDEN = Symbol('inflow.abortedTransactions');

type FetchPartition = FetchResponse['responses'][number]['partitions'][number] & { [HIDDEN]?: FetchPartition['abortedTransactions'] };

type ApiCallback = (error: Error | null, api?: (...args: unknown[]) => void) => void;

/**
 * The library drops aborted records itself before fetch() answers, and its filter also drops
 * committed ones: with an abort marker that has no aborted-transaction entry (a transaction
 * that added the partition but wrote nothing there), everything of the producer from its
 * previous aborted transaction up to that marker went, committed data included (1 664
 * predictions lost in a crash test). Its filter only runs when a partition lists aborted
 * transactions, so the Fetch API we hand it moves that list aside; fetch() puts it back and
 * filters with {@link dropAbortedRecords}.
 */
function hideAbortedTransactionsFromLibrary(consumer: Consumer): void {
  const target = consumer as unknown as Record<symbol, (name: string, callback: ApiCallback) => void>;
  const original = target[kGetApi] as (name: string, callback: ApiCallback) => void;
  target[kGetApi] = function getApi(this: unknown, name: string, callback: ApiCallback): void {
    original.call(this, name, (error, api) => {
      if (error || name !== 'Fetch' || !api) {
        callback(error, api);
        return;
      }
      const wrapped = (...args: unknown[]): void => {
        const done = args[args.length - 1] as (error: Error | null, response?: FetchResponse) => void;
        args[args.length - 1] = (e: Error | null, response?: FetchResponse) => {
          for (const topic of response?.responses ?? []) {
            for (const partition of topic.partitions as FetchPartition[]) {
              if (!partition.abortedTransactions?.length) continue;
              partition[HIDDEN] = partition.abortedTransactions;
              partition.abortedTransactions = [];
            }
          }
          done(e, response);
        };
        api(...args);
      };
      callback(null, Object.assign(wrapped, api));
    });
  };
}

function restoreAbortedTransactions(response: FetchResponse): FetchResponse {
  for (const topic of response.responses) {
    for (const partition of topic.partitions as FetchPartition[]) {
      const hidden = partition[HIDDEN];
      if (hidden) partition.abortedTransactions = hidden;
    }
  }
  return response;
}

/** FetchIsolationLevels.READ_COMMITTED. */
const READ_COMMITTED = 1;

/** How long committed offsets may stay unstable before the read fails, ms (above any sane transaction.timeout.ms). */
const STABLE_OFFSETS_TIMEOUT_MS = 5 * 60_000;

export class ReadCommittedConsumer extends Consumer {
  readonly #base: BaseClientOptions;
  readonly #readCommitted: boolean;
  #admin: Admin | undefined;

  constructor(
    base: BaseClientOptions,
    options: ConsumerOptions<Buffer, Buffer, Buffer, Buffer>,
    staticMembership: StaticMembershipOptions = {},
  ) {
    super(options);
    this.#base = base;
    this.#readCommitted = options.isolationLevel === READ_COMMITTED;
    if (this.#readCommitted) hideAbortedTransactionsFromLibrary(this);
    if (options.groupInstanceId) applyStaticMembership(this, staticMembership);
  }

  override fetch(options: FetchOptions<Buffer, Buffer, Buffer, Buffer>, callback: CallbackWithPromise<FetchResponse>): void;
  override fetch(options: FetchOptions<Buffer, Buffer, Buffer, Buffer>): Promise<FetchResponse>;
  override fetch(
    options: FetchOptions<Buffer, Buffer, Buffer, Buffer>,
    callback?: CallbackWithPromise<FetchResponse>,
  ): void | Promise<FetchResponse> {
    const filter = (options.isolationLevel ?? (this.#readCommitted ? READ_COMMITTED : 0)) === READ_COMMITTED;
    if (!filter) return callback ? super.fetch(options, callback) : super.fetch(options);
    if (!callback) {
      return super.fetch(options).then((response) => {
        dropAbortedRecords(restoreAbortedTransactions(response));
        return response;
      });
    }
    super.fetch(options, ((error: Error | null, response: FetchResponse) => {
      if (!error && response) dropAbortedRecords(restoreAbortedTransactions(response));
      callback(error, response);
    }) as CallbackWithPromise<FetchResponse>);
  }

  override listCommittedOffsets(options: ListCommitsOptions, callback: CallbackWithPromise<Offsets>): void;
  override listCommittedOffsets(options: ListCommitsOptions): Promise<Offsets>;
  override listCommittedOffsets(options: ListCommitsOptions, callback?: CallbackWithPromise<Offsets>): void | Promise<Offsets> {
    if (!this.#readCommitted) return callback ? super.listCommittedOffsets(options, callback) : super.listCommittedOffsets(options);
    const result = this.#stableOffsets(options);
    if (!callback) return result;
    result.then(
      (offsets) => callback(null, offsets),
      (error: unknown) => callback(error as Error, undefined as never),
    );
  }

  override close(force?: boolean): Promise<void>;
  override close(force: boolean | CallbackWithPromise<void>, callback?: CallbackWithPromise<void>): void;
  override close(force?: boolean | CallbackWithPromise<void>, callback?: CallbackWithPromise<void>): void | Promise<void> {
    const admin = this.#admin;
    this.#admin = undefined;
    const closing = admin?.close().catch(() => undefined);
    if (typeof force === 'function' || callback) {
      void closing;
      super.close(force as boolean, callback as CallbackWithPromise<void>);
      return;
    }
    return Promise.all([closing, super.close(force)]).then(() => undefined);
  }

  /** OffsetFetch with require_stable, retried while the broker says UNSTABLE_OFFSET_COMMIT. */
  async #stableOffsets(options: ListCommitsOptions): Promise<Offsets> {
    this.#admin ??= new Admin({
      ...this.#base,
      clientId: `${this.#base.clientId}-offsets`,
      retryDelay: (_client, _operation, _attempt, _retries, error) => (findErrorBy(error, 'apiId', 'UNSTABLE_OFFSET_COMMIT') ? 25 : 1000),
    });
    const admin = this.#admin;
    const deadline = Date.now() + STABLE_OFFSETS_TIMEOUT_MS;
    for (let wait = 50; ; wait = Math.min(wait * 2, 1000)) {
      try {
        const groups = await admin.listConsumerGroupOffsets({
          groups: [{ groupId: this.groupId, topics: options.topics.map((t) => ({ name: t.topic, partitionIndexes: [...t.partitions] })) }],
          requireStable: true,
        });
        const offsets: Offsets = new Map();
        for (const group of groups) {
          for (const topic of group.topics) {
            const partitions: bigint[] = [];
            for (const p of topic.partitions) partitions[p.partitionIndex] = p.committedOffset;
            offsets.set(topic.name, partitions);
          }
        }
        return offsets;
      } catch (error) {
        if (!findErrorBy(error as Error, 'apiId', 'UNSTABLE_OFFSET_COMMIT') || Date.now() + wait > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }
}
