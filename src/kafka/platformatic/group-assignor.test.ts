import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClusterMetadata, ExtendedGroupProtocolSubscription } from '@platformatic/kafka';
import { decodeUserData, encodeUserData, taskPartitionAssigner } from './group-assignor.ts';

describe('the task assignor as the Kafka client library sees it', () => {
  it('round-trips the user data and reads another client’s (or garbage) as owning nothing', () => {
    const data = { owned: [{ topic: 'a', partition: 1 }], copartitioned: [['a', 'b']] };
    assert.deepEqual(decodeUserData(encodeUserData(data)), data);
    for (const raw of [undefined, null, '', Buffer.from([0, 1, 2]), Buffer.from('{"v":2}'), Buffer.from('{"v":1,"owned":[{"topic":3}]}')]) {
      assert.deepEqual(decodeUserData(raw), { owned: [], copartitioned: [] });
    }
  });

  it('assigns co-partitioned topics together from the members’ subscriptions, sticky to what each owns', () => {
    const member = (memberId: string, owned: { topic: string; partition: number }[]): ExtendedGroupProtocolSubscription => ({
      memberId,
      version: 1,
      topics: ['a', 'b'],
      metadata: encodeUserData({ owned, copartitioned: [['a', 'b']] }),
    });
    const members = new Map([
      ['m1', member('m1', [])],
      [
        'm2',
        member('m2', [
          { topic: 'a', partition: 0 },
          { topic: 'b', partition: 0 },
        ]),
      ],
    ]);
    const metadata = {
      topics: new Map([
        ['a', { partitionsCount: 2 }],
        ['b', { partitionsCount: 2 }],
      ]),
    } as unknown as ClusterMetadata;
    const out = taskPartitionAssigner('m1', members, new Set(['a', 'b']), metadata);
    const of = (id: string) => [...(out.find((o) => o.memberId === id)?.assignments.values() ?? [])].map((g) => [g.topic, g.partitions]);
    assert.deepEqual(of('m2'), [
      ['a', [0]],
      ['b', [0]],
    ]);
    assert.deepEqual(of('m1'), [
      ['a', [1]],
      ['b', [1]],
    ]);
  });
});
