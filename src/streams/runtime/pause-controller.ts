/**
 * Which partitions are paused, and why. A partition can be paused for several reasons at once
 * (backpressure now; restoring its stores, an outage of its output later) and is resumed on
 * the consumer only when its last reason is lifted — so one part of the runtime cannot resume
 * what another paused.
 */
import type { KafkaConsumer, TopicPartition } from '../../kafka/types.ts';
import { partitionKey } from '../../kafka/types.ts';

export const PauseReason = {
  /** Too many records between poll() and their acknowledgement. */
  BACKPRESSURE: 'backpressure',
  /** Its task's stores are being restored from their changelogs. */
  RESTORING: 'restoring',
} as const;
export type PauseReason = (typeof PauseReason)[keyof typeof PauseReason];

export interface PauseController {
  /** Pauses `partitions` for `reason` (on the consumer, those not yet paused). */
  pause(partitions: readonly TopicPartition[], reason: PauseReason): void;
  /** Lifts `reason` from `partitions`; those left without a reason resume on the consumer. */
  resume(partitions: readonly TopicPartition[], reason: PauseReason): void;
  /** Pauses every assigned partition for `reason`. */
  pauseAll(reason: PauseReason): void;
  /** Lifts `reason` from every partition. */
  resumeAll(reason: PauseReason): void;
  /** Whether `reason` holds for some partition (pauseAll ran and resumeAll did not yet). */
  active(reason: PauseReason): boolean;
  /** Forgets partitions no longer assigned (the consumer forgot their pause with them). */
  forget(partitions: readonly TopicPartition[]): void;
  /** Newly assigned partitions: paused at once for every reason that holds for all partitions. */
  assigned(partitions: readonly TopicPartition[]): void;
  /** Partitions paused for at least one reason. */
  readonly size: number;
}

export function createPauseController(consumer: KafkaConsumer): PauseController {
  const reasons = new Map<string, { tp: TopicPartition; why: Set<PauseReason> }>();
  const active = new Set<PauseReason>();

  const controller: PauseController = {
    pause(partitions, reason) {
      const fresh: TopicPartition[] = [];
      for (const tp of partitions) {
        const key = partitionKey(tp.topic, tp.partition);
        let entry = reasons.get(key);
        if (!entry) {
          entry = { tp: { topic: tp.topic, partition: tp.partition }, why: new Set() };
          reasons.set(key, entry);
        }
        if (entry.why.size === 0) fresh.push(tp);
        entry.why.add(reason);
      }
      if (fresh.length > 0) consumer.pause(fresh);
    },
    resume(partitions, reason) {
      const free: TopicPartition[] = [];
      for (const tp of partitions) {
        const key = partitionKey(tp.topic, tp.partition);
        const entry = reasons.get(key);
        if (!entry?.why.delete(reason)) continue;
        if (entry.why.size === 0) {
          reasons.delete(key);
          free.push(entry.tp);
        }
      }
      if (free.length > 0) consumer.resume(free);
    },
    pauseAll(reason) {
      active.add(reason);
      controller.pause(consumer.assignment(), reason);
    },
    resumeAll(reason) {
      active.delete(reason);
      controller.resume(
        [...reasons.values()].map((e) => e.tp),
        reason,
      );
    },
    active: (reason) => active.has(reason),
    forget(partitions) {
      for (const tp of partitions) reasons.delete(partitionKey(tp.topic, tp.partition));
    },
    assigned(partitions) {
      for (const reason of active) controller.pause(partitions, reason);
    },
    get size() {
      return reasons.size;
    },
  };
  return controller;
}
