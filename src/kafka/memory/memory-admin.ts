/** Admin operations on the in-process log. */
import { InflowError } from '../../errors.ts';
import type { GroupDescription, KafkaAdmin, NewTopic, PartitionLag, TopicDescription, TopicPartitionOffset } from '../types.ts';
import type { MemoryLog } from './memory-log.ts';

export class MemoryAdmin implements KafkaAdmin {
  readonly #log: MemoryLog;

  constructor(log: MemoryLog) {
    this.#log = log;
  }

  async createTopics(topics: NewTopic[], options: { ifNotExists?: boolean } = {}): Promise<void> {
    for (const topic of topics) this.#log.createTopic(topic, options.ifNotExists ?? true);
  }

  async deleteTopics(topics: string[]): Promise<void> {
    for (const topic of topics) this.#log.deleteTopic(topic);
  }

  async listTopics(): Promise<string[]> {
    return this.#log.topicNames();
  }

  async describeTopics(topics: string[]): Promise<TopicDescription[]> {
    return topics.map((topic) => ({ topic, partitions: this.#log.partitionCount(topic) }));
  }

  async listOffsets(topic: string, at: 'earliest' | 'latest'): Promise<TopicPartitionOffset[]> {
    const n = this.#log.partitionCount(topic);
    return Array.from({ length: n }, (_, partition) => ({
      topic,
      partition,
      offset: at === 'earliest' ? this.#log.partition(topic, partition).startOffset : this.#log.partition(topic, partition).endOffset,
    }));
  }

  async groupOffsets(groupId: string, topics: string[]): Promise<TopicPartitionOffset[]> {
    const group = this.#log.group(groupId);
    const out: TopicPartitionOffset[] = [];
    for (const topic of topics) {
      const n = this.#log.partitionCount(topic);
      for (let partition = 0; partition < n; partition++) out.push({ topic, partition, offset: group.committed(topic, partition) });
    }
    return out;
  }

  async describeGroup(groupId: string): Promise<GroupDescription> {
    const members = this.#log.group(groupId).describe();
    return { state: members.length === 0 ? 'Empty' : 'Stable', members };
  }

  async groupLag(groupId: string, topics: string[]): Promise<PartitionLag[]> {
    const offsets = await this.groupOffsets(groupId, topics);
    return offsets.map((o) => {
      const end = this.#log.partition(o.topic, o.partition).endOffset;
      const committed = o.offset;
      return { topic: o.topic, partition: o.partition, committed, end, lag: end - (committed < 0n ? 0n : committed) };
    });
  }

  async deleteRecords(offsets: TopicPartitionOffset[]): Promise<TopicPartitionOffset[]> {
    // Validate every partition first, like the broker answering per partition: a bad one deletes nothing.
    for (const o of offsets) {
      const end = this.#log.partition(o.topic, o.partition).endOffset;
      if (o.offset !== -1n && (o.offset < 0n || o.offset > end)) {
        throw new InflowError(
          'INVALID_ARGUMENT',
          `cannot delete records of ${o.topic}:${o.partition} below offset ${o.offset}: expected -1 (the end) or 0..${end} (the end offset)`,
        );
      }
    }
    return offsets.map((o) => ({
      topic: o.topic,
      partition: o.partition,
      offset: this.#log.deleteRecords(o.topic, o.partition, o.offset),
    }));
  }

  async close(): Promise<void> {}
}
