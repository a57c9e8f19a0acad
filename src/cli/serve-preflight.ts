/**
 * What `inflow serve` can check before it loads a single model (which takes seconds per model):
 * that its ports are free and that the Kafka cluster it was given answers and has the endpoint's
 * topics. A mistake is then reported at once, not after every model loaded.
 */
import { createServer } from 'node:net';
import type { KafkaConfig } from '../config/kafka-config.ts';
import { InflowError } from '../errors.ts';
import { createKafkaClient } from '../kafka/index.ts';

/** How long the Kafka probe waits for the cluster, ms. */
export const KAFKA_PROBE_MS = 10_000;

/** Binds `host:port` for a moment and lets go; rejects with Node's EADDRINUSE/EACCES error (cli-errors words it). */
export async function checkPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return; // any free port: nothing to check
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => resolve());
  });
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/**
 * Asks the cluster for its topics (bounded by {@link KAFKA_PROBE_MS}) and checks that `topics`
 * exist: KAFKA_UNREACHABLE when it does not answer, KAFKA_TOPIC_NOT_FOUND naming the missing ones
 * and the command that creates them.
 */
export async function checkKafka(config: KafkaConfig, topics: readonly string[], createHint: string): Promise<void> {
  const where = Array.isArray(config.bootstrapServers) ? config.bootstrapServers.join(',') : config.bootstrapServers;
  const client = createKafkaClient({
    ...config,
    retries: 1,
    requestTimeoutMs: Math.min(config.requestTimeoutMs ?? KAFKA_PROBE_MS, KAFKA_PROBE_MS),
  });
  const admin = client.admin();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new InflowError(
              'KAFKA_UNREACHABLE',
              `Kafka at ${where} did not answer within ${KAFKA_PROBE_MS / 1000} s; is it running (inflow kafka status)?`,
            ),
          ),
        KAFKA_PROBE_MS,
      );
    });
    const existing = new Set(
      await Promise.race([
        admin.listTopics().catch((error: unknown) => {
          throw new InflowError('KAFKA_UNREACHABLE', `cannot reach Kafka at ${where}: ${(error as Error).message}`, { cause: error });
        }),
        timeout,
      ]),
    );
    const missing = topics.filter((t) => !existing.has(t));
    if (missing.length > 0) {
      throw new InflowError(
        'KAFKA_TOPIC_NOT_FOUND',
        `topics missing on Kafka at ${where}: ${missing.join(', ')}; create them with: ${createHint}`,
      );
    }
  } finally {
    clearTimeout(timer);
    await client.close().catch(() => undefined);
  }
}
