/**
 * The interactive-query source of a running pipeline (see store-query.ts): its topology's stores,
 * which of their partitions this instance holds now (the consumer's current assignment — a
 * partition handed away in a rebalance stops answering here at once), their committed state from
 * the store provider, and the owner of any other partition from the group's membership (each
 * member advertises its query address, `applicationServer`, in its subscription).
 */
import { InflowError } from '../../errors.ts';
import type { AsyncSerde } from '../../kafka/serdes.ts';
import type { KafkaAdmin, TopicPartition } from '../../kafka/types.ts';
import type { Topology } from '../api/topology.ts';
import { jsonValueSerde, orderedKeySerde } from '../state/key-value-store.ts';
import type { StoreProvider } from '../state/store-provider.ts';
import { createStoreQuery, type QueryableStoreInfo, type StoreQuery } from './store-query.ts';
import { taskIdText } from './stream-task.ts';

export interface RunnerStoreQueryOptions {
  readonly topology: Topology;
  readonly provider: StoreProvider;
  /** The consumer group (the application id). */
  readonly groupId: string;
  /** This instance's advertised query address, if any. */
  readonly applicationServer?: string;
  /** The partitions assigned here now; undefined before the runner joined its group. */
  assignment(): readonly TopicPartition[] | undefined;
  /** The admin client once the runner started. */
  admin(): KafkaAdmin | undefined;
  /** How long a group description is reused for owner lookups, ms. Default 1000. */
  readonly ownersTtlMs?: number;
}

/**
 * Kafka record key bytes of a store key, as the store's input records carry theirs: through the
 * source's key serde (a string key serde refuses a number, so a key of the wrong type is an
 * error, not a miss); without one (bytes), strings as UTF-8 and Buffers as they are.
 */
function recordKeyOf(store: string, serde: AsyncSerde<unknown> | undefined) {
  return async (key: unknown): Promise<Buffer> => {
    const bytes = serde
      ? await serde.serialize(key)
      : typeof key === 'string'
        ? Buffer.from(key, 'utf8')
        : Buffer.isBuffer(key)
          ? key
          : null;
    if (bytes === null) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `store "${store}" is keyed by its input records' keys (${serde?.name ?? 'bytes'}); got ${typeof key}`,
      );
    }
    return bytes;
  };
}

/** A {@link StoreQuery} over a runner's stores. */
export function createRunnerStoreQuery(o: RunnerStoreQueryOptions): StoreQuery {
  const partitionCounts = new Map<string, number>();
  let owners: { at: number; byPartition: Map<string, string> } | undefined;
  const ttl = o.ownersTtlMs ?? 1000;

  const sourceKeySerde = (topic: string): AsyncSerde<unknown> | undefined => {
    for (const n of o.topology.nodes.values()) if (n.kind === 'source' && n.topics.includes(topic)) return n.serdes.key;
    return undefined;
  };
  const stores: QueryableStoreInfo[] = [];
  const topicOf = new Map<string, { topic: string; subtopology: number }>();
  for (const st of o.topology.subtopologies) {
    const topic = st.inputTopics[0];
    if (topic === undefined) continue;
    for (const name of st.stores) {
      const declared = o.topology.stores.get(name);
      topicOf.set(name, { topic, subtopology: st.id });
      stores.push({
        name,
        ...(declared ? { kind: declared.kind } : {}),
        keySerde: declared?.serdes?.key ?? orderedKeySerde,
        valueSerde: declared?.serdes?.value ?? jsonValueSerde,
        partitions: () => partitionCounts.get(topic),
        recordKey: recordKeyOf(name, sourceKeySerde(topic)),
      });
    }
  }

  const query = createStoreQuery({
    stores: () => stores,
    local(store, partition) {
      const at = topicOf.get(store);
      const assigned = o.assignment();
      if (!at || !assigned?.some((tp) => tp.topic === at.topic && tp.partition === partition)) return undefined;
      if (!o.provider.queryable) {
        throw new InflowError('UNIMPLEMENTED', `this pipeline's store provider cannot be queried (it has no committed view)`);
      }
      // Assigned here but nothing written yet: an empty store.
      return (
        o.provider.queryable(taskIdText({ subtopology: at.subtopology, partition }), store) ?? {
          state: 'ready',
          store: { get: () => undefined, range: () => [] },
        }
      );
    },
    async owner(store, partition) {
      const at = topicOf.get(store);
      const admin = o.admin();
      if (!at || !admin) return undefined;
      if (!owners || Date.now() - owners.at > ttl) {
        const group = await admin.describeGroup(o.groupId);
        const byPartition = new Map<string, string>();
        // Between assignments (PreparingRebalance, CompletingRebalance) the recorded assignment is the old one: no owner.
        if (group.state === 'Stable') {
          for (const m of group.members) {
            if (m.applicationServer === undefined) continue;
            for (const tp of m.assignment) byPartition.set(`${tp.topic}:${tp.partition}`, m.applicationServer);
          }
        }
        owners = { at: Date.now(), byPartition };
      }
      const owner = owners.byPartition.get(`${at.topic}:${partition}`);
      // The group may still name this instance for a partition it has just given up: not an owner to send a caller to.
      return owner === o.applicationServer && o.applicationServer !== undefined ? undefined : owner;
    },
    ...(o.applicationServer === undefined ? {} : { self: o.applicationServer }),
  });

  /** Learns the partition count of the store's input topic once. */
  const counted = async (store: string): Promise<void> => {
    const at = topicOf.get(store);
    const admin = o.admin();
    if (at && admin && !partitionCounts.has(at.topic)) {
      const [d] = await admin.describeTopics([at.topic]);
      if (d) partitionCounts.set(at.topic, d.partitions);
    }
  };
  return {
    storeNames: () => query.storeNames(),
    async get(store, key) {
      await counted(store);
      return await query.get(store, key);
    },
    async fetch(store, key, from, to) {
      await counted(store);
      return await query.fetch(store, key, from, to);
    },
  };
}
