/**
 * `--server <url>` of `inflow predict` and `inflow bench`: which protocol a URL means, and the
 * remote client for it (src/client: works against inflow, TF Serving, Triton, MLServer, KServe).
 */
import { createRemoteInferencer, RemoteProtocol } from '../client/index.ts';
import { InflowError } from '../errors.ts';
import type { Inferencer } from '../serving/types.ts';

const PROTOCOLS: readonly string[] = Object.values(RemoteProtocol);

/**
 * The protocol to speak: `--protocol` when given, else from the URL — `http(s)://…` is the Open
 * Inference Protocol over REST, `host:port` the Open Inference Protocol over gRPC.
 */
export function serverProtocol(url: string, protocol: string | undefined): RemoteProtocol {
  if (protocol !== undefined) {
    if (!PROTOCOLS.includes(protocol)) {
      throw new InflowError('INVALID_ARGUMENT', `--protocol must be one of ${PROTOCOLS.join(', ')}, got "${protocol}"`);
    }
    return protocol as RemoteProtocol;
  }
  return /^https?:\/\//.test(url) ? 'oip-rest' : 'oip-grpc';
}

/**
 * The remote client for a server: one attempt per call and no circuit breaker (a CLI reports
 * what happened; it does not hide failures behind retries). Bearer token from INFLOW_AUTH_TOKEN.
 */
export function serverInferencer(
  url: string,
  protocol: RemoteProtocol,
  options: { timeoutMs?: number; maxSockets?: number } = {},
): Inferencer {
  const token = process.env.INFLOW_AUTH_TOKEN;
  return createRemoteInferencer({
    protocol,
    url,
    retry: false,
    circuitBreaker: false,
    timeoutMs: options.timeoutMs ?? 10_000,
    ...(options.maxSockets !== undefined ? { maxSockets: options.maxSockets } : {}),
    ...(token ? { auth: { token } } : {}),
  });
}
