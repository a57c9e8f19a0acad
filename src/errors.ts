/**
 * One error type for all of inflow, with a closed table of codes.
 *
 * Every code maps to the HTTP status a REST caller sees, the gRPC status a gRPC caller sees
 * (numeric codes from grpc/status.proto), and whether retrying the same request may succeed.
 * Transports never invent statuses of their own: they read them from here.
 */

/** gRPC status codes (google.rpc.Code / grpc status.proto), numeric as on the wire. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcStatusCode = (typeof GrpcStatus)[keyof typeof GrpcStatus];

const grpcStatusNames = new Map<number, string>(Object.entries(GrpcStatus).map(([name, code]) => [code, name]));

/** The name of a gRPC status code (`OK`, `INVALID_ARGUMENT`, …); the number as text when unknown. */
export function grpcStatusName(code: number): string {
  return grpcStatusNames.get(code) ?? String(code);
}

interface CodeSpec {
  readonly http: number;
  readonly grpc: GrpcStatusCode;
  readonly retriable: boolean;
}

/**
 * The closed code table. Adding a code is a deliberate change: transports, the CLI's exit
 * codes and the DLQ reason all derive from it.
 */
export const errorCodes = {
  // Caller mistakes: never retried.
  INVALID_ARGUMENT: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, retriable: false },
  INVALID_CONFIG: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, retriable: false },
  SERIALIZATION: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, retriable: false },
  NOT_FOUND: { http: 404, grpc: GrpcStatus.NOT_FOUND, retriable: false },
  ALREADY_EXISTS: { http: 409, grpc: GrpcStatus.ALREADY_EXISTS, retriable: false },
  FAILED_PRECONDITION: { http: 400, grpc: GrpcStatus.FAILED_PRECONDITION, retriable: false },
  PAYLOAD_TOO_LARGE: { http: 413, grpc: GrpcStatus.RESOURCE_EXHAUSTED, retriable: false },
  /** A body in an encoding the server does not read (HTTP `Content-Encoding` other than gzip/deflate). */
  UNSUPPORTED_MEDIA_TYPE: { http: 415, grpc: GrpcStatus.INVALID_ARGUMENT, retriable: false },
  UNAUTHENTICATED: { http: 401, grpc: GrpcStatus.UNAUTHENTICATED, retriable: false },
  PERMISSION_DENIED: { http: 403, grpc: GrpcStatus.PERMISSION_DENIED, retriable: false },
  UNIMPLEMENTED: { http: 501, grpc: GrpcStatus.UNIMPLEMENTED, retriable: false },
  // Load and availability: retriable with backoff.
  RESOURCE_EXHAUSTED: { http: 429, grpc: GrpcStatus.RESOURCE_EXHAUSTED, retriable: true },
  UNAVAILABLE: { http: 503, grpc: GrpcStatus.UNAVAILABLE, retriable: true },
  DEADLINE_EXCEEDED: { http: 504, grpc: GrpcStatus.DEADLINE_EXCEEDED, retriable: true },
  CANCELLED: { http: 499, grpc: GrpcStatus.CANCELLED, retriable: false },
  // Kafka: the client layer maps broker and network failures onto these.
  KAFKA_UNREACHABLE: { http: 503, grpc: GrpcStatus.UNAVAILABLE, retriable: true },
  KAFKA_TOPIC_NOT_FOUND: { http: 404, grpc: GrpcStatus.NOT_FOUND, retriable: false },
  KAFKA_RECORD_TOO_LARGE: { http: 413, grpc: GrpcStatus.RESOURCE_EXHAUSTED, retriable: false },
  KAFKA_FENCED: { http: 409, grpc: GrpcStatus.ABORTED, retriable: false },
  KAFKA_REBALANCE: { http: 409, grpc: GrpcStatus.ABORTED, retriable: true },
  KAFKA_ERROR: { http: 502, grpc: GrpcStatus.UNAVAILABLE, retriable: true },
  // Streams: a record for a window that already closed (event time behind stream time by more than the grace).
  LATE_RECORD: { http: 400, grpc: GrpcStatus.OUT_OF_RANGE, retriable: false },
  // Local tooling (the project's own Kafka broker launcher).
  JAVA_MISSING: { http: 500, grpc: GrpcStatus.FAILED_PRECONDITION, retriable: false },
  DOWNLOAD_FAILED: { http: 502, grpc: GrpcStatus.UNAVAILABLE, retriable: true },
  // Bugs and unknowns.
  INTERNAL: { http: 500, grpc: GrpcStatus.INTERNAL, retriable: false },
} as const satisfies Record<string, CodeSpec>;

export type ErrorCode = keyof typeof errorCodes;

/** Options of {@link InflowError}. */
export interface InflowErrorOptions {
  /** The underlying error, kept for logs and `--verbose`. */
  cause?: unknown;
  /** Structured facts for logs, DLQ headers and API bodies (field names, limits, …). */
  details?: Record<string, unknown>;
}

const codeNames = new Set<string>(Object.keys(errorCodes));

/**
 * The one error class. `message` says what was wrong and what was expected; `code` is one of
 * {@link errorCodes} and fixes the HTTP status, gRPC status and retriability.
 */
export class InflowError extends Error {
  override readonly name = 'InflowError';
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: InflowErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }

  /** HTTP status a REST transport answers with. */
  get httpStatus(): number {
    return errorCodes[this.code].http;
  }

  /** gRPC status a gRPC transport answers with. */
  get grpcStatus(): GrpcStatusCode {
    return errorCodes[this.code].grpc;
  }

  /** Whether the same request may succeed when retried (after a backoff). */
  get retriable(): boolean {
    return errorCodes[this.code].retriable;
  }

  /**
   * Wraps anything thrown into an InflowError: an InflowError is returned as is; an
   * AbortError becomes CANCELLED (or DEADLINE_EXCEEDED for a TimeoutError); anything else
   * becomes `fallback` (INTERNAL by default) with the original kept as `cause`.
   */
  static from(error: unknown, fallback: ErrorCode = 'INTERNAL'): InflowError {
    if (error instanceof InflowError) return error;
    if (error instanceof Error) {
      if (error.name === 'TimeoutError') return new InflowError('DEADLINE_EXCEEDED', error.message, { cause: error });
      if (error.name === 'AbortError') return new InflowError('CANCELLED', error.message, { cause: error });
      return new InflowError(fallback, error.message, { cause: error });
    }
    return new InflowError(fallback, `non-error thrown: ${String(error)}`, { cause: error });
  }

  /** Whether `value` is a code of the closed table. */
  static isCode(value: unknown): value is ErrorCode {
    return typeof value === 'string' && codeNames.has(value);
  }
}
