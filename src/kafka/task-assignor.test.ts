import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AssignorMember, assignTasks } from './task-assignor.ts';
import type { TopicPartition } from './types.ts';

const key = (p: TopicPartition): string => `${p.topic}-${p.partition}`;
const keys = (ps: readonly TopicPartition[] | undefined): string[] => (ps ?? []).map(key).sort();

function member(memberId: string, owned: readonly TopicPartition[] = [], topics = ['clicks', 'views', 'other']): AssignorMember {
  return { memberId, topics, owned, copartitioned: [['clicks', 'views']] };
}

const partitions = new Map([
  ['clicks', 4],
  ['views', 4],
  ['other', 2],
]);

describe('task assignor', () => {
  it('gives partition p of co-partitioned topics to one member, every partition once, tasks balanced', () => {
    const out = assignTasks([member('b'), member('a'), member('c')], partitions);
    const all = [...out.values()].flat().map(key).sort();
    assert.deepEqual(all, [...partitions].flatMap(([t, n]) => Array.from({ length: n }, (_, p) => `${t}-${p}`)).sort());
    for (const ps of out.values()) {
      const clicks = ps.filter((p) => p.topic === 'clicks').map((p) => p.partition);
      const views = ps.filter((p) => p.topic === 'views').map((p) => p.partition);
      assert.deepEqual(clicks.sort(), views.sort(), 'clicks and views partitions travel together');
    }
    // 6 tasks (4 co-partitioned + 2 of "other") over 3 members: 2 each.
    const tasks = [...out.values()].map((ps) => ps.filter((p) => p.topic !== 'views').length);
    assert.deepEqual(tasks, [2, 2, 2]);
    assert.deepEqual(assignTasks([member('c'), member('a'), member('b')], partitions), out, 'the same for any member order');
  });

  it('keeps each task with its owner when a member leaves or joins, moving only what balance needs', () => {
    const three = assignTasks([member('a'), member('b'), member('c')], partitions);
    const owned = (id: string): TopicPartition[] => three.get(id) ?? [];
    // c leaves: a and b keep everything they had and share c's tasks.
    const two = assignTasks([member('a', owned('a')), member('b', owned('b'))], partitions);
    for (const id of ['a', 'b']) for (const p of owned(id)) assert.ok(keys(two.get(id)).includes(key(p)), `${id} kept ${key(p)}`);
    // d joins the two: it takes two tasks; everything else stays where it was.
    const again = assignTasks([member('a', two.get('a')), member('b', two.get('b')), member('d')], partitions);
    const moved = [...again].flatMap(([id, ps]) => ps.filter((p) => !keys(two.get(id)).includes(key(p))).map(key));
    assert.deepEqual(moved.sort(), keys(again.get('d')));
    assert.equal(again.get('d')?.filter((p) => p.topic !== 'views').length, 2);
  });

  it('assigns a topic only to members that subscribe to it', () => {
    const out = assignTasks([member('a', [], ['other']), member('b', [], ['clicks', 'views'])], partitions);
    assert.deepEqual(keys(out.get('a')), ['other-0', 'other-1']);
    assert.equal(out.get('b')?.length, 8);
  });
});
