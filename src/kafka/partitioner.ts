/**
 * Key → partition exactly like Kafka's Java client (BuiltInPartitioner.partitionForKey:
 * `toPositive(murmur2(key)) % numPartitions`), so inflow co-partitions with Kafka Streams and
 * every Java producer. Note @platformatic/kafka's own default uses `>>> 0` instead of
 * `& 0x7fffffff` and sends null keys to partition 0; we never rely on it.
 */
import { murmur2 } from '@platformatic/kafka';

/** Partition of a non-null key among `partitions` partitions. */
export function partitionForKey(key: Buffer, partitions: number): number {
  return (murmur2(key, false) & 0x7fffffff) % partitions;
}

/** Spreads null-key records round-robin per topic (no hot partition). */
export function createRoundRobin(): (topic: string, partitions: number) => number {
  const next = new Map<string, number>();
  return (topic, partitions) => {
    const n = next.get(topic) ?? 0;
    next.set(topic, (n + 1) % 1_000_000_007);
    return n % partitions;
  };
}
