/**
 * `grpc.health.v1.Health`: SERVING while the server accepts calls, every model is ready (OIP's
 * server readiness) and the Kafka cluster the server uses is reachable (../readiness-gate.ts);
 * NOT_SERVING otherwise and from the start of shutdown. Service ""
 * and every served service name report the same; other names are NOT_FOUND (Check) or
 * SERVICE_UNKNOWN (Watch), as the health checking protocol says.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../observability/logger.ts';
import type { HealthCheckRequest__Output } from '../../protocol/generated/grpc/health/v1/HealthCheckRequest.ts';
import {
  _grpc_health_v1_HealthCheckResponse_ServingStatus as GeneratedServingStatus,
  type HealthCheckResponse,
} from '../../protocol/generated/grpc/health/v1/HealthCheckResponse.ts';
import { boundedDetails } from './grpc-call.ts';
import type { GrpcInference } from './grpc-inference.ts';
import { MalformedRequest } from './grpc-protos.ts';
import { notReadyReason, type ReadinessGate } from '../readiness-gate.ts';

/** grpc.health.v1.HealthCheckResponse.ServingStatus names (the generated `as const` object). */
export const ServingStatus = GeneratedServingStatus;
export type ServingStatus = (typeof ServingStatus)[keyof typeof ServingStatus];

/** The health service and the switch shutdown flips. */
export interface HealthService {
  readonly implementation: grpc.UntypedServiceImplementation;
  /** The status of the server now. */
  status(): Promise<ServingStatus>;
  /** Stops reporting SERVING (start of shutdown); watchers are told at once. */
  setShuttingDown(): void;
  /** Ends open Watch streams (the server is closing). */
  close(): void;
}

/** Options of {@link createHealthService}. */
export interface HealthServiceOptions {
  /** Service names that report the server's status (besides ""). */
  services: readonly string[];
  logger: Logger;
  /** Dependencies besides the models (Kafka): NOT_SERVING while one gives a reason; watchers hear each change. */
  readiness?: readonly ReadinessGate[];
}

function malformed(request: MalformedRequest): string {
  return `${request.method}: the request is not a valid protobuf message (${request.error.message})`;
}

export function createHealthService(inference: GrpcInference, options: HealthServiceOptions): HealthService {
  const known = new Set(['', ...options.services]);
  const watchers = new Set<() => void>();
  let shuttingDown = false;
  let closing = false;

  async function status(): Promise<ServingStatus> {
    if (shuttingDown || notReadyReason(options.readiness) !== undefined) return ServingStatus.NOT_SERVING;
    return (await inference.ready()) ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
  }

  function notify(): void {
    for (const watcher of watchers) watcher();
  }
  // Readiness changes when versions load or unload; without a repository only shutdown changes it.
  const unsubscribe = inference.repository?.onChange(notify);
  const unsubscribeGates = (options.readiness ?? []).map((gate) => gate.onChange(notify));

  const check: grpc.handleUnaryCall<HealthCheckRequest__Output | MalformedRequest, HealthCheckResponse> = (call, callback) => {
    if (call.request instanceof MalformedRequest) {
      callback({ code: grpc.status.INVALID_ARGUMENT, details: malformed(call.request) });
      return;
    }
    const service = call.request.service ?? '';
    if (!known.has(service)) {
      const details = `unknown service "${service}"; known: ${[...known].filter(Boolean).join(', ')}`;
      callback({ code: grpc.status.NOT_FOUND, details: boundedDetails(details) });
      return;
    }
    status().then(
      (s) => callback(null, { status: s }),
      (error: unknown) => callback({ code: grpc.status.INTERNAL, details: (error as Error).message }),
    );
  };

  const watch: grpc.handleServerStreamingCall<HealthCheckRequest__Output | MalformedRequest, HealthCheckResponse> = (call) => {
    if (call.request instanceof MalformedRequest) {
      // grpc-js ends a server stream with the status of an 'error' it emits.
      call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: malformed(call.request) });
      return;
    }
    const service = call.request.service ?? '';
    let last: ServingStatus | undefined;
    const send = (s: ServingStatus): void => {
      if (s === last || call.cancelled) return;
      last = s;
      call.write({ status: s });
    };
    const onChange = (): void => {
      if (!known.has(service)) {
        // The protocol keeps the stream open: the service may appear later (it never does here).
        send(ServingStatus.SERVICE_UNKNOWN);
      } else if (shuttingDown) {
        send(ServingStatus.NOT_SERVING);
      } else {
        status().then(send, (error: unknown) => options.logger.warn({ err: error }, 'health status failed'));
      }
      if (closing) {
        watchers.delete(onChange);
        if (!call.cancelled) call.end();
      }
    };
    watchers.add(onChange);
    call.on('cancelled', () => watchers.delete(onChange));
    onChange();
  };

  return {
    implementation: { Check: check, Watch: watch },
    status,
    setShuttingDown() {
      shuttingDown = true;
      notify();
    },
    close() {
      closing = true;
      unsubscribe?.();
      for (const off of unsubscribeGates) off();
      notify();
      watchers.clear();
    },
  };
}
