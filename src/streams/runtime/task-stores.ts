/**
 * The store lifecycle of a runner's tasks (issue 17): opens a task's stores when its input
 * partitions are assigned and restores them from their changelogs before any of its records is
 * processed (the runner keeps those partitions paused meanwhile); hands the record processor
 * each record's view of a store ({@link StoreProvider}); turns the writes a commit covers into
 * changelog records (the latest per key) that go out with the commit; folds them into the engines
 * after it succeeded; discards unfolded writes on abort; and closes a task's stores on
 * revocation and at shutdown — cleanly: the engine flushed and a checkpoint written, so the next
 * assignment restores only what was written since.
 *
 * Checkpoints follow Kafka Streams (`StreamTask.postCommit`: `if (enforceCheckpoint ||
 * !eosEnabled) maybeCheckpoint(...)`; `StateManagerUtil.OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT`):
 * at-least-once writes one after a commit once 10 000 changelog records were written since the
 * last, so a restart after a crash replays only the changelog's tail; exactly-once deletes the
 * checkpoint when a task opens and writes one only at a clean close, so after a crash the store
 * is wiped and restored from the beginning (state not known good). An at-least-once checkpoint
 * is written only after the commit's offset commit succeeded and its writes were folded, and
 * names the changelog offset after the commit's own last changelog record, as the broker
 * acknowledged it in the send that carried the commit's changelog records: every write below it
 * is folded into the engine (the engine may hold more; replaying a changelog tail over it
 * converges on the same values), never less.
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
import { type PreparedCommit, TransactionalStore } from '../state/transactional-store.ts';
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
  /** The offset of the last checkpoint written (or restored from). */
  checkpointed: bigint;
  /** A checkpoint being written after a commit: the close waits for it. */
  checkpointing: Promise<void>;
  closed: boolean;
}

/**
 * What one commit covers: per store, its prepared writes ({@link TaskStores.beginCommit}) and,
 * at-least-once, the changelog end of each persistent store the commit wrote to: the offset after
 * its last changelog record, as acknowledged in the send that carried them ({@link TaskStores.acknowledged}).
 */
export interface StoreCommit {
  readonly prepared: Map<TransactionalStore, PreparedCommit>;
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
  /** Open persistent store instances by changelog partition (`topic:partition`), at-least-once: for checkpoints after commits. */
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

  /** A record failed (or was dropped): its writes never happened. */
  failed(record: StoreWriter): void {
    const task = this.#tasks.get(this.#taskId(record) ?? '');
    if (!task) return;
    const writer = writerId(record);
    for (const s of task.stores.values()) s.store.drop(writer);
  }

  /** A record's outputs were handed to the producer: the next commit covers its writes. */
  released(record: StoreWriter): void {
    const task = this.#tasks.get(this.#taskId(record) ?? '');
    if (!task) return;
    const writer = writerId(record);
    for (const s of task.stores.values()) s.store.released(writer);
  }

  /**
   * What a commit starting now covers: the released writes of every store, the latest per key.
   * Their changelog records ({@link TaskStores.changelog}) go out before the commit: in its
   * transaction (exactly-once) or before its offset commit (at-least-once).
   */
  beginCommit(): StoreCommit {
    const prepared = new Map<TransactionalStore, PreparedCommit>();
    for (const t of this.#tasks.values()) for (const s of t.stores.values()) prepared.set(s.store, s.store.prepareCommit());
    return { prepared, ends: new Map() };
  }

  /** The changelog records of a commit begun with {@link TaskStores.beginCommit}. */
  changelog(token: StoreCommit): ProducerRecord[] {
    const out: ProducerRecord[] = [];
    for (const prepared of token.prepared.values()) for (const r of prepared.changelog) out.push(r);
    return out;
  }

  /**
   * The broker acknowledged `sent`, the send that carried the changelog records of `token`'s
   * commit (with outputs, maybe): at-least-once, each persistent store's end for that commit is
   * the offset after its last changelog record there. Changelog records go out only with their
   * commit, so everything below that end belongs to this commit or an earlier one.
   */
  acknowledged(token: StoreCommit, sent: readonly RecordMetadata[]): void {
    if (this.#byChangelog.size === 0) return;
    for (const m of sent) {
      const instance = this.#byChangelog.get(partitionKey(m.topic, m.partition));
      if (instance && m.offset >= (token.ends.get(instance) ?? 0n)) token.ends.set(instance, m.offset + 1n);
    }
  }

  /** The commit succeeded: folds what it covered into the engines. */
  committed(token: StoreCommit): void {
    for (const [store, prepared] of token.prepared) store.fold(prepared);
  }

  /**
   * At-least-once, after the offset commit succeeded and {@link committed} folded the commit's
   * writes (Kafka Streams' `StreamTask.postCommit`): flushes each store whose changelog grew by
   * {@link CHECKPOINT_DELTA_RECORDS} since its last checkpoint and writes a checkpoint at the
   * commit's changelog end. A failure is logged: the next checkpoint (or a full restore) covers it.
   */
  async checkpoint(token: StoreCommit): Promise<void> {
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
