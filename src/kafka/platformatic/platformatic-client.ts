/** The real Kafka client: {@link KafkaClient} over @platformatic/kafka (see docs/decisions/0001-kafka-client.md). */
import { type KafkaConfigInput, kafkaConfigSchema } from '../../config/kafka-config.ts';
import { validateConfig } from '../../config/load-config.ts';
import { InflowError } from '../../errors.ts';
import type { Logger } from '../../observability/logger.ts';
import { createConnectionMonitor } from '../connection.ts';
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
import { connectionOptions, reconnectBackoff } from './connection-options.ts';
import { PlatformaticAdmin } from './platformatic-admin.ts';
import { PlatformaticConsumer } from './platformatic-consumer.ts';
import { PlatformaticProducer } from './platformatic-producer.ts';
import { PlatformaticRestoreConsumer } from './platformatic-restore-consumer.ts';

/** Options of {@link createKafkaClient} beyond the cluster's configuration. */
export interface KafkaClientOptions {
  /** Gets one line per change of the connection state (never one per retry). Default: silent. */
  readonly logger?: Logger;
}

/**
 * Creates a client for a Kafka cluster; `config` is validated (unknown keys are errors). Its
 * consumers and producers ride out broker outages (../connection.ts); `connection` says
 * whether the cluster is reachable.
 */
export function createKafkaClient(config: KafkaConfigInput, clientOptions: KafkaClientOptions = {}): KafkaClient {
  const valid = validateConfig(kafkaConfigSchema, config, 'kafka client options');
  const bootstrapServers = valid.bootstrapServers;
  if (bootstrapServers === 'memory') {
    throw new InflowError('INVALID_CONFIG', 'createKafkaClient needs broker addresses; use createMemoryClient() for the in-process log');
  }
  const open = new Set<{ close(): Promise<void> }>();
  const track = <T extends { close(): Promise<void> }>(item: T): T => {
    open.add(item);
    return item;
  };
  const connection = createConnectionMonitor({
    name: `Kafka at ${bootstrapServers.join(',')}`,
    ...(clientOptions.logger ? { logger: clientOptions.logger } : {}),
  });
  let n = 0;
  const base = (role: string) => connectionOptions({ ...valid, bootstrapServers }, `${role}-${++n}`);
  const backoff = reconnectBackoff(valid);
  return {
    kind: 'kafka',
    connection,
    producer: (options?: ProducerOptions): KafkaProducer => track(new PlatformaticProducer(base('producer'), options, connection, backoff)),
    consumer: (options: ConsumerOptions): KafkaConsumer => track(new PlatformaticConsumer(base('consumer'), options, connection, backoff)),
    restoreConsumer: (options?: RestoreConsumerOptions): RestoreConsumer =>
      track(new PlatformaticRestoreConsumer(base('restore'), options)),
    admin: (): KafkaAdmin => track(new PlatformaticAdmin(base('admin'))),
    async close() {
      await Promise.all([...open].map((item) => item.close().catch(() => undefined)));
      open.clear();
    },
  };
}
