/** Admin operations on the in-process log. */
import type { KafkaAdmin, NewTopic, PartitionLag, TopicDescription, TopicPartitionOffset } from '../types.ts';
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
      offset: at === 'earliest' ? 0n : this.#log.partition(topic, partition).endOffset,
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

  async groupLag(groupId: string, topics: string[]): Promise<PartitionLag[]> {
    const offsets = await this.groupOffsets(groupId, topics);
    return offsets.map((o) => {
      const end = this.#log.partition(o.topic, o.partition).endOffset;
      const committed = o.offset;
      return { topic: o.topic, partition: o.partition, committed, end, lag: end - (committed < 0n ? 0n : committed) };
    });
  }

  async close(): Promise<void> {}
}
