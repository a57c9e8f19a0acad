/**
 * Starts the Kafka-native endpoint: its topology on a streams runner over a Kafka client,
 * serving the same InferenceService as the REST and gRPC transports.
 */
import type { KafkaClient } from '../../kafka/types.ts';
import type { Logger } from '../../observability/logger.ts';
import type { LocalInference } from '../../serving/local-inference.ts';
import { createStreamsRunner, type Guarantee, type StreamsRunner } from '../../streams/index.ts';
import { kafkaEndpointTopology } from './kafka-endpoint.ts';

/** Options of {@link startKafkaEndpoint}. */
export interface KafkaEndpointOptions {
  readonly client: KafkaClient;
  /** Default `inflow-requests`. */
  readonly requestTopic?: string;
  /** Default `inflow-responses`. */
  readonly responseTopic?: string;
  /** Failed requests with the reason in headers; default `inflow-errors`. */
  readonly errorTopic?: string;
  /** Consumer group (and transactional id prefix); default `inflow-kafka-endpoint`. */
  readonly applicationId?: string;
  readonly instanceId?: string;
  /** Default at-least-once. */
  readonly guarantee?: Guarantee;
  readonly defaultModel?: string;
  readonly maxBatch?: number;
  readonly maxDelayMs?: number;
  readonly maxInFlight?: number;
  /** Also log each prediction to this topic (schema: src/streams/README.md). */
  readonly predictionLogTopic?: string;
  readonly logger?: Logger;
}

/** Starts consuming requests; close the returned runner to drain and stop. */
export async function startKafkaEndpoint(inference: LocalInference, options: KafkaEndpointOptions): Promise<StreamsRunner> {
  const topology = kafkaEndpointTopology({
    inference,
    requestTopic: options.requestTopic ?? 'inflow-requests',
    responseTopic: options.responseTopic ?? 'inflow-responses',
    ...(options.defaultModel !== undefined ? { defaultModel: options.defaultModel } : {}),
    ...(options.maxBatch !== undefined ? { maxBatch: options.maxBatch } : {}),
    ...(options.maxDelayMs !== undefined ? { maxDelayMs: options.maxDelayMs } : {}),
    ...(options.predictionLogTopic !== undefined ? { predictionLogTopic: options.predictionLogTopic } : {}),
  });
  const runner = createStreamsRunner(topology, {
    client: options.client,
    applicationId: options.applicationId ?? 'inflow-kafka-endpoint',
    deadLetterTopic: options.errorTopic ?? 'inflow-errors',
    ...(options.instanceId !== undefined ? { instanceId: options.instanceId } : {}),
    ...(options.guarantee !== undefined ? { guarantee: options.guarantee } : {}),
    ...(options.maxInFlight !== undefined ? { maxInFlight: options.maxInFlight } : {}),
    ...(options.logger !== undefined ? { logger: options.logger } : {}),
  });
  await runner.start();
  return runner;
}
