/**
 * The tasks of one runner (Kafka Streams' `TaskManager`): creates a task when records of a new
 * input partition arrive, drops tasks on revocation, releases finished records through the
 * record collector in offset order per partition, commits their offsets (in the transaction in
 * exactly-once mode), and aborts everything on a rewind — back to the committed offsets.
 *
 * Concurrency: every write to Kafka (a pump's send and commit, a rewind) runs through
 * {@link TaskManager.exclusive}, one at a time; processing runs concurrently beside them. Once a
 * produce or commit failed, nothing is produced or committed until the rewind it calls for has
 * moved the consumer: a pump that ran after a failed send took the records behind the failed
 * ones, moved the partitions' produced offsets past them and committed those (seen: 22 inputs
 * without a prediction after "addPartitionsToTransaction failed" under load).
 */
import { InflowError } from '../../errors.ts';
import type { ConsumedRecord, KafkaConsumer, ProducerRecord, RecordMetadata, TopicPartition } from '../../kafka/types.ts';
import type { Logger } from '../../observability/logger.ts';
import type { Topology } from '../api/topology.ts';
import { deadLetterRecord, type ErrorPolicy } from './dead-letter.ts';
import type { InFlightRecord, PartitionQueue } from './partition-queue.ts';
import type { RecordCollector } from './record-collector.ts';
import type { RecordProcessor } from './record-processor.ts';
import { StageError } from './stage-error.ts';
import { type PartitionOffset, StreamTask, taskIdText } from './stream-task.ts';
import type { StreamsMetrics } from './streams-metrics.ts';
import type { StreamsProducer } from './streams-producer.ts';
import type { StoreCommit, TaskStores } from './task-stores.ts';

export interface TaskManagerOptions {
  readonly topology: Topology;
  readonly processor: RecordProcessor;
  readonly producer: StreamsProducer;
  readonly collector: RecordCollector;
  readonly policy: ErrorPolicy;
  readonly dlqTopic: string;
  /** Dead letters are cut to this size (key + value + headers, bytes), as every output is bounded. */
  readonly maxRecordBytes: number;
  readonly commitIntervalMs: number;
  readonly autoOffsetReset: 'earliest' | 'latest';
  readonly metrics: StreamsMetrics;
  readonly labels: { readonly pipeline: string };
  readonly log: Logger;
  /** Whether the runner stopped on a fatal error (then nothing more is produced). */
  isFailed(): boolean;
  /** A fatal error (the `fail` error policy). */
  onFatal(error: unknown): void;
  /** A produce or commit failed: rewind (retriable) or stop. */
  onKafkaError(error: unknown): void;
  /** Records left the runner (produced or dropped): backpressure may lift. */
  onReleased(): void;
  /** Offsets were committed (with their outputs, in exactly-once mode). */
  onCommitted?(offsets: readonly PartitionOffset[]): void;
  /** The tasks' stores (transactional overlays, changelogs); absent for a stateless topology. */
  readonly state?: TaskStores;
  /**
   * How long a task reading several partitions waits for one that holds no record before it
   * processes the others', ms (stream-task.ts); default 0: never.
   */
  readonly maxTaskIdleMs?: number;
  /** Wall-clock time of the idle deadlines, ms (tests inject a manual clock); default Date.now. */
  readonly now?: () => number;
}

export class TaskManager {
  readonly #o: TaskManagerOptions;
  readonly #tasks = new Map<string, StreamTask>();
  /** Sub-topology of each input topic. */
  readonly #subtopologyOf = new Map<string, number>();
  /** Sub-topologies that read several topics: their tasks process records in timestamp order. */
  readonly #ordered = new Set<number>();
  /** Assigned input partitions of those sub-topologies (`topic:partition`): each task waits for its own. */
  readonly #orderedAssigned = new Map<string, TopicPartition>();
  /** Tasks holding records not yet processed. */
  readonly #holding = new Set<StreamTask>();
  readonly #now: () => number;
  #consumer: KafkaConsumer | undefined;
  #inFlight = 0;
  #lastCommit = 0;
  #forceCommit = false;
  /** An at-least-once offset commit running beside produces. */
  #background: Promise<void> | undefined;
  /** Set the moment a produce or commit fails, cleared when the rewind it calls for has moved the consumer. */
  #rewindReason: string | undefined;
  #chain: Promise<void> = Promise.resolve();
  #pumpQueued = false;

  constructor(options: TaskManagerOptions) {
    this.#o = options;
    for (const st of options.topology.subtopologies) {
      for (const t of st.inputTopics) this.#subtopologyOf.set(t, st.id);
      if (st.inputTopics.length > 1) this.#ordered.add(st.id);
    }
    this.#now = options.now ?? Date.now;
  }

  /** The consumer whose offsets this manager commits and rewinds. */
  attach(consumer: KafkaConsumer): void {
    this.#consumer = consumer;
  }

  /** The commit interval counts from now (start-up). */
  restartCommitInterval(): void {
    this.#lastCommit = Date.now();
  }

  /** Records between admission and their acknowledgement. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Why a rewind is due, if one is. */
  get rewindReason(): string | undefined {
    return this.#rewindReason;
  }

  /** Stops producing and committing until a rewind ran. */
  requestRewind(reason: string): void {
    this.#rewindReason = reason;
  }

  tasks(): IterableIterator<StreamTask> {
    return this.#tasks.values();
  }

  /** Runs `fn` after every earlier exclusive step (pumps, rewinds): one writer to Kafka at a time. */
  exclusive(fn: () => Promise<void>): Promise<void> {
    const next = this.#chain.then(fn);
    this.#chain = next.catch(() => undefined);
    return next;
  }

  /** Settles when every exclusive step and the background commit settled. */
  async idle(): Promise<void> {
    await this.#chain;
    await this.#background;
  }

  #setInFlight(delta: number): void {
    this.#inFlight += delta;
    this.#o.metrics.inFlight.set(this.#o.labels, this.#inFlight);
  }

  #taskFor(tp: TopicPartition, create: boolean): StreamTask | undefined {
    // A topic no source reads cannot arrive (the consumer subscribes to the sources' topics);
    // should one, it gets a sub-topology of its own and fails at deserialization.
    const id = { subtopology: this.#subtopologyOf.get(tp.topic) ?? this.#o.topology.subtopologies.length, partition: tp.partition };
    const key = taskIdText(id);
    let task = this.#tasks.get(key);
    if (!task && create) {
      task = new StreamTask(id, this.#ordered.has(id.subtopology) ? { maxIdleMs: this.#o.maxTaskIdleMs ?? 0 } : undefined);
      this.#tasks.set(key, task);
    }
    return task;
  }

  /**
   * Partitions assigned to this member. A task that reads several partitions learns each of its
   * own here, so it can wait for one that has not delivered a record yet.
   */
  assigned(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) {
      const sub = this.#subtopologyOf.get(tp.topic);
      if (sub === undefined || !this.#ordered.has(sub)) continue;
      this.#orderedAssigned.set(`${tp.topic}:${tp.partition}`, { topic: tp.topic, partition: tp.partition });
      (this.#taskFor(tp, true) as StreamTask).queue(tp.topic);
    }
  }

  /** Partitions taken away (before their tasks are revoked or rewound): no task waits for them any more. */
  unassigned(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) this.#orderedAssigned.delete(`${tp.topic}:${tp.partition}`);
  }

  /**
   * Admits a polled record into its task and starts processing it — at once, or, for a task that
   * reads several partitions, when {@link processReady} picks it in timestamp order.
   */
  admit(record: ConsumedRecord): void {
    const task = this.#taskFor(record, true) as StreamTask;
    const admitted = task.admit(record);
    if (!admitted) {
      this.#o.metrics.redelivered.inc(this.#o.labels);
      return;
    }
    this.#setInFlight(1);
    this.#o.metrics.recordsIn.inc(this.#o.labels);
    if (task.ordering) {
      this.#holding.add(task);
      return;
    }
    this.#process(task, admitted.queue, admitted.entry);
  }

  /**
   * Processes the held records of the tasks that read several partitions, in timestamp order, as
   * far as each task may go now (stream-task.ts). Call it after admitting a poll's records and
   * whenever a wait may have ended. Returns the earliest time (ms, of the manager's clock) a
   * waiting task may go on, undefined when none waits.
   */
  processReady(): number | undefined {
    if (this.#holding.size === 0) return undefined;
    const now = this.#now();
    let wakeAt: number | undefined;
    for (const task of this.#holding) {
      for (;;) {
        const next = task.next(now);
        if (next.entry === undefined) {
          if (next.wakeAt === undefined) this.#holding.delete(task);
          else if (wakeAt === undefined || next.wakeAt < wakeAt) wakeAt = next.wakeAt;
          break;
        }
        this.#process(task, next.queue, next.entry);
        if (this.#o.isFailed()) return undefined;
      }
    }
    return wakeAt;
  }

  /** Wall-clock ms of the manager's clock (the idle deadlines'). */
  now(): number {
    return this.#now();
  }

  /** Runs one admitted record through the topology. */
  #process(task: StreamTask, queue: PartitionQueue, entry: InFlightRecord): void {
    const record = entry.record;
    let result;
    try {
      result = this.#o.processor.process(record, queue, { taskId: taskIdText(task.id), streamTime: task.streamTime });
    } catch (e) {
      this.#complete(queue, entry, e instanceof StageError ? e : new StageError('process', '(runner)', e));
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (out) => this.#complete(queue, entry, out),
        (e: unknown) => this.#complete(queue, entry, e instanceof StageError ? e : new StageError('process', '(runner)', e)),
      );
    } else this.#complete(queue, entry, result);
  }

  /** Records a record's outputs, or applies the error policy to its failure. */
  #complete(queue: PartitionQueue, entry: InFlightRecord, result: ProducerRecord[] | StageError): void {
    const o = this.#o;
    if (!queue.live || o.isFailed()) {
      // Dropped (rewind, revocation): writes it made after the abort must not linger in the overlay.
      o.state?.failed(entry.record);
      return;
    }
    if (result instanceof StageError) {
      // A failed record's writes never happened, like its partial outputs.
      o.state?.failed(entry.record);
      const labels = { ...o.labels, stage: result.stage, code: result.error.code };
      const where = { topic: entry.record.topic, partition: entry.record.partition, offset: String(entry.record.offset) };
      if (o.policy === 'fail') {
        o.onFatal(
          new InflowError(result.error.code, `record ${where.topic}/${where.partition}@${where.offset}: ${result.message}`, {
            cause: result,
          }),
        );
        return;
      }
      o.log.warn(
        { ...where, stage: result.stage, node: result.node, code: result.error.code, err: result.error.message },
        `record ${o.policy === 'dlq' ? 'dead-lettered' : 'skipped'}`,
      );
      if (o.policy === 'dlq') {
        o.metrics.deadLettered.inc(labels);
        entry.out = [deadLetterRecord(o.dlqTopic, entry.record, result, Date.now(), o.maxRecordBytes)];
      } else {
        o.metrics.skipped.inc(labels);
        entry.out = [];
      }
    } else entry.out = result;
    if (queue.headReady()) this.kick();
  }

  /** Schedules one pump (coalesced): produce what is ready, commit when due. */
  kick(): void {
    if (this.#pumpQueued || this.#o.isFailed()) return;
    this.#pumpQueued = true;
    void this.exclusive(async () => {
      this.#pumpQueued = false;
      await this.pump();
    }).catch((e: unknown) => this.#o.onKafkaError(e));
  }

  /** Makes the next pump commit, whatever the commit interval (tests, shutdown). */
  requestCommit(): void {
    this.#forceCommit = true;
  }

  /** Releases what is ready through the collector, then commits when due. Run it through {@link exclusive}. */
  async pump(): Promise<void> {
    const o = this.#o;
    if (o.isFailed() || !o.producer.started || this.#rewindReason !== undefined) return;
    const ready: InFlightRecord[] = [];
    const advanced: [PartitionQueue, bigint][] = [];
    for (const task of this.#tasks.values()) advanced.push(...task.release(ready));
    const due = this.#forceCommit || Date.now() - this.#lastCommit >= o.commitIntervalMs;
    // A commit follows this send (exactly-once, forced, or at-least-once with no commit running):
    // the changelog records of the writes it covers ride in the send, not in a round trip of
    // their own. The records are marked released first so that the commit covers their writes;
    // a failed send rewinds, which discards every write not folded.
    const commits = due && (o.producer.eos || this.#forceCommit || this.#background === undefined);
    let covered: StoreCommit | undefined;
    let changelog: ProducerRecord[] = [];
    if (o.state) {
      for (const e of ready) o.state.released(e.record);
      if (commits) {
        covered = o.state.beginCommit();
        changelog = o.state.changelog(covered);
      }
    }
    if (ready.length > 0 || changelog.length > 0) {
      let sent: readonly RecordMetadata[];
      try {
        sent = await o.collector.send(ready, changelog);
      } catch (error) {
        // These records left their queues; the rewind that follows consumes them again.
        // Counted as in flight still, they would hold the budget (and, after enough failed
        // sends, keep every partition paused) for ever.
        this.#setInFlight(-ready.length);
        this.#rewindReason ??= 'produce failed';
        throw error;
      }
      for (const [q, offset] of advanced) if (q.live) q.produced = offset;
      // At-least-once: where the broker put the commit's changelog records is where its checkpoint goes.
      if (covered && changelog.length > 0) o.state?.acknowledged(covered, sent);
      this.#setInFlight(-ready.length);
      if (ready.length > 0) o.onReleased();
    }
    if (!due) return;
    if (o.producer.eos || this.#forceCommit) {
      await this.#background;
      await this.#commit(covered);
      return;
    }
    // At-least-once: the offset commit (a round trip to the group coordinator) runs beside the
    // next produces rather than ahead of them; it only names outputs already acknowledged.
    this.#background ??= this.#commit(covered)
      .catch((e: unknown) => o.onKafkaError(e))
      .finally(() => {
        this.#background = undefined;
      });
  }

  /** Commits; `covered`: the store writes it covers, whose changelog records were sent already. */
  async #commit(covered?: StoreCommit): Promise<void> {
    this.#forceCommit = false;
    this.#lastCommit = Date.now();
    if (this.#rewindReason !== undefined) return;
    try {
      await this.#commitOffsets(covered);
    } catch (error) {
      this.#rewindReason ??= 'commit failed';
      throw error;
    }
  }

  async #commitOffsets(sent?: StoreCommit): Promise<void> {
    const offsets: PartitionOffset[] = [];
    for (const task of this.#tasks.values()) task.offsetsToCommit(offsets);
    const consumer = this.#consumer;
    const producer = this.#o.producer;
    if (!consumer || !producer.started) return;
    // The writes of records released before this commit, the latest per key: their changelog
    // records go out first — in the transaction (exactly-once), or acknowledged before the offsets
    // name their records (at-least-once) — usually in the pump's send (`sent`), and they are
    // folded into the engines once the commit succeeded.
    const state = this.#o.state;
    let covered = sent;
    if (state && !covered) {
      covered = state.beginCommit();
      const changelog = state.changelog(covered);
      // At-least-once: the broker's offsets for them are where this commit's checkpoint goes.
      if (changelog.length > 0) state.acknowledged(covered, await this.#o.collector.send([], changelog));
    }
    let committed = true;
    if (producer.eos) committed = await producer.commitTransaction(consumer, offsets);
    else if (offsets.length > 0) await consumer.commit(offsets);
    else committed = false;
    // Nothing to commit (no offsets, nothing produced): the covered writes had no changelog records either.
    if (covered) this.#foldState(covered);
    if (!committed) return;
    // At-least-once, after the offset commit succeeded and the writes were folded (Kafka Streams'
    // StreamTask.postCommit): a checkpoint now and then, at the changelog end of this commit's
    // records, so a restart after a crash replays only the changelog's tail.
    if (covered && !producer.eos && state && !this.#o.isFailed()) await state.checkpoint(covered);
    for (const o of offsets) {
      const q = this.#taskFor(o, false)?.existingQueue(o.topic);
      if (q) q.committed = o.offset;
    }
    this.#o.metrics.commits.inc(this.#o.labels);
    this.#o.onCommitted?.(offsets);
  }

  /**
   * Folds committed writes into the engines. A failure here (a full store) stops the runner:
   * what was committed is in the changelog, and without a checkpoint the next start restores it.
   */
  #foldState(covered: StoreCommit): void {
    try {
      this.#o.state?.committed(covered);
    } catch (error) {
      const e = InflowError.from(error);
      this.#o.onFatal(
        new InflowError(
          e.code === 'RESOURCE_EXHAUSTED' ? 'RESOURCE_EXHAUSTED' : 'INTERNAL',
          `${e.message} (the commit succeeded: the changelog holds these writes and the next start restores them)`,
          { cause: e },
        ),
      );
    }
  }

  /** Drops every in-flight record and rewinds each assigned partition to its committed offset. Run it through {@link exclusive}. */
  async rewind(reason: string): Promise<void> {
    const c = this.#consumer;
    if (!c) return;
    const o = this.#o;
    o.metrics.rewinds.inc({ ...o.labels, reason });
    if (this.#rewindReason !== undefined) await o.producer.restart();
    else await o.producer.abortTransaction();
    const assigned = c.assignment();
    const committed = assigned.length > 0 ? await c.committed(assigned) : [];
    // From here to the seeks, synchronously: abort the tasks and move the consumer. Records
    // polled while the awaits above ran went into the old tasks and are dropped with them; had
    // the tasks been dropped before the awaits, those records — fetched from the old positions,
    // past the committed offset — would have started fresh tasks, their offsets could be
    // committed before the rewound records were produced again, and a crash then lost the
    // records in between.
    for (const task of this.#tasks.values()) this.#setInFlight(-task.abort());
    this.#tasks.clear();
    this.#holding.clear();
    // The aborted transaction's store writes never happened: no wipe-and-restore, the overlay goes.
    o.state?.aborted();
    this.#rewindReason = undefined;
    const still = new Set(c.assignment().map((p) => `${p.topic}:${p.partition}`));
    for (const position of committed) {
      if (!still.has(`${position.topic}:${position.partition}`)) continue;
      // No committed offset yet: the consumer's reset policy applies again (seek to the start).
      if (position.offset >= 0n) c.seek(position);
      else if (o.autoOffsetReset === 'earliest') c.seek({ ...position, offset: 0n });
    }
    // The new tasks know their partitions again (those of the old ones went with them).
    this.assigned([...this.#orderedAssigned.values()].filter((tp) => still.has(`${tp.topic}:${tp.partition}`)));
    o.onReleased();
    o.log.warn({ reason, partitions: assigned.length }, 'in-flight work dropped; partitions rewound to their committed offsets');
  }

  /** At-least-once revocation: drops the revoked partitions' in-flight records, uncommitted (the new owner redoes them). */
  revoke(revoked: readonly TopicPartition[]): void {
    this.unassigned(revoked);
    for (const tp of revoked) {
      const task = this.#taskFor(tp, false);
      if (!task) continue;
      this.#setInFlight(-task.closePartition(tp.topic));
      if (task.empty) {
        this.#tasks.delete(taskIdText(task.id));
        this.#holding.delete(task);
      }
    }
  }

  /** The record not yet released that has waited longest, and for how long (ms). */
  oldestInFlight(): { entry: InFlightRecord; age: number } | undefined {
    const now = Date.now();
    let oldest: InFlightRecord | undefined;
    for (const task of this.#tasks.values()) {
      const entry = task.oldest();
      if (entry && (!oldest || entry.at < oldest.at)) oldest = entry;
    }
    return oldest && { entry: oldest, age: now - oldest.at };
  }
}
