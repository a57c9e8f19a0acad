/** The in-process log as a {@link KafkaClient}: the embedded default, no cluster needed. */
import type {
  ConsumerOptions,
  KafkaAdmin,
  KafkaClient,
  KafkaConsumer,
  KafkaProducer,
  ProducerOptions,
  RestoreConsumer,
  RestoreConsumerOptions,
} from '../types.ts';
import { MemoryAdmin } from './memory-admin.ts';
import { MemoryConsumer } from './memory-consumer.ts';
import { MemoryLog, type MemoryLogOptions } from './memory-log.ts';
import { MemoryProducer } from './memory-producer.ts';
import { MemoryRestoreConsumer } from './memory-restore-consumer.ts';

/** A client over an in-process log; pass `log` to share one log between clients. */
export function createMemoryClient(options: MemoryLogOptions & { log?: MemoryLog } = {}): KafkaClient & { log: MemoryLog } {
  const log = options.log ?? new MemoryLog(options);
  const open = new Set<{ close(): Promise<void> }>();
  const track = <T extends { close(): Promise<void> }>(item: T): T => {
    open.add(item);
    return item;
  };
  return {
    kind: 'memory',
    log,
    producer: (producerOptions?: ProducerOptions): KafkaProducer => track(new MemoryProducer(log, producerOptions)),
    consumer: (consumerOptions: ConsumerOptions): KafkaConsumer => track(new MemoryConsumer(log, consumerOptions)),
    restoreConsumer: (restoreOptions?: RestoreConsumerOptions): RestoreConsumer => track(new MemoryRestoreConsumer(log, restoreOptions)),
    admin: (): KafkaAdmin => track(new MemoryAdmin(log)),
    async close() {
      await Promise.all([...open].map((item) => item.close()));
      open.clear();
    },
  };
}
