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
 * Engines: lmdb under `<stateDir>/<applicationId>/<task>/<store>` when a state directory is
 * configured, else in memory (then every assignment restores the whole changelog).
 */
import { join } from 'node:path';
import { InflowError } from '../../errors.ts';
import type { KafkaClient, ProducerRecord, TopicPartition } from '../../kafka/types.ts';
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
}

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
      stores.set(name, { store: new TransactionalStore(name, engine, changelog), dir, changelog });
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
        // From here on the local state is not known good until a clean close writes a new checkpoint.
        deleteCheckpoint(dir);
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

  /** What a commit starting now covers: the released writers of every store. */
  beginCommit(): Map<TransactionalStore, Set<string>> {
    const token = new Map<TransactionalStore, Set<string>>();
    for (const t of this.#tasks.values()) for (const s of t.stores.values()) token.set(s.store, s.store.releasedWriters());
    return token;
  }

  /** The commit succeeded: folds what it covered into the engines. */
  committed(token: Map<TransactionalStore, Set<string>>): void {
    for (const [store, writers] of token) store.fold(writers);
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
