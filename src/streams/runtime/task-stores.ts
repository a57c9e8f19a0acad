/**
 * The store lifecycle of a runner's tasks (issue 17): opens a task's stores when its input
 * partitions are assigned and restores them from their changelogs before any of its records is
 * processed (the runner keeps those partitions paused meanwhile); hands the record processor
 * each record's view of a store ({@link StoreProvider}); turns a completed record's writes into
 * changelog records that go out with its outputs; folds released writes into the engines after
 * each successful commit; discards unfolded writes on abort; and closes a task's stores on
 * revocation and at shutdown — cleanly: the engine flushed and a checkpoint written, so the next
 * assignment restores only what was written since.
 *
 * Checkpoints follow Kafka Streams (`StreamTask.postCommit`: `if (enforceCheckpoint ||
 * !eosEnabled) maybeCheckpoint(...)`; `StateManagerUtil.OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT`):
 * at-least-once writes one after a commit once 10 000 changelog records were written since the
 * last, so a restart after a crash replays only the changelog's tail; exactly-once deletes the
 * checkpoint when a task opens and writes one only at a clean close, so after a crash the store
 * is wiped and restored from the beginning (state not known good). An at-least-once checkpoint
 * names the changelog offset after the last record acknowledged before the commit began: every
 * write below it is folded into the engine (the engine may hold more; replaying a changelog
 * tail over it converges on the same values), never less.
 *
 * Engines: lmdb under `<stateDir>/<applicationId>/<task>/<store>` when a state directory is
 * configured, else in memory (then every assignment restores the whole changelog).
 */
import { join } from 'node:path';
import { InflowError } from '../../errors.ts';
import type { KafkaClient, ProducerRecord, RecordMetadata, TopicPartition } from '../../kafka/types.ts';
import { partitionKey } from '../../kafka/types.ts';
import type { Logger } from '../../observability/logger.ts';
import { changelogTopic, type Topology } from '../api/topology.ts';
import { deleteCheckpoint, readCheckpoint, writeCheckpoint } from '../state/checkpoint.ts';
import type { KeyValueBytesStore } from '../state/key-value-store.ts';
import { createLmdbEngine } from '../state/lmdb-engine.ts';
import { createMemoryEngine, type StoreEngine } from '../state/store-engine.ts';
import type { CommittedStore, StoreProvider, StoreWriter } from '../state/store-provider.ts';
import { TransactionalStore } from '../state/transactional-store.ts';
import { type RestoreTarget, restoreStores } from './state-restorer.ts';
import { taskIdText } from './stream-task.ts';
import type { StreamsMetrics } from './streams-metrics.ts';

export interface TaskStoresOptions {
  readonly topology: Topology;
  readonly applicationId: string;
  readonly client: KafkaClient;
  /** Root of the persistent stores; undefined: in-memory engines. */
  readonly stateDir?: string;
  /** Exactly-once: checkpoints only at a clean close (deleted while a task runs); else also after commits. */
  readonly eos: boolean;
  /** Size limit of each store instance, bytes (lmdb); default 1 GiB. */
  readonly maxStoreBytes?: number;
  readonly metrics: StreamsMetrics;
  readonly labels: { readonly pipeline: string };
  readonly log: Logger;
}

interface StoreInstance {
  readonly store: TransactionalStore;
  readonly dir: string | undefined;
  readonly changelog: TopicPartition | undefined;
  /** The offset after the last changelog record the broker acknowledged for this store (at-least-once). */
  acked: bigint;
  /** The offset of the last checkpoint written (or restored from). */
  checkpointed: bigint;
  /** A checkpoint being written after a commit: the close waits for it. */
  checkpointing: Promise<void>;
  closed: boolean;
}

/** What a commit covers: the released writers of every store and, at-least-once, each store's acknowledged changelog end. */
export interface CommitToken {
  readonly writers: Map<TransactionalStore, Set<string>>;
  readonly ends: Map<StoreInstance, bigint>;
}

/**
 * Changelog records written since a store's last checkpoint before an at-least-once commit
 * writes a new one: Kafka Streams' OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT (a checkpoint costs an
 * engine flush to disk; a restart replays at most this many records more).
 */
export const CHECKPOINT_DELTA_RECORDS = 10_000n;

interface TaskState {
  readonly id: string;
  readonly stores: Map<string, StoreInstance>;
  readonly cancel: AbortController;
  restored: boolean;
  restoring: Promise<void>;
}

/** The writer id of an input record: its write set's key in every store of its task. */
const writerId = (w: StoreWriter): string => `${w.topic}:${w.partition}:${w.offset}`;

export class TaskStores implements StoreProvider {
  readonly #o: TaskStoresOptions;
  readonly #tasks = new Map<string, TaskState>();
  /** Open persistent store instances by changelog partition (`topic:partition`), for acknowledgements. */
  readonly #byChangelog = new Map<string, StoreInstance>();
  /** Sub-topology of each input topic, for the sub-topologies that have stores. */
  readonly #stateful = new Map<string, { id: number; stores: readonly string[] }>();

  constructor(options: TaskStoresOptions) {
    this.#o = options;
    for (const st of options.topology.subtopologies) {
      if (st.stores.length === 0) continue;
      for (const t of st.inputTopics) this.#stateful.set(t, { id: st.id, stores: st.stores });
    }
  }

  /** Whether records of `topic` go through stores (its partitions are restored on assignment). */
  stateful(topic: string): boolean {
    return this.#stateful.has(topic);
  }

  /** Store partitions still restoring (the runner is not ready meanwhile). */
  get restoring(): number {
    let n = 0;
    for (const t of this.#tasks.values()) if (!t.restored) n++;
    return n;
  }

  #taskId(tp: TopicPartition): string | undefined {
    const st = this.#stateful.get(tp.topic);
    return st && taskIdText({ subtopology: st.id, partition: tp.partition });
  }

  store(taskId: string, name: string, writer: StoreWriter): KeyValueBytesStore {
    const task = this.#tasks.get(taskId);
    const instance = task?.restored ? task.stores.get(name) : undefined;
    if (!instance) {
      throw new InflowError(
        'FAILED_PRECONDITION',
        `store "${name}" of task ${taskId} is not open: ${task ? (task.restored ? 'the task has no such store' : 'it is still restoring') : 'the task is not assigned here'}`,
      );
    }
    return instance.store.view(writerId(writer));
  }

  /**
   * Interactive queries: the committed state of a store instance — its engine, never the overlay
   * of write sets not yet committed — or `restoring` while its changelog replays.
   */
  queryable(taskId: string, name: string): CommittedStore | undefined {
    const task = this.#tasks.get(taskId);
    const instance = task?.stores.get(name);
    if (!task || !instance) return undefined;
    return task.restored ? { state: 'ready', store: instance.store.engine } : { state: 'restoring' };
  }

  /** Opens and restores the stores of the tasks of `partitions` (those not open yet); resolves when all are restored. */
  async assigned(partitions: readonly TopicPartition[]): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const tp of partitions) {
      const id = this.#taskId(tp);
      if (id === undefined) continue;
      let task = this.#tasks.get(id);
      if (!task) {
        task = this.#open(id, tp.partition, (this.#stateful.get(tp.topic) as { stores: readonly string[] }).stores);
        this.#tasks.set(id, task);
      }
      waits.push(task.restoring);
    }
    await Promise.all(waits);
  }

  #open(id: string, partition: number, names: readonly string[]): TaskState {
    const o = this.#o;
    const stores = new Map<string, StoreInstance>();
    const targets: RestoreTarget[] = [];
    for (const name of names) {
      const declared = o.topology.stores.get(name);
      const dir = o.stateDir === undefined ? undefined : join(o.stateDir, o.applicationId, id, name);
      const engine: StoreEngine =
        dir === undefined
          ? createMemoryEngine()
          : createLmdbEngine({ dir, name: `${name} (task ${id})`, ...(o.maxStoreBytes ? { maxBytes: o.maxStoreBytes } : {}) });
      const changelog = declared?.changelog === false ? undefined : { topic: changelogTopic(o.applicationId, name), partition };
      const instance: StoreInstance = {
        store: new TransactionalStore(name, engine, changelog),
        dir,
        changelog,
        acked: 0n,
        checkpointed: 0n,
        checkpointing: Promise.resolve(),
        closed: false,
      };
      stores.set(name, instance);
      if (!changelog) continue;
      let from = 0n;
      if (dir !== undefined) {
        const checkpoint = readCheckpoint(dir);
        if (checkpoint.kind === 'offset') from = checkpoint.offset;
        else {
          if (checkpoint.kind === 'corrupt')
            o.log.warn(
              { store: name, task: id, reason: checkpoint.reason },
              'state store checkpoint unreadable; restoring the whole changelog',
            );
          engine.clear();
        }
        // Exactly-once: from here on the local state is not known good until a clean close
        // writes a new checkpoint. At-least-once keeps it: the engine only ever gets ahead of it.
        if (o.eos) deleteCheckpoint(dir);
        else this.#byChangelog.set(partitionKey(changelog.topic, changelog.partition), instance);
        instance.checkpointed = from;
      }
      targets.push({ store: name, engine, topic: changelog.topic, partition, from });
    }
    const task: TaskState = { id, stores, cancel: new AbortController(), restored: false, restoring: Promise.resolve() };
    task.restoring = restoreStores(targets, {
      client: o.client,
      metrics: o.metrics,
      labels: o.labels,
      log: o.log,
      signal: task.cancel.signal,
    }).then(() => {
      task.restored = true;
    });
    return task;
  }

  /** A record finished: its writes become changelog records, to be produced with its outputs. */
  completed(record: StoreWriter): ProducerRecord[] {
    const task = this.#tasks.get(this.#taskId(record) ?? '');
    if (!task) return [];
    const out: ProducerRecord[] = [];
    const writer = writerId(record);
    for (const s of task.stores.values()) out.push(...s.store.changelogRecords(writer));
    return out;
  }

  /** A record failed (or was dropped): its writes never happened. */
  failed(record: StoreWriter): void {
    const task = this.#tasks.get(this.#taskId(record) ?? '');
    if (!task) return;
    const writer = writerId(record);
    for (const s of task.stores.values()) s.store.drop(writer);
  }

  /** A record's outputs were handed to the producer: the next commit folds its writes. */
  released(record: StoreWriter): void {
    const task = this.#tasks.get(this.#taskId(record) ?? '');
    if (!task) return;
    const writer = writerId(record);
    for (const s of task.stores.values()) s.store.released(writer);
  }

  /**
   * The broker acknowledged `sent` (a pump's outputs, before its records are released):
   * at-least-once, each persistent store's changelog end moves up to what it holds. Call it in
   * the same synchronous step as {@link released}, so a commit's snapshot of these ends covers
   * only released writes.
   */
  acknowledged(sent: readonly RecordMetadata[]): void {
    if (this.#byChangelog.size === 0) return;
    for (const m of sent) {
      const instance = this.#byChangelog.get(partitionKey(m.topic, m.partition));
      if (instance && m.offset >= instance.acked) instance.acked = m.offset + 1n;
    }
  }

  /** What a commit starting now covers: the released writers of every store, and the changelog ends acknowledged so far. */
  beginCommit(): CommitToken {
    const writers = new Map<TransactionalStore, Set<string>>();
    for (const t of this.#tasks.values()) for (const s of t.stores.values()) writers.set(s.store, s.store.releasedWriters());
    const ends = new Map<StoreInstance, bigint>();
    for (const s of this.#byChangelog.values()) if (s.acked > s.checkpointed) ends.set(s, s.acked);
    return { writers, ends };
  }

  /** The commit succeeded: folds what it covered into the engines. */
  committed(token: CommitToken): void {
    for (const [store, writers] of token.writers) store.fold(writers);
  }

  /**
   * At-least-once, after {@link committed}: flushes each store whose changelog grew by
   * {@link CHECKPOINT_DELTA_RECORDS} since its last checkpoint and writes a checkpoint at the end
   * the commit covered. A failure is logged: the next checkpoint (or a full restore) covers it.
   */
  async checkpoint(token: CommitToken): Promise<void> {
    const writes: Promise<void>[] = [];
    for (const [s, end] of token.ends) {
      if (s.closed || s.dir === undefined || end - s.checkpointed < CHECKPOINT_DELTA_RECORDS) continue;
      const dir = s.dir;
      s.checkpointed = end;
      s.checkpointing = s.checkpointing
        .then(async () => {
          if (s.closed) return;
          await s.store.engine.flush();
          if (!s.closed) writeCheckpoint(dir, end);
        })
        .catch((error: unknown) =>
          this.#o.log.warn(
            { store: s.store.name, dir, err: (error as Error).message },
            'writing a state store checkpoint after a commit failed',
          ),
        );
      writes.push(s.checkpointing);
    }
    await Promise.all(writes);
  }

  /** Abort or rewind: every unfolded write of every task is discarded. */
  aborted(): void {
    for (const t of this.#tasks.values()) for (const s of t.stores.values()) s.store.abort();
  }

  /** Closes the stores of the tasks of revoked partitions. */
  async revoked(partitions: readonly TopicPartition[]): Promise<void> {
    const ids = new Set<string>();
    for (const tp of partitions) {
      const id = this.#taskId(tp);
      if (id !== undefined) ids.add(id);
    }
    await Promise.all([...ids].map((id) => this.#close(id)));
  }

  /** Closes every task's stores (runner shutdown). */
  async close(): Promise<void> {
    await Promise.all([...this.#tasks.keys()].map((id) => this.#close(id)));
  }

  /**
   * Discards unfolded writes; for a restored persistent store, flushes the engine and writes a
   * checkpoint at the changelog's end offset (everything committed below it is in the engine;
   * a checkpoint behind the true end only replays writes the engine has already).
   */
  async #close(id: string): Promise<void> {
    const task = this.#tasks.get(id);
    if (!task) return;
    this.#tasks.delete(id);
    task.cancel.abort();
    await task.restoring.catch(() => undefined);
    const consumer = task.restored ? this.#o.client.restoreConsumer({ isolationLevel: 'read_committed' }) : undefined;
    try {
      for (const [name, s] of task.stores) {
        s.closed = true;
        if (s.changelog) this.#byChangelog.delete(partitionKey(s.changelog.topic, s.changelog.partition));
        await s.checkpointing;
        s.store.abort();
        try {
          if (consumer && s.dir !== undefined && s.changelog && s.store.engine.persistent) {
            const [end] = await consumer.endOffsets([s.changelog]);
            await s.store.engine.flush();
            if (end) writeCheckpoint(s.dir, end.offset);
          }
        } catch (error) {
          this.#o.log.warn(
            { store: name, task: id, err: (error as Error).message },
            'no checkpoint written; the next assignment restores the whole changelog',
          );
        } finally {
          await s.store.engine.close();
        }
      }
    } finally {
      await consumer?.close().catch(() => undefined);
    }
  }
}
