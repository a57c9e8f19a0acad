/**
 * A small promise-based gRPC client over the same .proto definitions the server loads, for
 * tests, benches and tools: `unary(service, method, request)` and raw-byte calls that bypass
 * serialization (to send malformed messages).
 */
import * as grpc from '@grpc/grpc-js';
import { type GrpcServiceName, loadGrpcProtos } from './grpc-protos.ts';

/** Per-call options. */
export interface CallOptions {
  metadata?: grpc.Metadata;
  /** Absolute deadline (Date) or ms from now (number). */
  deadline?: Date | number;
  /** Receives the call so a test can cancel it. */
  onCall?: (call: grpc.ClientUnaryCall) => void;
}

/** A gRPC error as the client sees it. */
export type GrpcError = grpc.ServiceError;

/** A client of every inflow gRPC service on one channel. */
export interface GrpcTestClient {
  readonly channel: grpc.Client;
  unary<T = Record<string, unknown>>(service: GrpcServiceName, method: string, request: object, options?: CallOptions): Promise<T>;
  /** Sends `bytes` as the request message of `service/method` (no serialization); resolves with the raw response bytes. */
  unaryBytes(service: GrpcServiceName, method: string, bytes: Buffer, options?: CallOptions): Promise<Buffer>;
  close(): void;
}

function callOptions(options: CallOptions): grpc.CallOptions {
  if (options.deadline === undefined) return {};
  return { deadline: typeof options.deadline === 'number' ? Date.now() + options.deadline : options.deadline };
}

/** Connects to `address` (`host:port`). */
export function createGrpcTestClient(
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  channelOptions: grpc.ChannelOptions = {},
): GrpcTestClient {
  const channel = new grpc.Client(address, credentials, {
    'grpc.max_receive_message_length': -1,
    'grpc.max_send_message_length': -1,
    ...channelOptions,
  });
  const { services } = loadGrpcProtos();
  function definition(service: GrpcServiceName, method: string): grpc.MethodDefinition<object, unknown> {
    const found = services[service][method];
    if (!found) throw new Error(`${service} has no method ${method}`);
    return found as grpc.MethodDefinition<object, unknown>;
  }
  function call<Req, Res>(
    path: string,
    serialize: (value: Req) => Buffer,
    deserialize: (bytes: Buffer) => Res,
    request: Req,
    options: CallOptions,
  ): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      const c = channel.makeUnaryRequest(
        path,
        serialize,
        deserialize,
        request,
        options.metadata ?? new grpc.Metadata(),
        callOptions(options),
        (error, response) => {
          if (error) reject(error);
          else resolve(response as Res);
        },
      );
      options.onCall?.(c);
    });
  }
  return {
    channel,
    unary<T>(service: GrpcServiceName, method: string, request: object, options: CallOptions = {}) {
      const d = definition(service, method);
      return call(d.path, d.requestSerialize, (bytes) => d.responseDeserialize(bytes) as T, request, options);
    },
    unaryBytes(service, method, bytes, options = {}) {
      const d = definition(service, method);
      return call(
        d.path,
        (b: Buffer) => b,
        (b) => b,
        bytes,
        options,
      );
    },
    close() {
      channel.close();
    },
  };
}
