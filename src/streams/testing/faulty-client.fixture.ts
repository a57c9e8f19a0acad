/**
 * Test support: the in-process Kafka client with faults injected into the producers and consumers
 * it makes (a failing transaction commit, a consumer that delivers records twice), for tests of
 * what the streams runner does when Kafka misbehaves.
 */
import type { createMemoryClient } from '../../kafka/memory/memory-client.ts';
import type { KafkaClient, KafkaConsumer, KafkaTransaction, RestoreConsumer, TopicPartition } from '../../kafka/types.ts';

export interface Faults {
  /** Runs instead of a transaction's commit; return to let the real commit go ahead. */
  commit?: (inner: KafkaTransaction) => Promise<void>;
  /** Rewrites what a consumer's poll returns. */
  poll?: (records: Awaited<ReturnType<KafkaConsumer['poll']>>) => Awaited<ReturnType<KafkaConsumer['poll']>>;
  /** Awaited before each poll of a restore consumer, with its assignment (holds a restore back). */
  restorePoll?: (assignment: TopicPartition[]) => Promise<void>;
}

/** The memory client with faults injected into the runner's producers and consumers. */
export function faulty(memory: ReturnType<typeof createMemoryClient>, faults: Faults): KafkaClient {
  return {
    ...memory,
    producer(options) {
      const inner = memory.producer(options);
      return {
        send: (records) => inner.send(records),
        async beginTransaction() {
          const txn = await inner.beginTransaction();
          return {
            send: (records) => txn.send(records),
            sendOffsets: (consumer, offsets) => txn.sendOffsets(consumer, offsets),
            commit: () => (faults.commit ? faults.commit(txn) : txn.commit()),
            abort: () => txn.abort(),
          };
        },
        close: () => inner.close(),
      };
    },
    restoreConsumer(options) {
      const inner = memory.restoreConsumer(options);
      const before = faults.restorePoll;
      if (!before) return inner;
      return new Proxy(inner, {
        get(target, property, receiver) {
          if (property === 'poll') {
            return async (...args: Parameters<RestoreConsumer['poll']>) => {
              await before(target.assignment());
              return target.poll(...args);
            };
          }
          const value = Reflect.get(target, property, receiver) as unknown;
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    },
    consumer(options) {
      const inner = memory.consumer(options);
      if (!faults.poll) return inner;
      const rewrite = faults.poll;
      return new Proxy(inner, {
        get(target, property, receiver) {
          if (property === 'poll') return async (...args: Parameters<KafkaConsumer['poll']>) => rewrite(await target.poll(...args));
          const value = Reflect.get(target, property, receiver) as unknown;
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    },
  };
}
