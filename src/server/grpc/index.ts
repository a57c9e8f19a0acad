/**
 * The gRPC transport of the model server: TF Serving (PredictionService, ModelService), the Open
 * Inference Protocol (GRPCInferenceService), grpc.health.v1 and reflection, over one
 * InferenceService. The .proto files live in src/protocol and are loaded at start-up.
 */
export {
  createGrpcServer,
  DEFAULT_GRPC_PORT,
  DEFAULT_MAX_CONCURRENT_CALLS,
  DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
  DEFAULT_MAX_SEND_MESSAGE_BYTES,
  DEFAULT_REQUEST_TIMEOUT_MS,
  type GrpcServer,
  type GrpcServerOptions,
  type GrpcTlsOptions,
} from './grpc-server.ts';
export type { GrpcInference } from './grpc-inference.ts';
export {
  GRPC_PROTO_FILES,
  GrpcServiceName,
  grpcClientConstructor,
  loadGrpcProtos,
  SIGNATURE_DEF_MAP_TYPE_URL,
  type GrpcProtos,
} from './grpc-protos.ts';
export { ROUTING_KEY_METADATA } from './oip-service.ts';
export { ServingStatus } from './health-service.ts';
