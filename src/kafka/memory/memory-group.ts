/**
 * A consumer group of the in-process log: members, generations, the same task-aware, sticky,
 * co-partitioning assignment as on Apache Kafka (../task-assignor.ts) and committed offsets. A rebalance bumps the generation;
 * each member picks up its new assignment on its next poll() and runs its rebalance listener
 * there, as the Java consumer does. Commits for a partition the member no longer owns are
 * rejected (KAFKA_REBALANCE), which fences zombie owners.
 */
import { InflowError } from '../../errors.ts';
import { assignTasks } from '../task-assignor.ts';
import type { TopicPartition, TopicPartitionOffset } from '../types.ts';
import { partitionKey } from '../types.ts';

/** What the group needs of the log (kept narrow to avoid a cycle of concrete types). */
export interface GroupLog {
  hasTopic(topic: string): boolean;
  partitionCount(topic: string): number;
  notify(): void;
}

/** A member as the group sees it. */
export interface GroupMember {
  readonly memberId: string;
  readonly topics: readonly string[];
  /** Groups of co-partitioned topics (partition p of each goes to one member). */
  readonly copartitioned?: readonly (readonly string[])[];
  /** The member's query address (ConsumerOptions.applicationServer). */
  readonly applicationServer?: string;
}

export class MemoryGroup {
  readonly groupId: string;
  generation = 0;
  readonly #log: GroupLog;
  readonly #members = new Map<string, GroupMember>();
  readonly #assignment = new Map<string, TopicPartition[]>();
  readonly #owners = new Map<string, string>();
  readonly #committed = new Map<string, TopicPartitionOffset>();
  /** Partitions whose offsets an open transaction holds (sendOffsets before commit or abort). */
  readonly #pending = new Map<object, Set<string>>();

  constructor(groupId: string, log: GroupLog) {
    this.groupId = groupId;
    this.#log = log;
  }

  join(member: GroupMember): void {
    this.#members.set(member.memberId, member);
    this.rebalance();
  }

  leave(memberId: string): void {
    if (this.#members.delete(memberId)) this.rebalance();
  }

  subscribes(topic: string): boolean {
    for (const member of this.#members.values()) if (member.topics.includes(topic)) return true;
    return false;
  }

  /** Members, their query addresses and assignments (what DescribeGroups answers on Kafka). */
  describe(): { memberId: string; applicationServer?: string; assignment: TopicPartition[] }[] {
    return [...this.#members.values()].map((m) => ({
      memberId: m.memberId,
      ...(m.applicationServer === undefined ? {} : { applicationServer: m.applicationServer }),
      assignment: [...(this.#assignment.get(m.memberId) ?? [])],
    }));
  }

  /** Current assignment of a member (empty when it is not in the group). */
  assignmentOf(memberId: string): TopicPartition[] {
    return this.#assignment.get(memberId) ?? [];
  }

  /** Recomputes the assignment (sticky: members keep what they owned as far as balance allows). */
  rebalance(): void {
    this.generation += 1;
    const members = [...this.#members.values()].map((m) => ({
      memberId: m.memberId,
      topics: m.topics,
      owned: this.#assignment.get(m.memberId) ?? [],
      copartitioned: m.copartitioned ?? [],
    }));
    const partitions = new Map<string, number>();
    for (const t of new Set(members.flatMap((m) => m.topics))) if (this.#log.hasTopic(t)) partitions.set(t, this.#log.partitionCount(t));
    this.#assignment.clear();
    this.#owners.clear();
    for (const [memberId, assigned] of assignTasks(members, partitions)) {
      this.#assignment.set(memberId, assigned);
      for (const p of assigned) this.#owners.set(partitionKey(p.topic, p.partition), memberId);
    }
    this.#log.notify();
  }

  /** Validates ownership then commits; `memberId` undefined skips the check (admin, transactions). */
  commit(offsets: readonly TopicPartitionOffset[], memberId?: string): void {
    if (memberId !== undefined) this.assertOwner(offsets, memberId);
    for (const o of offsets) this.#committed.set(partitionKey(o.topic, o.partition), { ...o });
    this.#log.notify();
  }

  assertOwner(partitions: readonly TopicPartition[], memberId: string): void {
    for (const p of partitions) {
      if (this.#owners.get(partitionKey(p.topic, p.partition)) !== memberId) {
        throw new InflowError(
          'KAFKA_REBALANCE',
          `cannot commit ${p.topic}[${p.partition}] for group "${this.groupId}": the partition was reassigned in a rebalance (generation ${this.generation})`,
        );
      }
    }
  }

  /** Records that open transaction `txn` holds offsets of these partitions until releasePending(txn). */
  holdPending(txn: object, partitions: readonly TopicPartition[]): void {
    const held = this.#pending.get(txn) ?? new Set<string>();
    for (const p of partitions) held.add(partitionKey(p.topic, p.partition));
    this.#pending.set(txn, held);
  }

  releasePending(txn: object): void {
    if (this.#pending.delete(txn)) this.#log.notify();
  }

  /** Whether an open transaction holds offsets of one of `partitions` (OffsetFetch would say UNSTABLE_OFFSET_COMMIT). */
  isPending(partitions: readonly TopicPartition[]): boolean {
    for (const held of this.#pending.values()) for (const p of partitions) if (held.has(partitionKey(p.topic, p.partition))) return true;
    return false;
  }

  committed(topic: string, partition: number): bigint {
    return this.#committed.get(partitionKey(topic, partition))?.offset ?? -1n;
  }

  committedOffsets(): TopicPartitionOffset[] {
    return [...this.#committed.values()].map((o) => ({ ...o }));
  }
}
