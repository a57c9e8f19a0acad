/** KafkaAdmin over @platformatic/kafka's Admin (and a consumer for offsets, as the library splits them). */
import { Admin, Consumer, findErrorBy } from '@platformatic/kafka';
import { InflowError } from '../../errors.ts';
import type { GroupDescription, KafkaAdmin, NewTopic, PartitionLag, TopicDescription, TopicPartitionOffset } from '../types.ts';
import type { BaseClientOptions } from './connection-options.ts';
import { decodeUserData } from './group-assignor.ts';
import { mapErrors } from './kafka-errors.ts';

/** ListOffsets special timestamps (Kafka protocol): -2 earliest, -1 latest. */
const EARLIEST = -2n;
const LATEST = -1n;

export class PlatformaticAdmin implements KafkaAdmin {
  readonly #admin: Admin;
  readonly #base: BaseClientOptions;
  #offsetsReader: Consumer | undefined;

  constructor(base: BaseClientOptions) {
    this.#base = base;
    this.#admin = new Admin(base);
  }

  async createTopics(topics: NewTopic[], options: { ifNotExists?: boolean } = {}): Promise<void> {
    const ifNotExists = options.ifNotExists ?? true;
    for (const t of topics) {
      try {
        await mapErrors(`creating topic "${t.topic}"`, () =>
          this.#admin.createTopics({
            topics: [t.topic],
            partitions: t.partitions ?? 1,
            replicas: t.replicationFactor ?? 1,
            configs: Object.entries(t.configs ?? {}).map(([name, value]) => ({ name, value })),
          }),
        );
      } catch (error) {
        if (ifNotExists && (error as InflowError).code === 'ALREADY_EXISTS') continue;
        throw error;
      }
    }
    await this.#awaitListed(topics.map((t) => t.topic));
  }

  /**
   * CreateTopics answers before every broker's metadata has the topic (measured: an immediate
   * listTopics missed it 9 times in 10), so a pipeline started right after would not find it.
   * Waits until the metadata lists them all, bounded.
   */
  async #awaitListed(names: readonly string[]): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
      const listed = new Set(await this.listTopics());
      const missing = names.filter((n) => !listed.has(n));
      if (missing.length === 0) return;
      if (Date.now() > deadline) {
        throw new InflowError('KAFKA_ERROR', `topics ${missing.join(', ')} were created but are not in the metadata after 10 s`);
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  async deleteTopics(topics: string[]): Promise<void> {
    await mapErrors(`deleting topics ${topics.join(', ')}`, () => this.#admin.deleteTopics({ topics }));
  }

  async listTopics(): Promise<string[]> {
    const topics = await mapErrors('listing topics', () => this.#admin.listTopics({ includeInternals: false }));
    return [...topics].sort();
  }

  async describeTopics(topics: string[]): Promise<TopicDescription[]> {
    const metadata = await mapErrors(`describing topics ${topics.join(', ')}`, () => this.#admin.metadata({ topics, forceUpdate: true }));
    return topics.map((topic) => {
      const found = metadata.topics.get(topic);
      if (!found) throw new InflowError('KAFKA_TOPIC_NOT_FOUND', `topic "${topic}" does not exist`);
      return { topic, partitions: found.partitionsCount };
    });
  }

  async listOffsets(topic: string, at: 'earliest' | 'latest'): Promise<TopicPartitionOffset[]> {
    const reader = this.#reader();
    const offsets = await mapErrors(`listing ${at} offsets of "${topic}"`, () =>
      reader.listOffsets({ topics: [topic], timestamp: at === 'earliest' ? EARLIEST : LATEST }),
    );
    return (offsets.get(topic) ?? []).map((offset, partition) => ({ topic, partition, offset }));
  }

  async groupOffsets(groupId: string, topics: string[]): Promise<TopicPartitionOffset[]> {
    const described = await this.describeTopics(topics);
    const result = await mapErrors(`reading offsets of group "${groupId}"`, () =>
      this.#admin.listConsumerGroupOffsets({
        groups: [{ groupId, topics: described.map((d) => ({ name: d.topic, partitionIndexes: [...Array(d.partitions).keys()] })) }],
      }),
    );
    const group = result[0];
    const out: TopicPartitionOffset[] = [];
    for (const d of described) {
      const t = group?.topics.find((x) => x.name === d.topic);
      for (let partition = 0; partition < d.partitions; partition++) {
        const p = t?.partitions.find((x) => x.partitionIndex === partition);
        out.push({ topic: d.topic, partition, offset: p ? p.committedOffset : -1n });
      }
    }
    return out;
  }

  async describeGroup(groupId: string): Promise<GroupDescription> {
    const groups = await mapErrors(`describing group "${groupId}"`, () => this.#admin.describeGroups({ groups: [groupId] }));
    const group = groups.get(groupId);
    if (!group) return { state: 'Dead', members: [] };
    return {
      state: group.state,
      members: [...group.members.values()].map((m) => {
        const applicationServer = decodeUserData(m.metadata?.metadata).applicationServer;
        return {
          memberId: m.id,
          ...(applicationServer === undefined ? {} : { applicationServer }),
          assignment: [...(m.assignments?.values() ?? [])].flatMap((a) => a.partitions.map((partition) => ({ topic: a.topic, partition }))),
        };
      }),
    };
  }

  async groupLag(groupId: string, topics: string[]): Promise<PartitionLag[]> {
    const committed = await this.groupOffsets(groupId, topics);
    const ends = new Map<string, bigint>();
    for (const topic of topics) for (const o of await this.listOffsets(topic, 'latest')) ends.set(`${o.topic}:${o.partition}`, o.offset);
    return committed.map((c) => {
      const end = ends.get(`${c.topic}:${c.partition}`) ?? 0n;
      return { topic: c.topic, partition: c.partition, committed: c.offset, end, lag: end - (c.offset < 0n ? 0n : c.offset) };
    });
  }

  async deleteRecords(offsets: TopicPartitionOffset[]): Promise<TopicPartitionOffset[]> {
    if (offsets.length === 0) return [];
    const byTopic = new Map<string, { partition: number; offset: bigint }[]>();
    for (const o of offsets) {
      let list = byTopic.get(o.topic);
      if (!list) byTopic.set(o.topic, (list = []));
      list.push({ partition: o.partition, offset: o.offset });
    }
    const what = `deleting records of ${[...byTopic.keys()].join(', ')}`;
    const deleted = await mapErrors(what, () =>
      this.#admin.deleteRecords({ topics: [...byTopic].map(([name, partitions]) => ({ name, partitions })) }).catch((error: unknown) => {
        // Only here is OFFSET_OUT_OF_RANGE the caller's mistake (an offset past the end); elsewhere it stays retriable.
        if (!findErrorBy(error as Error, 'apiId', 'OFFSET_OUT_OF_RANGE')) throw error;
        throw new InflowError(
          'INVALID_ARGUMENT',
          `${what}: an offset is past the partition's end offset; expected -1 (the end) or an offset up to the end`,
          { cause: error },
        );
      }),
    );
    const lows = new Map<string, bigint>();
    for (const t of deleted) for (const p of t.partitions) lows.set(`${t.name}:${p.partition}`, p.lowWatermark);
    return offsets.map((o) => {
      const low = lows.get(`${o.topic}:${o.partition}`);
      if (low === undefined)
        throw new InflowError('KAFKA_ERROR', `the broker did not answer for deleting records of ${o.topic}:${o.partition}`);
      return { topic: o.topic, partition: o.partition, offset: low };
    });
  }

  async close(): Promise<void> {
    await Promise.all([this.#admin.close(), this.#offsetsReader?.close(true)]);
  }

  /** A group-less reader for ListOffsets (the library offers it on Consumer only). */
  #reader(): Consumer {
    this.#offsetsReader ??= new Consumer({ ...this.#base, groupId: `inflow-admin-offsets-${process.pid}` });
    return this.#offsetsReader;
  }
}
