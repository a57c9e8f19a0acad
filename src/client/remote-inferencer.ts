/**
 * The remote deployment mode's Inferencer: a protocol client (TF Serving or OIP, REST or gRPC)
 * wrapped in retries, a circuit breaker and an optional embedded fallback. Works against inflow's
 * own server and unmodified TF Serving, Triton, MLServer and KServe.
 *
 * ```ts
 * const remote = createRemoteInferencer({ protocol: 'oip-grpc', url: 'models:8500', fallback: local });
 * const { outputs, servedBy } = await remote.infer({ model: 'digits-mlp', inputs: { input } });
 * ```
 */
import { validateConfig } from '../config/load-config.ts';
import { type Clock, systemClock } from '../serving/clock.ts';
import type { Inferencer } from '../serving/types.ts';
import { createGrpcTransport } from './grpc-transport.ts';
import { createHttpTransport } from './http-transport.ts';
import { createOipGrpcClient } from './oip-grpc-client.ts';
import { createOipRestClient } from './oip-rest-client.ts';
import { type RemoteClientConfig, type RemoteClientConfigInput, remoteClientConfigSchema } from './remote-config.ts';
import type { RemoteEndpoint } from './remote-errors.ts';
import { createResilientInferencer, type ResilientInferencer } from './resilient-inferencer.ts';
import { createTfServingGrpcClient } from './tfserving-grpc-client.ts';
import { createTfServingRestClient } from './tfserving-rest-client.ts';

/** Options of {@link createRemoteInferencer}: the configuration plus what cannot be written in a file. */
export type RemoteInferencerOptions = RemoteClientConfigInput & {
  /** Answers when the circuit is open or retries are exhausted (the caller owns and closes it). */
  fallback?: Inferencer;
  /** Time source of backoffs, the breaker and the TF REST signature cache. Default: the process clock. */
  clock?: Clock;
  /** Random numbers in [0, 1) for the backoff jitter. Default Math.random. */
  random?: () => number;
};

/**
 * The bare protocol client of a validated configuration: no retries, no breaker (each call is
 * one attempt under the `timeoutMs` deadline). {@link createRemoteInferencer} wraps it.
 */
export function createProtocolClient(config: RemoteClientConfig, clock: Clock = systemClock): Inferencer {
  const endpoint: RemoteEndpoint = { protocol: config.protocol, url: config.url };
  const bearerToken = config.auth?.token;
  switch (config.protocol) {
    case 'tfserving-rest':
    case 'oip-rest': {
      const transport = createHttpTransport({
        endpoint,
        bearerToken,
        timeoutMs: config.timeoutMs,
        maxSockets: config.maxSockets,
        maxResponseBytes: config.maxMessageBytes,
      });
      return config.protocol === 'oip-rest'
        ? createOipRestClient(transport, { binary: config.oipBinary })
        : createTfServingRestClient(transport, { clock, metadataTtlMs: config.metadataTtlMs });
    }
    case 'tfserving-grpc':
    case 'oip-grpc': {
      const transport = createGrpcTransport({
        endpoint,
        bearerToken,
        timeoutMs: config.timeoutMs,
        maxMessageBytes: config.maxMessageBytes,
        reconnectBackoffMs: config.reconnectBackoffMs,
      });
      return config.protocol === 'oip-grpc' ? createOipGrpcClient(transport) : createTfServingGrpcClient(transport);
    }
  }
}

/**
 * Creates the remote Inferencer. Options are validated (INVALID_CONFIG naming every problem);
 * nothing connects until the first call. `infer` answers with `servedBy: 'remote' | 'fallback'`,
 * `stats()` counts calls, retries, failures and fallbacks and gives the circuit's state.
 */
export function createRemoteInferencer(options: RemoteInferencerOptions): ResilientInferencer {
  const { fallback, clock = systemClock, random, ...rest } = options;
  const config = validateConfig(remoteClientConfigSchema, rest, 'remote client options');
  return createResilientInferencer(createProtocolClient(config, clock), {
    name: config.url,
    retry: config.retry,
    circuitBreaker: config.circuitBreaker,
    fallback,
    clock,
    ...(random ? { random } : {}),
  });
}
