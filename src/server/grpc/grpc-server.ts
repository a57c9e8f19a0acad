/**
 * The gRPC transport of the model server (@grpc/grpc-js): TF Serving's PredictionService and
 * ModelService, the Open Inference Protocol's GRPCInferenceService, grpc.health.v1 and server
 * reflection, over one InferenceService. Limits: message size (grpc-js answers
 * RESOURCE_EXHAUSTED), calls in flight (RESOURCE_EXHAUSTED), deadlines (the work is aborted).
 * Optional bearer tokens, TLS and mTLS. Shutdown: health NOT_SERVING → drain for graceMs →
 * cancel what is left.
 */
import { DEFAULT_DECODE_LIMITS, type DecodeLimits } from '../../serving/check-inputs.ts';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import type { Registry } from 'prom-client';
import { InflowError } from '../../errors.ts';
import type { Logger } from '../../observability/logger.ts';
import { silentLogger } from '../../observability/logger.ts';
import { createBearerAuthInterceptor } from './grpc-auth.ts';
import { createGrpcMetrics, createUnaryWrapper, type UnaryImpl, type UnaryWrapper } from './grpc-call.ts';
import type { GrpcInference } from './grpc-inference.ts';
import { GrpcServiceName, loadGrpcProtos, tolerantServiceDefinition } from './grpc-protos.ts';
import { notReadyReason, type ReadinessGate } from '../readiness-gate.ts';
import { createHealthService } from './health-service.ts';
import { createOipHandlers } from './oip-service.ts';
import { createTfServingHandlers } from './tfserving-service.ts';

/** PEM material for TLS; with `ca`, clients must present a certificate it signed (mTLS). */
export interface GrpcTlsOptions {
  key: string | Buffer;
  cert: string | Buffer;
  /** CA bundle that client certificates must chain to; enables mTLS. */
  ca?: string | Buffer;
}

/** Options of {@link createGrpcServer}. */
export interface GrpcServerOptions {
  /** Default `0.0.0.0`. */
  host?: string;
  /** Default 8500 (TF Serving's gRPC port); 0 picks a free port. */
  port?: number;
  /** Bearer token required on every method but health (`authorization: Bearer <token>` metadata). */
  auth?: { token: string };
  /** Turns on OIP's model repository extension; with a token, its methods need that token (not `auth`'s). */
  admin?: { token: string } | boolean;
  /** Largest request message, bytes; larger ones get RESOURCE_EXHAUSTED. Default 32 MiB. */
  maxReceiveMessageBytes?: number;
  /**
   * Tensor elements of one inference request, all inputs together; more get RESOURCE_EXHAUSTED
   * before any element is decoded (as inputs whose dtype or shape the signature rules out get
   * INVALID_ARGUMENT). Default 16 Mi.
   */
  maxRequestElements?: number;
  /** BYTES elements of one inference request (each costs an object, ~100 bytes, however short). Default 1 Mi. */
  maxRequestBytesElements?: number;
  /** Largest response message, bytes (RESOURCE_EXHAUSTED beyond). Default 64 MiB. */
  maxSendMessageBytes?: number;
  /** Calls served at once (health excluded); more get RESOURCE_EXHAUSTED. Default 1024. */
  maxConcurrentCalls?: number;
  /** Longest a call may run when its client set no (or a later) deadline, ms; 0 disables. Default 30 000. */
  requestTimeoutMs?: number;
  tls?: GrpcTlsOptions;
  /** Serve grpc.reflection (v1 and v1alpha). Default true. */
  reflection?: boolean;
  /** Predict outputs as `tensor_content` instead of typed `*_val` fields (TF's default). Default false. */
  tensorContent?: boolean;
  /** ServerMetadata `name` and `version`. Defaults: `inflow` and the package version. */
  serverName?: string;
  serverVersion?: string;
  /** Dependencies besides the models that health and ServerReady wait for: Kafka when the server uses it. */
  readiness?: readonly ReadinessGate[];
  /** Where the gRPC metrics go. Default: the inference service's registry. */
  registry?: Registry;
  logger?: Logger;
}

/** A gRPC server, not yet listening. */
export interface GrpcServer {
  /** Binds and starts serving; resolves with the bound port. */
  start(): Promise<{ port: number }>;
  /** Health NOT_SERVING, then drains calls for at most `graceMs`, then cancels the rest. */
  close(graceMs?: number): Promise<void>;
  /** Calls in flight now (health and reflection excluded). */
  readonly inFlight: number;
}

export const DEFAULT_GRPC_PORT = 8500;
export const DEFAULT_MAX_RECEIVE_MESSAGE_BYTES = 32 * 1024 * 1024;
export const DEFAULT_MAX_SEND_MESSAGE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_CONCURRENT_CALLS = 1024;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function credentials(tls: GrpcTlsOptions | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const pair = { private_key: Buffer.from(tls.key), cert_chain: Buffer.from(tls.cert) };
  return grpc.ServerCredentials.createSsl(tls.ca === undefined ? null : Buffer.from(tls.ca), [pair], tls.ca !== undefined);
}

/** grpc-js handlers for a service's unary implementations (typed per method by the generated code). */
function implement(wrapper: UnaryWrapper, service: string, impls: object): grpc.UntypedServiceImplementation {
  const out: grpc.UntypedServiceImplementation = {};
  // The per-method request/response types were checked where `impls` was built; here they are all alike.
  for (const [method, impl] of Object.entries(impls) as [string, UnaryImpl<never>][]) {
    out[method] = wrapper.wrap(`${service}/${method}`, impl);
  }
  return out;
}

/** Model-management methods: only with `admin`, and behind the admin token when one is set. */
const REPOSITORY_METHOD = /^\/(inference\.GRPCInferenceService\/Repository|tensorflow\.serving\.ModelService\/HandleReloadConfigRequest)/;

/** Creates the gRPC server over `inference` (call {@link GrpcServer.start} to listen). */
export function createGrpcServer(inference: GrpcInference, options: GrpcServerOptions = {}): GrpcServer {
  const logger = options.logger ?? silentLogger;
  const protos = loadGrpcProtos();
  const maxConcurrentCalls = options.maxConcurrentCalls ?? DEFAULT_MAX_CONCURRENT_CALLS;
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const authToken = options.auth?.token;
  const adminToken = typeof options.admin === 'object' ? options.admin.token : undefined;
  const admin = options.admin !== undefined && options.admin !== false;
  let accepting = true;

  const interceptors: grpc.ServerInterceptor[] = [];
  if (authToken !== undefined || adminToken !== undefined) {
    const general = authToken === undefined ? undefined : [authToken];
    const repository = adminToken === undefined ? general : [adminToken];
    interceptors.push(createBearerAuthInterceptor((path) => (REPOSITORY_METHOD.test(path) ? repository : general)));
  }
  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxReceiveMessageBytes ?? DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
    'grpc.max_send_message_length': options.maxSendMessageBytes ?? DEFAULT_MAX_SEND_MESSAGE_BYTES,
    interceptors,
  });

  const wrapper = createUnaryWrapper({
    metrics: createGrpcMetrics(options.registry ?? inference.metrics.registry),
    logger,
    maxConcurrentCalls,
    requestTimeoutMs,
  });
  const decodeLimits: DecodeLimits = {
    maxElements: options.maxRequestElements ?? DEFAULT_DECODE_LIMITS.maxElements,
    maxBytesElements: options.maxRequestBytesElements ?? DEFAULT_DECODE_LIMITS.maxBytesElements,
  };
  const tf = createTfServingHandlers(inference, { tensorContent: options.tensorContent === true, admin, decodeLimits });
  const oip = createOipHandlers(inference, {
    decodeLimits,
    serverName: options.serverName ?? 'inflow',
    serverVersion: options.serverVersion ?? packageVersion(),
    admin,
    accepting: () => accepting,
    notReady: () => notReadyReason(options.readiness),
  });
  const health = createHealthService(inference, {
    services: [GrpcServiceName.PREDICTION, GrpcServiceName.MODEL, GrpcServiceName.INFERENCE],
    logger,
    ...(options.readiness ? { readiness: options.readiness } : {}),
  });
  const tolerant = tolerantServiceDefinition;
  server.addService(tolerant(GrpcServiceName.PREDICTION), implement(wrapper, GrpcServiceName.PREDICTION, tf.prediction));
  server.addService(tolerant(GrpcServiceName.MODEL), implement(wrapper, GrpcServiceName.MODEL, tf.model));
  server.addService(tolerant(GrpcServiceName.INFERENCE), implement(wrapper, GrpcServiceName.INFERENCE, oip));
  server.addService(tolerant(GrpcServiceName.HEALTH), health.implementation);
  if (options.reflection !== false) new ReflectionService(protos.packageDefinition).addToServer(server);

  let started: Promise<{ port: number }> | undefined;
  let closing: Promise<void> | undefined;
  return {
    get inFlight() {
      return wrapper.inFlight;
    },
    start() {
      started ??= new Promise<{ port: number }>((resolve, reject) => {
        const host = options.host ?? '0.0.0.0';
        const port = options.port ?? DEFAULT_GRPC_PORT;
        const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
        server.bindAsync(address, credentials(options.tls), (error, bound) => {
          if (error) {
            reject(new InflowError('UNAVAILABLE', `gRPC server cannot listen on ${address}: ${error.message}`, { cause: error }));
            return;
          }
          logger.info({ address, port: bound, tls: options.tls !== undefined }, 'gRPC server listening');
          resolve({ port: bound });
        });
      });
      return started;
    },
    close(graceMs = 10_000) {
      closing ??= (async () => {
        accepting = false;
        health.setShuttingDown();
        // Watch streams would hold tryShutdown open until the grace period ends.
        health.close();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            logger.warn({ inFlight: wrapper.inFlight, graceMs }, 'gRPC drain timed out; cancelling the remaining calls');
            server.forceShutdown();
            resolve();
          }, graceMs);
          server.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      })();
      return closing;
    },
  };
}
