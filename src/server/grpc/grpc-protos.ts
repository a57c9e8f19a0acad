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
import protobuf from 'protobufjs';
import { loadProtoRoot, PROTO_LOAD_OPTIONS } from '../../protocol/proto-files.ts';
import { createInferRequestDeserializer } from './infer-request-decoder.ts';

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
  /** The same .proto files as protobufjs types (for {@link directSerializer}). */
  readonly root: protobuf.Root;
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
    root: loadProtoRoot([...GRPC_PROTO_FILES]),
  };
  return cached;
}

/**
 * The hot methods whose responses go through {@link directSerializer}. The others keep
 * proto-loader's serializer, which also writes proto3 fields set to their default (`ready:
 * false`): clients that decode with proto-loader's `defaults: false` see those fields, and the
 * management methods gain nothing measurable from one pass.
 */
export const DIRECT_SERIALIZED: ReadonlySet<string> = new Set(['/inference.GRPCInferenceService/ModelInfer']);

/** Whether `type` or any message it contains has an enum field (cycle-safe). */
function containsEnum(type: protobuf.Type, seen = new Set<protobuf.Type>()): boolean {
  if (seen.has(type)) return false;
  seen.add(type);
  type.resolveAll();
  for (const field of type.fieldsArray) {
    const resolved = field.resolvedType;
    if (resolved instanceof protobuf.Enum) return true;
    if (resolved instanceof protobuf.Type && containsEnum(resolved, seen)) return true;
  }
  return false;
}

/**
 * A response serializer that encodes the handler's plain object in one pass (`Type.encode`),
 * without proto-loader's `fromObject` copy of the whole object graph first: for digits-mlp's
 * ModelInferResponse (112 bytes) 3.2 µs instead of 9.2 µs per call here.
 * Only for responses without enum fields: handlers give enums as names (`DT_FLOAT`), which only
 * `fromObject` turns into numbers; those keep proto-loader's serializer (undefined here).
 * Handlers return the generated response types, so every other field already has its wire type:
 * strings, numbers, int64 as number or decimal string, bytes as Buffer. The bytes differ from
 * proto-loader's only in omitting proto3 fields set to their default (an empty `id`), as Triton
 * and every proto3 encoder do: proto3 readers cannot tell them from absent.
 */
export function directSerializer(root: protobuf.Root, service: string, method: string): ((value: unknown) => Buffer) | undefined {
  const rpc = root.lookupService(service).methods[method];
  rpc?.resolve();
  const type = rpc?.resolvedResponseType;
  if (!type || containsEnum(type)) return undefined;
  return (value) => {
    const bytes = type.encode(value as Record<string, unknown>).finish();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
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

/** Paths whose requests the server decodes in one pass (infer-request-decoder.ts) instead of proto-loader's decode + toObject. */
const DIRECT_DESERIALIZED: ReadonlyMap<string, () => (bytes: Buffer) => unknown> = new Map([
  ['/inference.GRPCInferenceService/ModelInfer', createInferRequestDeserializer],
]);

/**
 * A service definition for the server whose request deserializers never throw (see
 * {@link MalformedRequest}), whose ModelInfer requests decode in one pass ({@link DIRECT_DESERIALIZED})
 * and whose responses without enums serialize in one pass ({@link directSerializer}).
 */
export function tolerantServiceDefinition(name: GrpcServiceName): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  const protos = loadGrpcProtos();
  for (const [method, definition] of Object.entries(protos.services[name])) {
    const deserialize = DIRECT_DESERIALIZED.get(definition.path)?.() ?? definition.requestDeserialize;
    out[method] = {
      ...definition,
      responseSerialize:
        (DIRECT_SERIALIZED.has(definition.path) ? directSerializer(protos.root, name, method) : undefined) ?? definition.responseSerialize,
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
