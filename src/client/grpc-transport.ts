/**
 * The gRPC transport of the gRPC clients: one channel (HTTP/2 connection) per server, the
 * services loaded at run time from the .proto files in src/protocol by @grpc/proto-loader with
 * {@link PROTO_LOAD_OPTIONS} (as the server does), a deadline per call, the caller's AbortSignal
 * cancelling the call, and gRPC statuses mapped to InflowErrors (see remote-errors.ts).
 */
import type { Span } from '@opentelemetry/api';
import { endWithError, injectContext, startClientSpan, tracingActive } from '../observability/tracing.ts';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type protobuf from 'protobufjs';
import { loadProtoRoot, PROTO_LOAD_OPTIONS } from '../protocol/proto-files.ts';
import { cancelledError, grpcStatusError, type RemoteEndpoint } from './remote-errors.ts';

/** The .proto files of the services the clients call, relative to PROTO_DIR. */
const CLIENT_PROTO_FILES = [
  'tensorflow_serving/apis/prediction_service.proto',
  'tensorflow_serving/apis/model_service.proto',
  'inference/grpc_service.proto',
] as const;

/** Fully qualified names of the services the clients call. */
export const ClientService = {
  PREDICTION: 'tensorflow.serving.PredictionService',
  MODEL: 'tensorflow.serving.ModelService',
  INFERENCE: 'inference.GRPCInferenceService',
} as const;
export type ClientService = (typeof ClientService)[keyof typeof ClientService];

interface LoadedProtos {
  services: Record<ClientService, grpc.ServiceDefinition>;
  signatureDefMap: protobuf.Type;
}

let loaded: LoadedProtos | undefined;

/** The service definitions (loaded once per process) and TF's SignatureDefMap type (GetModelMetadata's Any). */
export function clientProtos(): LoadedProtos {
  if (loaded) return loaded;
  const definition = protoLoader.loadSync([...CLIENT_PROTO_FILES], {
    ...PROTO_LOAD_OPTIONS,
    includeDirs: [...PROTO_LOAD_OPTIONS.includeDirs],
  });
  const service = (name: ClientService): grpc.ServiceDefinition => definition[name] as grpc.ServiceDefinition;
  loaded = {
    services: {
      [ClientService.PREDICTION]: service(ClientService.PREDICTION),
      [ClientService.MODEL]: service(ClientService.MODEL),
      [ClientService.INFERENCE]: service(ClientService.INFERENCE),
    },
    signatureDefMap: loadProtoRoot(['tensorflow_serving/apis/get_model_metadata.proto']).lookupType('tensorflow.serving.SignatureDefMap'),
  };
  return loaded;
}

/** Options of {@link createGrpcTransport}. */
export interface GrpcTransportOptions {
  /** `endpoint.url` is the channel target, `host:port`. */
  endpoint: RemoteEndpoint;
  /** Sent as `authorization: Bearer <token>` metadata. */
  bearerToken?: string | undefined;
  /** Deadline of one call, ms; 0 disables. */
  timeoutMs: number;
  /** Largest message either way, bytes. */
  maxMessageBytes: number;
  /**
   * Reconnect backoff of the channel, ms. grpc-js's defaults (1 s growing to 120 s) would keep a
   * restarted server unused for minutes; the circuit breaker already bounds how often calls try.
   */
  reconnectBackoffMs: { initial: number; max: number };
}

/** Per-call options. */
export interface GrpcCallOptions {
  signal?: AbortSignal | undefined;
  /** Extra metadata (e.g. the routing key). */
  metadata?: Record<string, string>;
}

/** A promise-based client of one server's gRPC services. */
export interface GrpcTransport {
  readonly endpoint: RemoteEndpoint;
  /** The per-call deadline, ms (0: none). */
  readonly timeoutMs: number;
  /** Calls `service/method`; rejects with a mapped InflowError. */
  unary<T>(service: ClientService, method: string, request: object, options?: GrpcCallOptions): Promise<T>;
  /** Waits (at most `timeoutMs`; 5 s when that is 0) for the channel to connect; false when it did not. */
  waitForReady(timeoutMs: number): Promise<boolean>;
  close(): void;
}

/** Creates the transport (the channel connects on the first call). */
export function createGrpcTransport(options: GrpcTransportOptions): GrpcTransport {
  const { endpoint, timeoutMs } = options;
  const { services } = clientProtos();
  const channel = new grpc.Client(endpoint.url, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': options.maxMessageBytes,
    'grpc.max_send_message_length': options.maxMessageBytes,
    'grpc.initial_reconnect_backoff_ms': options.reconnectBackoffMs.initial,
    'grpc.max_reconnect_backoff_ms': options.reconnectBackoffMs.max,
  });
  const baseMetadata = new grpc.Metadata();
  if (options.bearerToken !== undefined) baseMetadata.set('authorization', `Bearer ${options.bearerToken}`);

  function method(service: ClientService, name: string): grpc.MethodDefinition<object, unknown> {
    const found = services[service][name];
    if (!found) throw new Error(`${service} has no method ${name}`);
    return found as grpc.MethodDefinition<object, unknown>;
  }

  return {
    endpoint,
    timeoutMs,
    unary<T>(service: ClientService, name: string, request: object, callOptions: GrpcCallOptions = {}): Promise<T> {
      const { signal } = callOptions;
      if (signal?.aborted) return Promise.reject(cancelledError(endpoint, signal));
      const definition = method(service, name);
      const metadata = baseMetadata.clone();
      for (const [key, value] of Object.entries(callOptions.metadata ?? {})) metadata.set(key, value);
      // Tracing on: a CLIENT span (RPC semantic conventions), its context in the call's metadata.
      let span: Span | undefined;
      if (tracingActive()) {
        const traced = startClientSpan(definition.path.slice(1), { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': name });
        span = traced.span;
        injectContext((k, v) => metadata.set(k, v), traced.context);
      }
      return new Promise<T>((resolve, reject) => {
        const onAbort = (): void => call.cancel();
        const call = channel.makeUnaryRequest(
          definition.path,
          definition.requestSerialize,
          definition.responseDeserialize,
          request,
          metadata,
          timeoutMs > 0 ? { deadline: Date.now() + timeoutMs } : {},
          (error, response) => {
            signal?.removeEventListener('abort', onAbort);
            if (span) {
              span.setAttribute('rpc.grpc.status_code', error ? error.code : 0);
              if (error) endWithError(span, error);
              else span.end();
            }
            if (!error) return resolve(response as T);
            if (signal?.aborted) return reject(cancelledError(endpoint, signal));
            reject(grpcStatusError(endpoint, error.code, error.details, error));
          },
        );
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    },
    waitForReady(ms) {
      return new Promise<boolean>((resolve) => {
        // Never unbounded: a readiness probe must answer even with the call deadline disabled.
        channel.waitForReady(Date.now() + (ms > 0 ? ms : 5000), (error) => resolve(error === undefined || error === null));
      });
    },
    close() {
      channel.close();
    },
  };
}
