/**
 * How integration tests find the Kafka broker that the global setup (./global.ts) started,
 * or the cluster named by KAFKA_BOOTSTRAP_SERVERS.
 */
import { parseBootstrapServers } from '../../src/config/kafka-config.ts';

/**
 * Bootstrap servers of the test broker, or undefined when none is available (no Java on a
 * laptop: the suites that need it are skipped, loudly, by the global setup's message).
 */
export function brokerOrSkip(): string[] | undefined {
  const text = process.env.KAFKA_BOOTSTRAP_SERVERS;
  if (!text) return undefined;
  return parseBootstrapServers(text);
}
