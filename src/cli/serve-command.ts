/** `inflow serve`: the model server (TF Serving + Open Inference Protocol, REST + gRPC). */
import nodeCluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { loadSyncPolicy } from '../delivery/index.ts';
import { InflowError } from '../errors.ts';
import { endpointFormatsFromFile } from '../server/kafka/endpoint-formats.ts';
import { createKafkaClient } from '../kafka/index.ts';
import { createLogger } from '../observability/logger.ts';
import { loadServable } from '../runtime/index.ts';
import { type ModelServerOptions, startModelServer } from '../server/model-server.ts';
import { startServerCluster } from '../server/server-cluster.ts';
import { kafkaFromFlags } from './kafka-flags.ts';
import { checkKafka, checkPortFree } from './serve-preflight.ts';

export const serveHelp = `inflow serve --model-repository <dir> [options]

Serves every model in the repository over REST (TF Serving :predict, Open Inference Protocol /v2)
and gRPC (tensorflow.serving.PredictionService, inference.GRPCInferenceService, grpc.health.v1).
New versions dropped into the repository are loaded, warmed up and switched in without a restart.

Options:
  --model-repository <dir>  model folders: <dir>/<model>/config.yaml + <dir>/<model>/<version>/
  --model <name>            serve only this model of the repository (repeat for several; default
                            every model folder): the others are not loaded
  --host <addr>             listen address (default 0.0.0.0)
  --rest-port <n>           REST port (default 8501; 0 = any free port)
  --grpc-port <n>           gRPC port (default 8500; 0 = any free port)
  --no-rest, --no-grpc      disable a transport
  --kafka <host:port,…>     also serve over Kafka (the Kafka-native endpoint): requests from
                            --request-topic (default inflow-requests), responses to --response-topic
                            (inflow-responses), failures with the reason to --error-topic (inflow-errors);
                            model from the inflow-model header or --default-model; --exactly-once
                            for transactions (the topics must exist)
  --group <id>              with --kafka: the endpoint's consumer group (default inflow-kafka-endpoint)
  --kafka-config <file>     the cluster's connection settings (YAML: bootstrapServers, clientId,
                            sasl {mechanism, username, passwordFile}, ssl {caFile, certFile, keyFile});
                            --kafka then only overrides bootstrapServers
  --no-kafka-endpoint       with a cluster: do not serve the request topic (e.g. --models-topic only)
  --endpoint-formats <file> with --kafka: requests, responses and a prediction log in Avro, Protobuf or
                            JSON Schema under a Schema Registry (YAML: schemaRegistry, request, response,
                            predictionLog {topic, value}; src/server/README.md)
  --models-topic <topic>    with --kafka: install versions and label/split changes published with
                            "inflow models publish|label|split" (default off)
  --models-trusted-key <file>  with --models-topic: install only versions signed by this Ed25519
                            public key (PEM; repeat for several); unsigned or otherwise signed
                            versions are refused (inflow models keygen makes a pair)
  --models-allow-executable with --models-topic: also accept platforms that run code from the
                            topic (module); without trusted keys anyone who can write the topic
                            can then run code in the server
  --models-max-staging-bytes <n>  with --models-topic: bytes staged for unfinished publishes at
                            most (default 8589934592 = 8 GiB)
  --workers <n|auto>        server processes sharing the ports (default 1; auto = one per core).
                            Each loads its own copy of the models; connections are spread
                            round-robin; a crashed worker is replaced. The admin API needs 1 worker:
                            with more, INFLOW_ADMIN_TOKEN is refused at start.
Environment:
  INFLOW_AUTH_TOKEN         bearer token required for inference calls
  INFLOW_ADMIN_TOKEN        enables model management with this token (--workers 1 only): REST /admin/ (reload,
                            splits, shadow) and Triton's repository extension (REST /v2/repository/…, gRPC
                            RepositoryIndex/ModelLoad/ModelUnload), TF Serving's HandleReloadConfigRequest

Examples:
  inflow serve --model-repository models/repository
  curl -s localhost:8501/v1/models/digits-mlp
  inflow serve --model-repository /models --rest-port 8080 --no-grpc
  inflow serve --model-repository /models --workers auto
  inflow topics create --endpoint --kafka auto
  inflow serve --model-repository models/repository --kafka auto --default-model digits-mlp
  inflow serve --model-repository /models --kafka kafka:9092 --models-topic inflow-models --no-grpc`;

function port(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InflowError('INVALID_ARGUMENT', `${name} must be a port number 0-65535, got "${value}"`);
  return n;
}

/** Most worker processes `--workers` accepts (far above any core count this runs on). */
const MAX_WORKERS = 256;

/** `--workers`: a count, or `auto` for os.availableParallelism(). */
export function parseWorkers(value: string | undefined): number {
  if (value === undefined) return 1;
  if (value === 'auto') return availableParallelism();
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS) {
    throw new InflowError('INVALID_ARGUMENT', `--workers must be "auto" or an integer 1-${MAX_WORKERS}, got "${value}"`);
  }
  return n;
}

export interface ServeFlags {
  modelRepository?: string | undefined;
  models?: string[] | undefined;
  host?: string | undefined;
  restPort?: string | undefined;
  grpcPort?: string | undefined;
  noRest?: boolean | undefined;
  noGrpc?: boolean | undefined;
  workers?: string | undefined;
  kafka?: string | undefined;
  requestTopic?: string | undefined;
  responseTopic?: string | undefined;
  errorTopic?: string | undefined;
  defaultModel?: string | undefined;
  exactlyOnce?: boolean | undefined;
  modelsTopic?: string | undefined;
  modelsTrustedKeys?: string[] | undefined;
  modelsAllowExecutable?: boolean | undefined;
  modelsMaxStagingBytes?: string | undefined;
  group?: string | undefined;
  kafkaConfig?: string | undefined;
  noKafkaEndpoint?: boolean | undefined;
  endpointFormats?: string | undefined;
}

/** Resolves on the first SIGINT/SIGTERM. */
function stopSignal(out: (line: string) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (): void => {
      out('shutting down (draining in-flight requests)…');
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

/** Runs until SIGINT/SIGTERM, then shuts down gracefully. */
export async function serveCommand(flags: ServeFlags, out: (line: string) => void): Promise<void> {
  if (!flags.modelRepository) throw new InflowError('INVALID_ARGUMENT', '--model-repository <dir> is required (e.g. models/repository)');
  const workers = parseWorkers(flags.workers);
  const host = flags.host ?? '0.0.0.0';
  const auth = process.env.INFLOW_AUTH_TOKEN ? { token: process.env.INFLOW_AUTH_TOKEN } : undefined;
  const admin = process.env.INFLOW_ADMIN_TOKEN ? { token: process.env.INFLOW_ADMIN_TOKEN } : undefined;
  if (workers > 1 && admin) {
    throw new InflowError(
      'FAILED_PRECONDITION',
      `INFLOW_ADMIN_TOKEN is set, but the admin API cannot be used with --workers ${workers}: admin calls (label moves, splits, load/unload) would reach one worker only; unset INFLOW_ADMIN_TOKEN or run --workers 1`,
    );
  }
  const logger = createLogger({ name: 'inflow.serve' });
  const kafkaConfig = await kafkaFromFlags(flags, 'inflow-serve');
  if (flags.modelsTopic && !kafkaConfig) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      '--models-topic needs a cluster to read it from: --kafka <host:port> or --kafka-config <file>',
    );
  }
  const syncFlags = [
    flags.modelsTrustedKeys?.length ? '--models-trusted-key' : '',
    flags.modelsAllowExecutable ? '--models-allow-executable' : '',
    flags.modelsMaxStagingBytes !== undefined ? '--models-max-staging-bytes' : '',
  ].filter(Boolean);
  if (!flags.modelsTopic && syncFlags.length > 0) {
    throw new InflowError('INVALID_ARGUMENT', `${syncFlags.join(', ')} apply to --models-topic, which is not given`);
  }
  const staging = flags.modelsMaxStagingBytes;
  if (staging !== undefined && !/^[1-9]\d{0,15}$/.test(staging)) {
    throw new InflowError('INVALID_ARGUMENT', `--models-max-staging-bytes must be a positive integer of bytes, got "${staging}"`);
  }
  const policy = await loadSyncPolicy({
    trustedKeys: flags.modelsTrustedKeys ?? [],
    allowExecutablePlatforms: flags.modelsAllowExecutable ?? false,
    ...(staging === undefined ? {} : { maxStagingBytes: Number(staging) }),
  });
  const endpoint = kafkaConfig !== undefined && flags.noKafkaEndpoint !== true;
  if (endpoint && workers > 1) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      'the Kafka endpoint runs with --workers 1 (run more instances instead: they share the request topic as one consumer group)',
    );
  }
  if (flags.endpointFormats !== undefined && !endpoint) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      '--endpoint-formats applies to the Kafka endpoint: give --kafka (and not --no-kafka-endpoint)',
    );
  }
  // Read before any model loads: a bad file fails at once.
  const formats = flags.endpointFormats !== undefined && endpoint ? await endpointFormatsFromFile(flags.endpointFormats) : undefined;
  const restPort = flags.noRest ? undefined : port(flags.restPort, '--rest-port', 8501);
  const grpcPort = flags.noGrpc ? undefined : port(flags.grpcPort, '--grpc-port', 8500);
  const topics = {
    request: flags.requestTopic ?? 'inflow-requests',
    response: flags.responseTopic ?? 'inflow-responses',
    error: flags.errorTopic ?? 'inflow-errors',
  };
  // Fail fast: what can be checked is checked before any model loads (workers of a cluster share
  // the primary's ports, so only the primary probes them).
  if (nodeCluster.isPrimary) {
    if (restPort !== undefined) await checkPortFree(host, restPort);
    if (grpcPort !== undefined) await checkPortFree(host, grpcPort);
    if (kafkaConfig) {
      const needed = endpoint ? [topics.request, topics.response, topics.error] : [];
      const hint = `inflow topics create --endpoint${flags.requestTopic ? ` --request-topic ${topics.request}` : ''}${flags.responseTopic ? ` --response-topic ${topics.response}` : ''}${flags.errorTopic ? ` --error-topic ${topics.error}` : ''} --kafka ${flags.kafka ?? '<servers>'}`;
      await checkKafka(kafkaConfig, needed, hint);
    }
  }
  // Its consumers and producers ride out broker outages; the logger gets one line per change.
  const kafkaClient = kafkaConfig ? createKafkaClient(kafkaConfig, { logger }) : undefined;
  const options: ModelServerOptions = {
    modelRepository: flags.modelRepository,
    ...(flags.models?.length ? { models: flags.models } : {}),
    load: loadServable,
    logger,
    rest: flags.noRest ? false : { host, port: restPort ?? 8501, ...(auth ? { auth } : {}), ...(admin ? { admin } : {}) },
    // The admin token guards model management on both transports (REST /admin/ and /v2/repository/,
    // gRPC's repository extension and TF Serving's HandleReloadConfigRequest).
    grpc: flags.noGrpc ? false : { host, port: grpcPort ?? 8500, ...(auth ? { auth } : {}), ...(admin ? { admin } : {}) },
    ...(kafkaClient && endpoint
      ? {
          kafka: {
            client: kafkaClient,
            ...(flags.requestTopic ? { requestTopic: flags.requestTopic } : {}),
            ...(flags.responseTopic ? { responseTopic: flags.responseTopic } : {}),
            ...(flags.errorTopic ? { errorTopic: flags.errorTopic } : {}),
            ...(flags.defaultModel ? { defaultModel: flags.defaultModel } : {}),
            ...(flags.group ? { applicationId: flags.group } : {}),
            guarantee: flags.exactlyOnce ? 'exactly-once' : 'at-least-once',
            ...formats,
          },
        }
      : {}),
    ...(kafkaClient && flags.modelsTopic ? { modelSync: { client: kafkaClient, topic: flags.modelsTopic, policy } } : {}),
  };
  const banner = (models: readonly string[], rest: string | undefined, grpc: string | undefined, suffix: string): void => {
    out(`inflow serving ${models.join(', ') || '(no models yet)'}${suffix}`);
    // The address a client on this machine uses, and where the socket really listens (0.0.0.0: every interface).
    const listening = (address: string): string => {
      const p = address.slice(address.lastIndexOf(':') + 1);
      const all = host === '0.0.0.0' || host === '::';
      return `listening on ${host.includes(':') ? `[${host}]` : host}:${p}${all ? ' (all interfaces)' : ''}`;
    };
    if (rest) out(`  REST  http://${rest}  ${listening(rest)}  (TF Serving /v1, Open Inference Protocol /v2, /metrics)`);
    if (grpc) out(`  gRPC  ${grpc}  ${listening(grpc)}`);
  };

  if (workers === 1) {
    try {
      const server = await startModelServer(options);
      banner(server.inference.repository.models(), server.restAddress, server.grpcAddress, '');
      if (endpoint)
        out(`  Kafka ${String(kafkaConfig?.bootstrapServers)}  (${topics.request} → ${topics.response}, errors → ${topics.error})`);
      if (flags.modelsTopic) out(`  models from the Kafka topic ${flags.modelsTopic}`);
      await stopSignal(out);
      await server.close();
    } finally {
      await kafkaClient?.close();
    }
    return;
  }

  // The primary forks; each worker re-runs this command and lands here too, in the worker role.
  const cluster = await startServerCluster({ workers, startWorker: () => startModelServer(options), logger });
  if (cluster.role === 'primary') {
    const { ready } = cluster;
    banner(ready.models, ready.restAddress, ready.grpcAddress, ` with ${workers} workers (pids ${cluster.pids().join(', ')})`);
    void cluster.done.then((code) => code === 0 && out('all workers stopped'));
  }
  const code = await cluster.done;
  if (code !== 0) throw new InflowError('UNAVAILABLE', cluster.failure ?? `the server cluster stopped with exit code ${code}; see the log`);
}
