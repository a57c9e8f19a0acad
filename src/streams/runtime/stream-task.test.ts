import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConsumedRecord } from '../../kafka/types.ts';
import { type NextRecord, StreamTask } from './stream-task.ts';

function rec(topic: string, offset: number, timestamp: number): ConsumedRecord {
  return { topic, partition: 0, offset: BigInt(offset), timestamp, key: null, value: null, headers: [] };
}

/** `topic@offset` of each record `next` hands out at `now`, until it answers a wait or nothing. */
function drain(task: StreamTask, now: number): { order: string[]; last: NextRecord } {
  const order: string[] = [];
  for (;;) {
    const next = task.next(now);
    if (next.entry === undefined) return { order, last: next };
    order.push(`${next.entry.record.topic}@${next.entry.record.offset}`);
  }
}

describe('timestamp-ordered processing across a task’s partitions', () => {
  it('hands out the head with the smallest timestamp while every partition holds records, and moves stream time with them', () => {
    const task = new StreamTask({ subtopology: 0, partition: 0 }, { maxIdleMs: 1000 });
    for (const [o, ts] of [
      [0, 10],
      [1, 40],
      [2, 50],
    ] as const)
      task.admit(rec('left', o, ts));
    for (const [o, ts] of [
      [0, 20],
      [1, 30],
      [2, 60],
    ] as const)
      task.admit(rec('right', o, ts));
    assert.equal(task.streamTime, -1, 'held records do not move stream time');
    const { order, last } = drain(task, 0);
    // After left@2 (50) the left partition is empty: right@2 (60) waits for it.
    assert.deepEqual(order, ['left@0', 'right@0', 'right@1', 'left@1', 'left@2']);
    assert.equal(task.streamTime, 50);
    assert.deepEqual(last, { wakeAt: 1000 });
  });

  it('waits maxIdleMs for a partition that holds nothing, then processes the others without it until it holds records again', () => {
    const task = new StreamTask({ subtopology: 0, partition: 0 }, { maxIdleMs: 500 });
    task.queue('right'); // assigned, nothing delivered yet
    task.admit(rec('left', 0, 100));
    task.admit(rec('left', 1, 200));
    assert.deepEqual(drain(task, 1_000), { order: [], last: { wakeAt: 1_500 } }, 'the wait starts when the empty partition is first seen');
    assert.deepEqual(drain(task, 1_499), { order: [], last: { wakeAt: 1_500 } }, 'the deadline does not move while it waits');
    // The lagging record arrives within the wait: it goes first, by timestamp; then right is
    // empty again and left@1 waits afresh, from now.
    task.admit(rec('right', 0, 150));
    assert.deepEqual(drain(task, 1_499), { order: ['left@0', 'right@0'], last: { wakeAt: 1_999 } });
    assert.deepEqual(drain(task, 1_998), { order: [], last: { wakeAt: 1_999 } });
    assert.deepEqual(drain(task, 1_999), { order: ['left@1'], last: { wakeAt: undefined } }, 'the wait is over: processed alone');
    assert.equal(task.streamTime, 200);
    // Past the deadline, records of the busy partition go at once while the other stays empty.
    task.admit(rec('left', 2, 300));
    assert.deepEqual(drain(task, 2_000).order, ['left@2']);
    // The empty partition delivered again: its next empty spell waits afresh.
    task.admit(rec('right', 1, 310));
    task.admit(rec('left', 3, 320));
    assert.deepEqual(drain(task, 2_001), { order: ['right@1'], last: { wakeAt: 2_501 } });
  });

  it('never waits with maxIdleMs 0, yet orders what is held', () => {
    const task = new StreamTask({ subtopology: 0, partition: 0 }, { maxIdleMs: 0 });
    task.queue('right');
    task.admit(rec('left', 0, 30));
    task.admit(rec('right', 0, 20));
    task.admit(rec('left', 1, 40));
    assert.deepEqual(drain(task, 7), { order: ['right@0', 'left@0', 'left@1'], last: { wakeAt: undefined } });
  });

  it('processes a task with one partition as each record is admitted (nothing held)', () => {
    const task = new StreamTask({ subtopology: 0, partition: 0 });
    const admitted = task.admit(rec('only', 0, 5));
    assert.ok(admitted);
    assert.equal(task.streamTime, 5);
    assert.deepEqual(task.next(0), { wakeAt: undefined });
  });

  it('drops held records with their partition: a revoked partition is no longer waited for', () => {
    const task = new StreamTask({ subtopology: 0, partition: 0 }, { maxIdleMs: 10_000 });
    task.queue('right');
    task.admit(rec('left', 0, 1));
    assert.deepEqual(task.next(0), { wakeAt: 10_000 });
    assert.equal(task.closePartition('right'), 0);
    assert.deepEqual(drain(task, 1).order, ['left@0']);
  });
});
