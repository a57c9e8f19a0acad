/**
 * What every unary gRPC handler of inflow shares: a bound on calls in flight (RESOURCE_EXHAUSTED
 * beyond it, never a growing queue), an AbortSignal that fires when the client cancels or the
 * deadline passes, InflowError → gRPC status, and a request counter plus latency histogram
 * labelled by method and status code.
 */
import type * as grpc from '@grpc/grpc-js';
import { status as grpcStatus } from '@grpc/grpc-js';
import { Counter, Histogram, type Registry } from 'prom-client';
import { GrpcStatus, type GrpcStatusCode, grpcStatusName, InflowError } from '../../errors.ts';
import { context as otelContext, type Span } from '@opentelemetry/api';
import type { Logger } from '../../observability/logger.ts';
import { endWithError, startServerSpan, tracingActive } from '../../observability/tracing.ts';
import { MalformedRequest } from './grpc-protos.ts';

/** What a unary implementation gets besides the request. */
export interface CallContext {
  /** Aborted (reason: an InflowError CANCELLED or DEADLINE_EXCEEDED) when the call ends early. */
  readonly signal: AbortSignal;
  readonly metadata: grpc.Metadata;
}

/**
 * A unary method as inflow writes it: request object in (as the deserializer gives it, a generated
 * `…__Output` type), response object out (a generated input type), InflowError on failure.
 */
export type UnaryImpl<Req = unknown, Res extends object = object> = (request: Req, context: CallContext) => Promise<Res>;

/**
 * The {@link UnaryImpl} of every unary method of a generated `…Handlers` interface (from
 * src/protocol/generated), so a service's implementations are checked against its .proto:
 * each takes the method's `…Request__Output` and resolves with its `…Response`.
 */
export type UnaryImpls<Handlers> = {
  // The generated interfaces extend grpc.UntypedServiceImplementation, whose string index is dropped here.
  [M in keyof Handlers as string extends M ? never : M]: Handlers[M] extends grpc.handleUnaryCall<infer Req, infer Res>
    ? UnaryImpl<Req, Res & object>
    : never;
};

export { grpcStatusName };

/**
 * Most bytes a status message may take in the `grpc-message` trailer (percent-encoded). Clients cap
 * metadata (gRPC C-core at 8 KiB, Node's http2 at 64 KiB) and tear the whole connection down past
 * the cap, so a message that echoes a huge request field (a 100 KB model name) must be cut.
 */
export const MAX_STATUS_DETAILS_BYTES = 4096;

/**
 * `details` as it may go on the wire: well-formed (grpc-js percent-encodes it with encodeURI, which
 * throws on a lone surrogate) and cut to {@link MAX_STATUS_DETAILS_BYTES} once encoded.
 */
export function boundedDetails(details: string): string {
  const whole = details.toWellFormed();
  // A UTF-16 unit encodes to at most 9 bytes (%XX per UTF-8 byte): short messages need no measuring.
  if (whole.length * 9 <= MAX_STATUS_DETAILS_BYTES || encodeURI(whole).length <= MAX_STATUS_DETAILS_BYTES) return whole;
  const suffix = `… (${details.length} characters in all)`;
  const budget = MAX_STATUS_DETAILS_BYTES - encodeURI(suffix).length;
  // Every character encodes to at least one byte: a longer prefix cannot fit.
  let low = 0;
  let high = Math.min(whole.length, budget);
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (encodeURI(whole.slice(0, mid).toWellFormed()).length <= budget) low = mid;
    else high = mid - 1;
  }
  return `${whole.slice(0, low).toWellFormed()}${suffix}`;
}

/** Latency buckets, seconds: 50 µs … 10 s (as the inference metrics). */
const LATENCY = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

/** gRPC request metrics, registered once per registry (several servers may share one). */
export interface GrpcMetrics {
  readonly requests: Counter<'method' | 'code'>;
  readonly duration: Histogram<'method' | 'code'>;
}

export function createGrpcMetrics(registry: Registry): GrpcMetrics {
  const requestsName = 'inflow_grpc_requests_total';
  const durationName = 'inflow_grpc_request_duration_seconds';
  const requests =
    (registry.getSingleMetric(requestsName) as Counter<'method' | 'code'> | undefined) ??
    new Counter({
      name: requestsName,
      help: 'gRPC calls answered, by method and status code',
      labelNames: ['method', 'code'],
      registers: [registry],
    });
  const duration =
    (registry.getSingleMetric(durationName) as Histogram<'method' | 'code'> | undefined) ??
    new Histogram({
      name: durationName,
      help: 'Time from a gRPC call arriving to its status, by method and status code',
      labelNames: ['method', 'code'],
      buckets: LATENCY,
      registers: [registry],
    });
  return { requests, duration };
}

/** Options of {@link createUnaryWrapper}. */
export interface UnaryWrapperOptions {
  metrics: GrpcMetrics;
  logger: Logger;
  /** Most calls in flight at once (all wrapped methods together); more are answered RESOURCE_EXHAUSTED. */
  maxConcurrentCalls: number;
  /** Longest a call may run when the client set no (or a later) deadline, ms; 0 = no bound. */
  requestTimeoutMs: number;
  /** Fraction of successful calls written to the access log (failed ones always are). Default 0.01. */
  accessLogSampleRate?: number;
}

/** Turns {@link UnaryImpl}s into grpc-js handlers that share one in-flight bound. */
export interface UnaryWrapper {
  wrap<Req, Res extends object>(
    method: string,
    impl: UnaryImpl<Req, Res>,
    options?: { unlimited?: boolean },
  ): grpc.handleUnaryCall<Req | MalformedRequest, Res>;
  /** Calls in flight now. */
  readonly inFlight: number;
}

function deadlineMs(deadline: grpc.Deadline): number {
  return deadline instanceof Date ? deadline.getTime() : deadline;
}

/** The status an error becomes; a call aborted by cancel/deadline reports why it was aborted. */
function toStatus(error: unknown, signal: AbortSignal): InflowError {
  if (signal.aborted && signal.reason instanceof InflowError) return signal.reason;
  return InflowError.from(error);
}

export function createUnaryWrapper(options: UnaryWrapperOptions): UnaryWrapper {
  const { metrics, logger, maxConcurrentCalls, requestTimeoutMs } = options;
  const accessLogSampleRate = options.accessLogSampleRate ?? 0.01;
  let inFlight = 0;

  function record(method: string, code: GrpcStatusCode, started: number): void {
    const labels = { method, code: grpcStatusName(code) };
    const seconds = (performance.now() - started) / 1000;
    metrics.requests.inc(labels);
    metrics.duration.observe(labels, seconds);
    // Structured access log, sampled: every failed call, a fraction of the successful ones.
    if (code !== GrpcStatus.OK || (accessLogSampleRate > 0 && Math.random() < accessLogSampleRate)) {
      logger.info({ method, code: labels.code, ms: Math.round(seconds * 1e6) / 1e3 }, 'access');
    }
  }

  return {
    get inFlight() {
      return inFlight;
    },
    wrap<Req, Res extends object>(
      method: string,
      impl: UnaryImpl<Req, Res>,
      wrapOptions: { unlimited?: boolean } = {},
    ): grpc.handleUnaryCall<Req | MalformedRequest, Res> {
      const limited = wrapOptions.unlimited !== true;
      return (call, callback) => {
        const started = performance.now();
        if (limited && inFlight >= maxConcurrentCalls) {
          record(method, GrpcStatus.RESOURCE_EXHAUSTED, started);
          callback({
            code: grpcStatus.RESOURCE_EXHAUSTED,
            details: `too many calls in flight (limit ${maxConcurrentCalls}); retry with backoff`,
          });
          return;
        }
        if (limited) inFlight++;
        const controller = new AbortController();
        const receivedAt = Date.now();
        const clientDeadline = deadlineMs(call.getDeadline());
        const onCancel = (): void => {
          if (controller.signal.aborted) return;
          // grpc-js ends a call whose deadline passed as 'cancelled' too. The client's clock starts
          // before ours (the request's transit and our read of it), so a cancel that comes close to
          // our deadline is the client's deadline: slack of 10 % of the budget, at least 25 ms.
          const slack = Math.max(25, (clientDeadline - receivedAt) * 0.1);
          const expired = Number.isFinite(clientDeadline) && Date.now() >= clientDeadline - slack;
          controller.abort(
            expired
              ? new InflowError('DEADLINE_EXCEEDED', `${method}: the call's deadline passed before the answer was ready`)
              : new InflowError('CANCELLED', `${method}: the client cancelled the call`),
          );
        };
        call.on('cancelled', onCancel);
        // grpc-js answers DEADLINE_EXCEEDED itself; this timer stops the work behind the call too.
        const deadline = requestTimeoutMs > 0 ? Math.min(clientDeadline, Date.now() + requestTimeoutMs) : clientDeadline;
        let timer: NodeJS.Timeout | undefined;
        if (Number.isFinite(deadline)) {
          const abortOnDeadline = (): void => {
            if (controller.signal.aborted) return;
            const why = deadline < clientDeadline ? `the server's request timeout of ${requestTimeoutMs} ms` : "the call's deadline";
            controller.abort(new InflowError('DEADLINE_EXCEEDED', `${method}: ${why} passed before the answer was ready`));
          };
          const remaining = deadline - Date.now();
          if (remaining <= 0) abortOnDeadline();
          else timer = setTimeout(abortOnDeadline, remaining).unref();
        }
        const finish = (): void => {
          if (limited) inFlight--;
          if (timer) clearTimeout(timer);
          call.off('cancelled', onCancel);
        };
        // Tracing on: a SERVER span (RPC semantic conventions) whose parent is the caller's traceparent.
        let span: Span | undefined;
        let run = (): Promise<Res> => impl(call.request as Req, { signal: controller.signal, metadata: call.metadata });
        if (tracingActive()) {
          const slash = method.lastIndexOf('/');
          const traced = startServerSpan(method, (k) => call.metadata.get(k)[0]?.toString(), {
            'rpc.system': 'grpc',
            'rpc.service': slash < 0 ? '' : method.slice(0, slash),
            'rpc.method': slash < 0 ? method : method.slice(slash + 1),
          });
          span = traced.span;
          const inner = run;
          run = () => otelContext.with(traced.context, inner);
        }
        let promise: Promise<Res>;
        try {
          controller.signal.throwIfAborted();
          if (call.request instanceof MalformedRequest) {
            throw new InflowError(
              'INVALID_ARGUMENT',
              `${method}: the request is not a valid protobuf message (${call.request.error.message})`,
            );
          }
          promise = run();
        } catch (error) {
          promise = Promise.reject(error instanceof Error ? error : new Error(String(error)));
        }
        promise.then(
          (response) => {
            finish();
            record(method, GrpcStatus.OK, started);
            if (span) {
              span.setAttribute('rpc.grpc.status_code', GrpcStatus.OK);
              span.end();
            }
            callback(null, response);
          },
          (error: unknown) => {
            finish();
            const e = toStatus(error, controller.signal);
            if (e.code === 'INTERNAL') logger.error({ err: error, method }, 'gRPC call failed with an internal error');
            record(method, e.grpcStatus, started);
            if (span) {
              span.setAttribute('rpc.grpc.status_code', e.grpcStatus);
              endWithError(span, e);
            }
            callback({ code: grpcStatus[grpcStatusName(e.grpcStatus) as keyof typeof grpcStatus], details: boundedDetails(e.message) });
          },
        );
      };
    },
  };
}
