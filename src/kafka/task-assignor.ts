/**
 * The partition assignor of inflow's consumer groups, on Apache Kafka and on the in-process log
 * alike: task-aware, co-partitioning and sticky (after Kafka Streams' StreamsPartitionAssignor,
 * simplified).
 *
 * - **Tasks**: topics a member declares co-partitioned (the input topics of one sub-topology)
 *   form a group; partition p of every topic of a group is one task and goes to one member, so
 *   records with the same key in those topics meet in one task. Any other topic's partition is a
 *   task of its own.
 * - **Balanced**: every member gets ⌊tasks / members⌋ or one more (members that subscribe to
 *   only some topics get tasks of those only).
 * - **Sticky**: a task stays with the member that owned it, as far as balance allows, so a
 *   member joining or leaving moves only the tasks it must (state stays where it is).
 * Deterministic: every member computes the same result from the same input.
 */
import type { TopicPartition } from './types.ts';

export interface AssignorMember {
  readonly memberId: string;
  readonly topics: readonly string[];
  /** Partitions the member owned before this rebalance. */
  readonly owned: readonly TopicPartition[];
  /** Groups of co-partitioned topics the member declares. */
  readonly copartitioned: readonly (readonly string[])[];
}

/** One task: partition `partition` of every topic in `topics`. */
interface Task {
  readonly key: string;
  readonly topics: readonly string[];
  readonly partition: number;
}

/** Tasks of the subscribed topics: co-partitioned groups first (in declared order), then single topics. */
function tasksOf(members: readonly AssignorMember[], partitions: ReadonlyMap<string, number>): Task[] {
  const subscribed = [...new Set(members.flatMap((m) => m.topics))].filter((t) => partitions.has(t)).sort();
  const grouped = new Map<string, string[]>();
  for (const m of members) {
    for (const group of m.copartitioned) {
      const topics = [...new Set(group)].filter((t) => subscribed.includes(t)).sort();
      if (topics.length < 2 || topics.some((t) => grouped.has(t))) continue;
      for (const t of topics) grouped.set(t, topics);
    }
  }
  const groups: string[][] = [];
  for (const t of subscribed) {
    const g = grouped.get(t);
    if (!g) groups.push([t]);
    else if (g[0] === t) groups.push(g);
  }
  const tasks: Task[] = [];
  for (const topics of groups) {
    const count = Math.max(...topics.map((t) => partitions.get(t) ?? 0));
    for (let p = 0; p < count; p++) {
      const present = topics.filter((t) => p < (partitions.get(t) ?? 0));
      tasks.push({ key: `${present.join(',')}#${p}`, topics: present, partition: p });
    }
  }
  return tasks;
}

/** Assigns every partition of the subscribed topics; returns each member's partitions. */
export function assignTasks(members: readonly AssignorMember[], partitions: ReadonlyMap<string, number>): Map<string, TopicPartition[]> {
  const sorted = [...members].sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0));
  const result = new Map<string, TopicPartition[]>(sorted.map((m) => [m.memberId, []]));
  const load = new Map<string, number>(sorted.map((m) => [m.memberId, 0]));
  const tasks = tasksOf(sorted, partitions);
  const eligible = (task: Task): AssignorMember[] => sorted.filter((m) => task.topics.every((t) => m.topics.includes(t)));
  // Every member holds `base` tasks or one more; `extra` members hold one more.
  const base = Math.floor(tasks.length / Math.max(1, sorted.length));
  let extra = tasks.length - base * sorted.length;
  const give = (task: Task, memberId: string): void => {
    const list = result.get(memberId) as TopicPartition[];
    for (const topic of task.topics) list.push({ topic, partition: task.partition });
    load.set(memberId, (load.get(memberId) ?? 0) + 1);
  };
  const previousOwner = (task: Task): string | undefined => {
    // The member that owned most of the task's partitions (all of them, normally).
    let best: string | undefined;
    let most = 0;
    for (const m of sorted) {
      const n = m.owned.filter((o) => o.partition === task.partition && task.topics.includes(o.topic)).length;
      if (n > most) {
        most = n;
        best = m.memberId;
      }
    }
    return best;
  };
  // Sticky: owners keep their tasks up to `base`, then up to one more while extra slots last.
  const owners = new Map(tasks.map((t) => [t, previousOwner(t)]));
  const keeps = (task: Task, owner: string | undefined): owner is string =>
    owner !== undefined && eligible(task).some((m) => m.memberId === owner);
  let left: Task[] = [];
  for (const task of tasks) {
    const owner = owners.get(task);
    if (keeps(task, owner) && (load.get(owner) ?? 0) < base) give(task, owner);
    else left.push(task);
  }
  const rest: Task[] = [];
  for (const task of left) {
    const owner = owners.get(task);
    if (keeps(task, owner) && extra > 0 && (load.get(owner) ?? 0) === base) {
      give(task, owner);
      extra--;
    } else rest.push(task);
  }
  left = rest;
  for (const task of left) {
    const candidates = eligible(task);
    if (candidates.length === 0) continue;
    let target = candidates[0] as AssignorMember;
    for (const m of candidates) if ((load.get(m.memberId) ?? 0) < (load.get(target.memberId) ?? 0)) target = m;
    give(task, target.memberId);
  }
  return result;
}
