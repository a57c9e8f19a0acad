/**
 * The task assignor (../task-assignor.ts) as @platformatic/kafka's partition assigner. Each
 * member sends, as the user data of its JoinGroup subscription, the partitions it owns and the
 * topics it declares co-partitioned; the group leader assigns from those. The protocol is named
 * `inflow-tasks`; `roundrobin` is offered second, so a group that still has members of another
 * client agrees on that one (the leader, if an inflow member, still assigns with this one).
 */
import type { ClusterMetadata, GroupPartitionsAssigner, GroupProtocolSubscription } from '@platformatic/kafka';
import { type AssignorMember, assignTasks } from '../task-assignor.ts';
import type { TopicPartition } from '../types.ts';

export const TASK_ASSIGNOR_PROTOCOL = 'inflow-tasks';

/** The protocols a member offers, preferred first. */
export const GROUP_PROTOCOLS: GroupProtocolSubscription[] = [
  { name: TASK_ASSIGNOR_PROTOCOL, version: 1 },
  { name: 'roundrobin', version: 1 },
];

interface UserData {
  readonly owned: readonly TopicPartition[];
  readonly copartitioned: readonly (readonly string[])[];
  /** The member's query address (ConsumerOptions.applicationServer). */
  readonly applicationServer?: string;
}

/** The user data a member sends with its subscription. */
export function encodeUserData(data: UserData): Buffer {
  return Buffer.from(
    JSON.stringify({
      v: 1,
      owned: data.owned,
      copartitioned: data.copartitioned,
      ...(data.applicationServer === undefined ? {} : { applicationServer: data.applicationServer }),
    }),
  );
}

/** Decodes a member's user data; a member of another client (or garbage) owns nothing and declares nothing. */
export function decodeUserData(raw: Buffer | string | undefined | null): UserData {
  const none: UserData = { owned: [], copartitioned: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.isBuffer(raw) ? raw.toString('utf8') : (raw ?? ''));
  } catch {
    return none;
  }
  if (typeof parsed !== 'object' || parsed === null || (parsed as { v?: unknown }).v !== 1) return none;
  const { owned, copartitioned, applicationServer } = parsed as { owned?: unknown; copartitioned?: unknown; applicationServer?: unknown };
  const isPartition = (p: unknown): p is TopicPartition =>
    typeof p === 'object' &&
    p !== null &&
    typeof (p as { topic?: unknown }).topic === 'string' &&
    Number.isInteger((p as { partition?: unknown }).partition);
  const isGroup = (g: unknown): g is string[] => Array.isArray(g) && g.every((t) => typeof t === 'string');
  return {
    owned: Array.isArray(owned) ? owned.filter(isPartition) : [],
    copartitioned: Array.isArray(copartitioned) ? copartitioned.filter(isGroup) : [],
    ...(typeof applicationServer === 'string' ? { applicationServer } : {}),
  };
}

/** The assigner the group leader runs. */
export const taskPartitionAssigner: GroupPartitionsAssigner = (_current, members, topics, metadata: ClusterMetadata) => {
  const list: AssignorMember[] = [...members.values()].map((m) => {
    const data = decodeUserData(m.metadata);
    return { memberId: m.memberId, topics: m.topics ?? [...topics], owned: data.owned, copartitioned: data.copartitioned };
  });
  const partitions = new Map<string, number>();
  for (const t of topics) {
    const count = metadata.topics.get(t)?.partitionsCount;
    if (count !== undefined) partitions.set(t, count);
  }
  return [...assignTasks(list, partitions)].map(([memberId, assigned]) => {
    const byTopic = new Map<string, { topic: string; partitions: number[] }>();
    for (const p of assigned) {
      const entry = byTopic.get(p.topic) ?? { topic: p.topic, partitions: [] };
      entry.partitions.push(p.partition);
      byTopic.set(p.topic, entry);
    }
    return { memberId, assignments: byTopic };
  });
};
