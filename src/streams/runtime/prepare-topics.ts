/**
 * The topics a runner needs before it starts: the user's (input, table, output and dead-letter
 * topics) must exist; the internal ones are created by the runner — repartition topics, and the
 * changelog topics of the stores (compacted, one partition per task of the store's
 * sub-topology: a task writes its own partition).
 */
import { InflowError } from '../../errors.ts';
import { type ConnectionMonitor, retryTransient } from '../../kafka/connection.ts';
import type { KafkaAdmin } from '../../kafka/types.ts';
import type { Topology } from '../api/topology.ts';
import { createRepartitionTopics } from './repartition-topics.ts';

/**
 * Creates the repartition topics and checks that every other topic the topology reads or writes
 * exists (KAFKA_TOPIC_NOT_FOUND naming the missing ones otherwise). A broker still booting (or
 * away) is waited for, not taken for a missing topic. Returns the internal topics.
 */
export async function prepareTopics(
  admin: KafkaAdmin,
  topology: Topology,
  o: {
    readonly applicationId: string;
    readonly dlqTopic: string | undefined;
    readonly signal: AbortSignal;
    readonly monitor?: ConnectionMonitor;
  },
): Promise<Set<string>> {
  const existing = new Set(
    await retryTransient(() => admin.listTopics(), { signal: o.signal, ...(o.monitor ? { monitor: o.monitor } : {}) }),
  );
  const tableTopics = [...topology.globalTables.values()].map((g) => g.topic);
  // The runner creates the repartition topics; the others are the user's.
  const internal = new Set(await createRepartitionTopics(admin, topology, o.applicationId));
  const missing = [
    ...topology.inputTopics,
    ...tableTopics,
    ...topology.outputTopics,
    ...(o.dlqTopic === undefined ? [] : [o.dlqTopic]),
  ].filter((t) => !existing.has(t) && !internal.has(t));
  if (missing.length > 0) {
    throw new InflowError(
      'KAFKA_TOPIC_NOT_FOUND',
      `topics missing: ${missing.join(', ')}; create them first (the pipeline does not create topics)`,
    );
  }
  await checkCopartitioned(admin, topology);
  return internal;
}

/**
 * A task reads partition p of each input topic of its sub-topology (a stream-stream join, a
 * co-partitioned table): with unequal partition counts some partitions would have no partner and
 * keys would meet the wrong partition's state, so a start with them is refused (INVALID_CONFIG)
 * naming the topics and their counts (Kafka Streams' TopologyException "Topics not co-partitioned").
 */
export async function checkCopartitioned(admin: KafkaAdmin, topology: Topology): Promise<void> {
  // Sources joined by a join or a shared store; one source reading several topics merges them, no partner needed.
  const groups = topology.subtopologies.filter((s) => s.sources.length > 1 && s.inputTopics.length > 1);
  if (groups.length === 0) return;
  const described = await admin.describeTopics([...new Set(groups.flatMap((s) => s.inputTopics))]);
  const partitionsOf = new Map(described.map((d) => [d.topic, d.partitions]));
  for (const st of groups) {
    const counts = st.inputTopics.map((t) => `"${t}" (${partitionsOf.get(t) ?? '?'} partitions)`);
    if (new Set(st.inputTopics.map((t) => partitionsOf.get(t))).size > 1) {
      throw new InflowError(
        'INVALID_CONFIG',
        `topics ${counts.join(', ')} are joined in sub-topology ${st.id}, whose task p reads partition p of each, so they must have the same number of partitions (and be keyed alike); repartition one of them, or use a global table for small reference data`,
      );
    }
  }
}

/**
 * Creates each store's compacted changelog topic with as many partitions as its
 * sub-topology's input; existing ones are left alone, but one with fewer partitions than the
 * input is refused (FAILED_PRECONDITION): tasks would lose their state.
 */
export async function createChangelogTopics(admin: KafkaAdmin, topology: Topology, applicationId: string): Promise<void> {
  const changelogs = topology.internalTopics(applicationId).filter((t) => t.kind === 'changelog');
  if (changelogs.length === 0) return;
  const inputs = await admin.describeTopics([...topology.inputTopics]);
  const partitionsOf = new Map(inputs.map((d) => [d.topic, d.partitions]));
  const wanted = changelogs.map((c) => {
    const st = topology.subtopologies[c.subtopology];
    const partitions = Math.max(...(st?.inputTopics ?? []).map((t) => partitionsOf.get(t) ?? 1), 1);
    return { topic: c.name, partitions, configs: { 'cleanup.policy': 'compact' } };
  });
  await admin.createTopics(wanted);
  for (const d of await admin.describeTopics(wanted.map((w) => w.topic))) {
    const want = wanted.find((w) => w.topic === d.topic)?.partitions ?? 0;
    if (d.partitions < want) {
      throw new InflowError(
        'FAILED_PRECONDITION',
        `changelog topic "${d.topic}" has ${d.partitions} partitions but its input has ${want}: delete it (the state is rebuilt) or give it ${want}`,
      );
    }
  }
}
