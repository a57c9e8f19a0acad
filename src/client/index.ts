/**
 * The remote deployment mode's client (docs/architecture.md): an Inferencer over TF Serving and Open
 * Inference Protocol servers, REST and gRPC, with retries, a circuit breaker and an embedded
 * fallback.
 */
export {
  type CircuitBreaker,
  type CircuitBreakerOptions,
  type CircuitPermit,
  CircuitState,
  createCircuitBreaker,
  DEFAULT_CIRCUIT_BREAKER,
} from './circuit-breaker.ts';
export {
  circuitBreakerConfigSchema,
  type RemoteClientConfig,
  type RemoteClientConfigInput,
  remoteClientConfigSchema,
  retryConfigSchema,
} from './remote-config.ts';
export { codeOfGrpcStatus, codeOfHttpStatus, RemoteProtocol } from './remote-errors.ts';
export { createProtocolClient, createRemoteInferencer, type RemoteInferencerOptions } from './remote-inferencer.ts';
export {
  backoffMs,
  createResilientInferencer,
  DEFAULT_RETRY,
  type ResilienceOptions,
  type ResilienceStats,
  type ResilientInferencer,
  type RetryOptions,
  type ServedBy,
  type ServedInferResponse,
} from './resilient-inferencer.ts';
