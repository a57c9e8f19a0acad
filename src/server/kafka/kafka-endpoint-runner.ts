/**
 * Starts the Kafka-native endpoint: its topology on a streams runner over a Kafka client,
 * serving the same InferenceService as the REST and gRPC transports.
 */
import type { RegistryFormatConfig } from '../../config/schema-registry-config.ts';
import { type TopicRegistry, topicSerde } from '../../kafka/topic-serde.ts';
import type { KafkaClient } from '../../kafka/types.ts';
import { InflowError } from '../../errors.ts';
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
  /**
   * Record formats in the Schema Registry (`registry`), configured like a pipeline's topics:
   * requests whose fields are the model's inputs, responses whose fields are its outputs, and
   * the prediction log's entries (src/server/kafka/kafka-endpoint.ts). Default: protocol bodies and JSON.
   */
  readonly formats?: {
    readonly request?: RegistryFormatConfig;
    readonly response?: RegistryFormatConfig;
    readonly predictionLog?: RegistryFormatConfig;
  };
  readonly registry?: TopicRegistry;
  readonly logger?: Logger;
}

/** Starts consuming requests; close the returned runner to drain and stop. */
export async function startKafkaEndpoint(inference: LocalInference, options: KafkaEndpointOptions): Promise<StreamsRunner> {
  const requestTopic = options.requestTopic ?? 'inflow-requests';
  const responseTopic = options.responseTopic ?? 'inflow-responses';
  const f = options.formats ?? {};
  if (f.response && !f.request) {
    throw new InflowError(
      'INVALID_CONFIG',
      'a response format needs a request format (responses of protocol requests are protocol bodies)',
    );
  }
  if (f.predictionLog && options.predictionLogTopic === undefined) {
    throw new InflowError('INVALID_CONFIG', 'a prediction log format needs the prediction log topic');
  }
  const topology = kafkaEndpointTopology({
    inference,
    requestTopic,
    responseTopic,
    ...(f.request ? { requestSerde: topicSerde(f.request, { topic: requestTopic, isKey: false }, options.registry) } : {}),
    ...(f.response ? { responseSerde: topicSerde(f.response, { topic: responseTopic, isKey: false }, options.registry) } : {}),
    ...(f.predictionLog && options.predictionLogTopic !== undefined
      ? { predictionLogSerde: topicSerde(f.predictionLog, { topic: options.predictionLogTopic, isKey: false }, options.registry) }
      : {}),
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
