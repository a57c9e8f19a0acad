/**
 * The poll loop (Kafka Streams' `StreamThread`): polls the consumer, hands records to the task
 * manager, runs the rewinds it asks for between two polls (so no poll overlaps a seek), and
 * applies backpressure: at most `maxInFlight` records are between poll() and their
 * acknowledgement; beyond that every partition is paused while poll() goes on (heartbeats and
 * rebalances keep working, so a slow model never causes a rebalance storm), and resumed at half
 * the budget.
 */
import { InflowError } from '../../errors.ts';
import type { ConsumedRecord, KafkaConsumer, TopicPartition } from '../../kafka/types.ts';
import type { Logger } from '../../observability/logger.ts';
import { type PauseController, PauseReason } from './pause-controller.ts';
import type { StreamsMetrics } from './streams-metrics.ts';
import type { TaskManager } from './task-manager.ts';

export interface StreamThreadOptions {
  readonly consumer: KafkaConsumer;
  readonly tasks: TaskManager;
  readonly pauses: PauseController;
  readonly maxInFlight: number;
  readonly maxPollRecords: number;
  readonly metrics: StreamsMetrics;
  readonly labels: { readonly pipeline: string };
  readonly log: Logger;
  /** A fatal error: the runner stops. */
  onFatal(error: unknown): void;
}

export class StreamThread {
  readonly #o: StreamThreadOptions;
  readonly #stop = new AbortController();
  /** Aborts the poll in progress, so the loop runs a requested rewind at once. */
  #wake: AbortController | undefined;
  #loop: Promise<void> | undefined;

  constructor(options: StreamThreadOptions) {
    this.#o = options;
  }

  /** Whether the loop was started. */
  get started(): boolean {
    return this.#loop !== undefined;
  }

  /** Starts the loop; it runs until {@link stop}. */
  start(): void {
    this.#loop = this.#run();
  }

  /** Stops polling (the poll in progress returns at once); settles when the loop ended. */
  stop(): Promise<void> {
    this.#stop.abort();
    return this.#loop ?? Promise.resolve();
  }

  /** Ends the poll in progress early, so a requested rewind runs now. */
  wake(): void {
    this.#wake?.abort();
  }

  /** Pauses every partition once the in-flight budget is spent. */
  applyBackpressure(): void {
    const { tasks, pauses, maxInFlight } = this.#o;
    if (pauses.active(PauseReason.BACKPRESSURE) || tasks.inFlight < maxInFlight) return;
    pauses.pauseAll(PauseReason.BACKPRESSURE);
    this.#o.metrics.pausedPartitions.set(this.#o.labels, pauses.size);
  }

  /**
   * Partitions assigned while backpressure holds are paused before any poll: unpaused, each
   * poll would take records from them past the budget (seen: 123 in flight with a budget of 16
   * after a member joined and left while the model was stuck).
   */
  onAssigned(partitions: readonly TopicPartition[]): void {
    this.#o.pauses.assigned(partitions);
    this.#o.metrics.pausedPartitions.set(this.#o.labels, this.#o.pauses.size);
  }

  /** Revoked partitions leave the consumer with their pause. */
  onRevoked(partitions: readonly TopicPartition[]): void {
    this.#o.pauses.forget(partitions);
    this.#o.metrics.pausedPartitions.set(this.#o.labels, this.#o.pauses.size);
  }

  /** Resumes once in-flight records fell to half the budget. */
  maybeResume(): void {
    const { tasks, pauses, maxInFlight } = this.#o;
    if (!pauses.active(PauseReason.BACKPRESSURE) || tasks.inFlight > maxInFlight / 2) return;
    pauses.resumeAll(PauseReason.BACKPRESSURE);
    this.#o.metrics.pausedPartitions.set(this.#o.labels, pauses.size);
  }

  async #run(): Promise<void> {
    const { consumer, tasks, maxInFlight, maxPollRecords, log } = this.#o;
    const stopped = this.#stop.signal;
    let waitUntil: number | undefined;
    while (!stopped.aborted) {
      const reason = tasks.rewindReason;
      if (reason !== undefined) {
        await tasks.exclusive(() => tasks.rewind(reason)).catch((r: unknown) => this.#o.onFatal(r));
        continue;
      }
      this.applyBackpressure();
      const room = maxInFlight - tasks.inFlight;
      let records: ConsumedRecord[];
      // One plain controller per poll, woken by a stop through a listener removed after the poll:
      // an AbortSignal.any() per poll is held weakly by `stopped` and finalized only by a full GC,
      // so hundreds of polls a second fed the old generation (see predict-batcher.ts).
      const wake = new AbortController();
      this.#wake = wake;
      const onStop = (): void => wake.abort();
      stopped.addEventListener('abort', onStop, { once: true });
      // A task waiting for an idle partition (max.task.idle.ms) goes on when its wait ends, not at the next poll's end.
      const timeoutMs = waitUntil === undefined ? 200 : Math.max(1, Math.min(200, Math.ceil(waitUntil - tasks.now())));
      try {
        records = await consumer.poll({
          maxRecords: Math.max(1, Math.min(maxPollRecords, room)),
          timeoutMs,
          signal: wake.signal,
        });
      } catch (e) {
        const err = InflowError.from(e, 'KAFKA_ERROR');
        if (stopped.aborted) return;
        // The client rides out outages itself; what reaches here retriable is a one-off.
        if (err.retriable) {
          log.warn({ code: err.code, err: err.message }, 'poll failed; retrying');
          continue;
        }
        this.#o.onFatal(err);
        return;
      } finally {
        stopped.removeEventListener('abort', onStop);
      }
      for (const r of records) tasks.admit(r);
      // Tasks reading several partitions process what they hold in timestamp order, once the whole poll is in.
      waitUntil = tasks.processReady();
    }
  }
}
