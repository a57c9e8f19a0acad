/**
 * Keeps newly assigned partitions whose tasks have state stores paused until those stores are
 * restored from their changelogs (issue 17): records of a task are processed only against its
 * complete state. Only those partitions are paused (reason `restoring`), each until its own task
 * is restored; the other tasks keep flowing.
 */
import { InflowError } from '../../errors.ts';
import type { TopicPartition } from '../../kafka/types.ts';
import { type PauseController, PauseReason } from './pause-controller.ts';
import type { StreamsMetrics } from './streams-metrics.ts';
import type { TaskStores } from './task-stores.ts';

export interface RestorePauserOptions {
  readonly stores: TaskStores;
  /** The runner's pause controller (there once the consumer is). */
  readonly pauses: () => PauseController | undefined;
  readonly metrics: StreamsMetrics;
  readonly labels: { readonly pipeline: string };
  /** Restored partitions can be polled again: wakes the poll loop. */
  readonly wake: () => void;
  /** A restore failed for a reason other than cancellation. */
  readonly fail: (error: InflowError) => void;
}

/** Returns the handler of newly assigned partitions. */
export function createRestorePauser(o: RestorePauserOptions): (added: readonly TopicPartition[]) => void {
  const { stores, metrics, labels } = o;
  return (added) => {
    const stateful = added.filter((p) => stores.stateful(p.topic));
    if (stateful.length === 0) return;
    o.pauses()?.pause(stateful, PauseReason.RESTORING);
    metrics.pausedPartitions.set(labels, o.pauses()?.size ?? 0);
    // Each partition resumes when its own task is restored, not when the slowest task of the
    // assignment is (a task's partitions share its restore, so they resume together).
    for (const tp of stateful) {
      stores.assigned([tp]).then(
        () => {
          o.pauses()?.resume([tp], PauseReason.RESTORING);
          metrics.pausedPartitions.set(labels, o.pauses()?.size ?? 0);
          o.wake();
        },
        (error: unknown) => {
          // A revoked partition or a stop cancels its restore: nothing to do.
          if (InflowError.from(error).code === 'CANCELLED') return;
          o.fail(
            new InflowError(InflowError.from(error, 'KAFKA_ERROR').code, `restoring state stores failed: ${(error as Error).message}`, {
              cause: error,
            }),
          );
        },
      );
    }
  };
}
