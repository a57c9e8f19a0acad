/**
 * The gRPC services inflow serves, loaded from the .proto files in src/protocol at start-up by
 * @grpc/proto-loader with {@link PROTO_LOAD_OPTIONS}: the message objects are exactly those the
 * TensorProto codec reads and writes, and the same package definition feeds server reflection.
 * Clients in tests and benches load the same definition. Their TypeScript types are generated from
 * the same .proto files with the same options (src/protocol/generated, by scripts/gen-proto.sh);
 * the handlers take the generated `…__Output` request types and return the generated response types.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type protobuf from 'protobufjs';
import { loadProtoRoot, PROTO_LOAD_OPTIONS } from '../../protocol/proto-files.ts';

/** The .proto files of the served services, relative to PROTO_DIR (imports pull in the rest). */
export const GRPC_PROTO_FILES = [
  'tensorflow_serving/apis/prediction_service.proto',
  'tensorflow_serving/apis/model_service.proto',
  'inference/grpc_service.proto',
  'grpc/health/v1/health.proto',
] as const;

/** Fully qualified names of the served services. */
export const GrpcServiceName = {
  PREDICTION: 'tensorflow.serving.PredictionService',
  MODEL: 'tensorflow.serving.ModelService',
  INFERENCE: 'inference.GRPCInferenceService',
  HEALTH: 'grpc.health.v1.Health',
} as const;
export type GrpcServiceName = (typeof GrpcServiceName)[keyof typeof GrpcServiceName];

/** type_url of the Any that GetModelMetadata packs the signature map into (TF Serving's). */
export const SIGNATURE_DEF_MAP_TYPE_URL = 'type.googleapis.com/tensorflow.serving.SignatureDefMap';

/** What {@link loadGrpcProtos} returns. */
export interface GrpcProtos {
  /** For @grpc/reflection and clients. */
  readonly packageDefinition: protoLoader.PackageDefinition;
  /** Service definitions by name, for `server.addService` and `grpc.makeGenericClientConstructor`. */
  readonly services: Readonly<Record<GrpcServiceName, grpc.ServiceDefinition>>;
  /** tensorflow.serving.SignatureDefMap, to pack and unpack GetModelMetadata's Any. */
  readonly signatureDefMap: protobuf.Type;
}

let cached: GrpcProtos | undefined;

/** Loads (once per process, ~100 ms) and returns the service definitions. */
export function loadGrpcProtos(): GrpcProtos {
  if (cached) return cached;
  const packageDefinition = protoLoader.loadSync([...GRPC_PROTO_FILES], {
    ...PROTO_LOAD_OPTIONS,
    includeDirs: [...PROTO_LOAD_OPTIONS.includeDirs],
  });
  const service = (name: GrpcServiceName): grpc.ServiceDefinition => packageDefinition[name] as grpc.ServiceDefinition;
  cached = {
    packageDefinition,
    services: {
      [GrpcServiceName.PREDICTION]: service(GrpcServiceName.PREDICTION),
      [GrpcServiceName.MODEL]: service(GrpcServiceName.MODEL),
      [GrpcServiceName.INFERENCE]: service(GrpcServiceName.INFERENCE),
      [GrpcServiceName.HEALTH]: service(GrpcServiceName.HEALTH),
    },
    signatureDefMap: loadProtoRoot(['tensorflow_serving/apis/get_model_metadata.proto']).lookupType('tensorflow.serving.SignatureDefMap'),
  };
  return cached;
}

/**
 * What a server-side request deserializer returns instead of throwing on bytes that are not a
 * valid message: grpc-js would answer INTERNAL; the handler answers INVALID_ARGUMENT with why.
 */
export class MalformedRequest {
  readonly method: string;
  readonly error: Error;

  constructor(method: string, error: Error) {
    this.method = method;
    this.error = error;
  }
}

/** A service definition for the server whose request deserializers never throw (see {@link MalformedRequest}). */
export function tolerantServiceDefinition(name: GrpcServiceName): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [method, definition] of Object.entries(loadGrpcProtos().services[name])) {
    const deserialize = definition.requestDeserialize;
    out[method] = {
      ...definition,
      requestDeserialize: (bytes: Buffer): unknown => {
        try {
          return deserialize(bytes);
        } catch (error) {
          return new MalformedRequest(definition.path, error instanceof Error ? error : new Error(String(error)));
        }
      },
    };
  }
  return out;
}

/** A client constructor for one of the services (tests, benches, tools). */
export function grpcClientConstructor(name: GrpcServiceName): grpc.ServiceClientConstructor {
  return grpc.makeGenericClientConstructor(loadGrpcProtos().services[name], name);
}
