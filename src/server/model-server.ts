/**
 * The model server: one InferenceService over a model repository, served over REST (TF Serving
 * + Open Inference Protocol, default port 8501) and gRPC (TF Serving + OIP + health, default
 * port 8500). Readiness (REST `/v2/health/ready`, gRPC health and ServerReady) also waits for the
 * Kafka cluster when the Kafka-native endpoint uses one; model sync alone only marks the server
 * degraded (./readiness-gate.ts). Graceful shutdown: not ready → drain both transports (bounded) → unload models.
 */
import { registerProcessMetrics } from '../observability/metrics.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';
import type { PlatformLoader } from '../repository/model-repository.ts';
import { createLocalInference, type LocalInference } from '../serving/local-inference.ts';
import { createGrpcServer, type GrpcServerOptions } from './grpc/index.ts';
import { type RepositorySync, type RepositorySyncOptions, startRepositorySync } from '../delivery/repository-sync.ts';
import { type KafkaEndpointOptions, startKafkaEndpoint } from './kafka/kafka-endpoint-runner.ts';
import type { KafkaClient } from '../kafka/types.ts';
import { kafkaReadinessGate, registerKafkaConnectedGauge } from './readiness-gate.ts';
import { type RestServerOptions, startRestServer } from './rest/index.ts';
import { createHttpFeatureLookup } from './store-lookup-http.ts';
import type { FeatureLookup } from '../serving/feature-fill.ts';

export interface ModelServerOptions {
  modelRepository: string;
  /** Serve only these models of the repository (default: every model folder). */
  models?: readonly string[];
  load: PlatformLoader;
  /** REST transport; `false` disables it. */
  rest?: RestServerOptions | false;
  /** gRPC transport; `false` disables it. */
  grpc?: GrpcServerOptions | false;
  /** Versions and label/split changes delivered over a Kafka models topic into the repository; off by default. */
  modelSync?: Omit<RepositorySyncOptions, 'modelRepository' | 'logger'> | false;
  /** The Kafka-native endpoint (request → response topics); off by default. */
  kafka?: KafkaEndpointOptions | false;
  /** How long the Kafka endpoint waits for every model to be ready before consuming; default 60 000 ms. */
  kafkaReadyTimeoutMs?: number;
  /** Watch the repository for new versions (default true). */
  watch?: boolean;
  pollMs?: number;
  /** Bound on draining in-flight requests at shutdown, ms. Default 10 000. */
  shutdownGraceMs?: number;
  logger?: Logger;
  /** Where models configured with `features:` read them; default over HTTP from the configured stream instance. */
  featureLookup?: FeatureLookup;
}

const ENDPOINT_USE = 'the Kafka-native endpoint';

/** A listener's address to connect to: a wildcard host is reached on loopback. */
function reachable(host: string | undefined, port: number): string {
  return `${host === undefined || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${port}`;
}

export interface RunningModelServer {
  readonly inference: LocalInference;
  /** `host:port` of the REST listener, if enabled. */
  readonly restAddress: string | undefined;
  /** `host:port` of the gRPC listener, if enabled. */
  readonly grpcAddress: string | undefined;
  /** Not ready → drain (bounded by shutdownGraceMs) → close listeners → unload models. */
  close(): Promise<void>;
}

/** Loads the repository, then starts the transports. */
export async function startModelServer(options: ModelServerOptions): Promise<RunningModelServer> {
  const log = options.logger ?? silentLogger;
  // Sync first (bounded wait), so the repository loads what the topic holds, not an older disk state.
  const sync: RepositorySync | undefined = options.modelSync
    ? await startRepositorySync({ ...options.modelSync, modelRepository: options.modelRepository, logger: log })
    : undefined;
  const inference = await createLocalInference({
    modelRepository: options.modelRepository,
    load: options.load,
    ...(options.models ? { models: options.models } : {}),
    ...(options.watch === undefined ? {} : { watch: options.watch }),
    ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
    featureLookup: options.featureLookup ?? createHttpFeatureLookup(),
    logger: log,
  }).catch(async (error: unknown) => {
    await sync?.close();
    throw error;
  });
  sync?.attach(inference.repository);
  sync?.registerMetrics(inference.metrics.registry);
  registerProcessMetrics(inference.metrics.registry);
  // Kafka's reachability holds readiness back where the server serves through it (the Kafka-native
  // endpoint); a client used only by model sync makes the server degraded, not unready: the
  // loaded models keep answering (./readiness-gate.ts). One gate per client.
  const kafkaUses = new Map<KafkaClient, string[]>();
  if (options.kafka) kafkaUses.set(options.kafka.client, [ENDPOINT_USE]);
  if (options.modelSync) kafkaUses.set(options.modelSync.client, [...(kafkaUses.get(options.modelSync.client) ?? []), 'model sync']);
  const readiness = [...kafkaUses].map(([client, uses]) =>
    kafkaReadinessGate(client, uses, { holdsReadiness: uses.includes(ENDPOINT_USE) }),
  );
  registerKafkaConnectedGauge(inference.metrics.registry, kafkaUses);
  const grace = options.shutdownGraceMs ?? 10_000;
  const closers: Array<(graceMs: number) => Promise<void>> = [];
  let restAddress: string | undefined;
  let grpcAddress: string | undefined;
  try {
    if (options.rest !== false) {
      const restOptions = options.rest ?? {};
      const rest = await startRestServer(inference, { logger: log, readiness, ...restOptions });
      closers.push((ms) => rest.close(ms));
      restAddress = reachable(restOptions.host, rest.port);
    }
    if (options.grpc !== false) {
      const grpcOptions = options.grpc ?? {};
      const grpc = createGrpcServer(inference, { logger: log, readiness, ...grpcOptions });
      const { port } = await grpc.start();
      closers.push((ms) => grpc.close(ms));
      grpcAddress = reachable(grpcOptions.host, port);
    }
    if (options.kafka) {
      // Consume only once the models answer (first versions may still be settling or loading):
      // requests read earlier would only wait in retries. Bounded: after it, retries take over.
      const deadline = Date.now() + (options.kafkaReadyTimeoutMs ?? 60_000);
      while (!(await inference.ready()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const runner = await startKafkaEndpoint(inference, { logger: log, ...options.kafka });
      // The endpoint drains before the models are unloaded (inference.close() runs after every closer).
      closers.unshift(() => runner.close());
    }
  } catch (error) {
    await Promise.all(closers.map((close) => close(0).catch(() => undefined)));
    await inference.close();
    await sync?.close();
    throw error;
  }
  log.info({ rest: restAddress, grpc: grpcAddress, models: inference.repository.models() }, 'model server started');
  let closing: Promise<void> | undefined;
  return {
    inference,
    restAddress,
    grpcAddress,
    close() {
      closing ??= (async () => {
        await Promise.all(closers.map((close) => close(grace)));
        await sync?.close();
        await inference.close();
        log.info('model server stopped');
      })();
      return closing;
    },
  };
}
