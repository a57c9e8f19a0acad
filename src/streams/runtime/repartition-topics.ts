/**
 * Repartition topics: the runner creates them (Kafka Streams does too) with as many partitions
 * as the largest input topic of the sub-topology that writes them, and purges what its tasks
 * consumed and committed (`deleteRecords`), so they hold only records still to process.
 */
import type { KafkaAdmin, TopicPartitionOffset } from '../../kafka/types.ts';
import type { Topology } from '../api/topology.ts';

/** Creates the topology's repartition topics that do not exist; returns their names. */
export async function createRepartitionTopics(admin: KafkaAdmin, topology: Topology, applicationId: string): Promise<string[]> {
  const repartition = topology.internalTopics(applicationId).filter((t) => t.kind === 'repartition');
  if (repartition.length === 0) return [];
  const internal = new Set(repartition.map((t) => t.name));
  const external = topology.inputTopics.filter((t) => !internal.has(t));
  const partitions = new Map((await admin.describeTopics(external)).map((d) => [d.topic, d.partitions]));
  // Sub-topologies in order: one that reads a repartition topic comes after the one writing it.
  const wanted: { topic: string; partitions: number }[] = [];
  for (const st of topology.subtopologies) {
    const n = Math.max(1, ...st.inputTopics.map((t) => partitions.get(t) ?? 1));
    for (const t of repartition.filter((r) => r.subtopology === st.id)) {
      partitions.set(t.name, n);
      wanted.push({ topic: t.name, partitions: n });
    }
  }
  await admin.createTopics(wanted, { ifNotExists: true });
  return [...internal];
}

/** Deletes the records of repartition topics below the offsets just committed (at most one call in flight). */
export function createRepartitionPurger(admin: () => KafkaAdmin | undefined, topics: ReadonlySet<string>, onError: (e: unknown) => void) {
  let running: Promise<void> | undefined;
  return (committed: readonly TopicPartitionOffset[]): void => {
    const a = admin();
    if (!a || running || topics.size === 0) return;
    const offsets = committed.filter((o) => topics.has(o.topic));
    if (offsets.length === 0) return;
    running = a
      .deleteRecords(offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset })))
      .then(() => undefined, onError)
      .finally(() => {
        running = undefined;
      });
  };
}
