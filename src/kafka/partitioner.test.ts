import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { murmur2 } from '@platformatic/kafka';
import { createRoundRobin, partitionForKey } from './partitioner.ts';

describe('partitionForKey', () => {
  // Test vectors from Kafka's own UtilsTest.testMurmur2 (signed 32-bit results).
  const vectors: Array<[string, number]> = [
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
  ];

  it('hashes like Kafka Utils.murmur2', () => {
    for (const [key, expected] of vectors) {
      assert.equal(murmur2(Buffer.from(key), false) | 0, expected, key);
    }
  });

  it('maps keys to partitions like the Java client (toPositive(murmur2) % n)', () => {
    for (const [key, hash] of vectors) {
      assert.equal(partitionForKey(Buffer.from(key), 7), (hash & 0x7fffffff) % 7, key);
    }
  });

  it('spreads null keys round-robin per topic', () => {
    const next = createRoundRobin();
    assert.deepEqual([next('a', 3), next('a', 3), next('a', 3), next('a', 3), next('b', 3)], [0, 1, 2, 0, 0]);
  });
});
