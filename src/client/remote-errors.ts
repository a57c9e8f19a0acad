/**
 * What goes wrong on the wire, as InflowErrors: HTTP statuses, gRPC statuses and socket errors
 * of a model server become codes of the closed table (src/errors.ts), so that the resilience
 * layer decides retries from `errorCodes[code].retriable` alone. The server's own message is
 * kept, prefixed by where the call went: `remote oip-rest http://host:8501: <server message>`.
 */
import { type ErrorCode, GrpcStatus, grpcStatusName, InflowError } from '../errors.ts';

/** The four wire protocols the remote client speaks. */
export const RemoteProtocol = {
  TFSERVING_REST: 'tfserving-rest',
  TFSERVING_GRPC: 'tfserving-grpc',
  OIP_REST: 'oip-rest',
  OIP_GRPC: 'oip-grpc',
} as const;
export type RemoteProtocol = (typeof RemoteProtocol)[keyof typeof RemoteProtocol];

/** Where a call went, for messages: the protocol and the server's URL or address. */
export interface RemoteEndpoint {
  readonly protocol: RemoteProtocol;
  readonly url: string;
}

/** `remote <protocol> <url>` — the prefix of every error message the client makes. */
export function endpointName(endpoint: RemoteEndpoint): string {
  return `remote ${endpoint.protocol} ${endpoint.url}`;
}

/**
 * The code of an HTTP error status. 4xx are the caller's mistakes and are never retried (408, a
 * server that gave up waiting for the request body, excepted); 502/503 mean the server (or the
 * proxy's upstream) cannot take the call now, 504 that it ran out of time: both are retried.
 * 500 is TF Serving's answer to a model that fails at run time (UNKNOWN/INTERNAL), so it is
 * INTERNAL and not retried: the same input fails the same way.
 */
export function codeOfHttpStatus(status: number): ErrorCode {
  switch (status) {
    case 400:
      return 'INVALID_ARGUMENT';
    case 401:
      return 'UNAUTHENTICATED';
    case 403:
      return 'PERMISSION_DENIED';
    case 404:
      return 'NOT_FOUND';
    case 408:
      return 'DEADLINE_EXCEEDED';
    case 409:
      return 'ALREADY_EXISTS';
    case 413:
      return 'PAYLOAD_TOO_LARGE';
    case 429:
      return 'RESOURCE_EXHAUSTED';
    case 499:
      return 'CANCELLED';
    case 501:
      return 'UNIMPLEMENTED';
    case 502:
    case 503:
      return 'UNAVAILABLE';
    case 504:
      return 'DEADLINE_EXCEEDED';
    default:
      return status >= 400 && status < 500 ? 'INVALID_ARGUMENT' : 'INTERNAL';
  }
}

/** gRPC's client library reports an over-size message as RESOURCE_EXHAUSTED; resending it cannot help. */
const MESSAGE_TOO_LARGE = /message larger than max|exceeds the (?:maximum|limit)/i;

/**
 * The code of a gRPC status. UNKNOWN and DATA_LOSS are INTERNAL (not retried); OUT_OF_RANGE is
 * INVALID_ARGUMENT; ABORTED (a concurrency conflict, "retry at a higher level") is UNAVAILABLE
 * because inference is pure and a retry is safe. A RESOURCE_EXHAUSTED about message size is
 * PAYLOAD_TOO_LARGE (not retried), any other (a full queue) stays retriable.
 */
export function codeOfGrpcStatus(status: number, details = ''): ErrorCode {
  switch (status) {
    case GrpcStatus.CANCELLED:
      return 'CANCELLED';
    case GrpcStatus.INVALID_ARGUMENT:
    case GrpcStatus.OUT_OF_RANGE:
      return 'INVALID_ARGUMENT';
    case GrpcStatus.DEADLINE_EXCEEDED:
      return 'DEADLINE_EXCEEDED';
    case GrpcStatus.NOT_FOUND:
      return 'NOT_FOUND';
    case GrpcStatus.ALREADY_EXISTS:
      return 'ALREADY_EXISTS';
    case GrpcStatus.PERMISSION_DENIED:
      return 'PERMISSION_DENIED';
    case GrpcStatus.RESOURCE_EXHAUSTED:
      return MESSAGE_TOO_LARGE.test(details) ? 'PAYLOAD_TOO_LARGE' : 'RESOURCE_EXHAUSTED';
    case GrpcStatus.FAILED_PRECONDITION:
      return 'FAILED_PRECONDITION';
    case GrpcStatus.ABORTED:
    case GrpcStatus.UNAVAILABLE:
      return 'UNAVAILABLE';
    case GrpcStatus.UNIMPLEMENTED:
      return 'UNIMPLEMENTED';
    case GrpcStatus.UNAUTHENTICATED:
      return 'UNAUTHENTICATED';
    default:
      return 'INTERNAL';
  }
}

/** Longest server message kept in an error (characters): an HTML error page must not flood logs. */
const MAX_SERVER_MESSAGE = 1000;

/**
 * The message of an HTTP error body: `{"error": "…"}` (TF Serving, OIP servers, inflow) or,
 * failing that, the body as text, cut to 1000 characters.
 */
export function serverMessageOf(body: Uint8Array): string {
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  let message = text.trim();
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && typeof (parsed as { error?: unknown }).error === 'string') {
      message = (parsed as { error: string }).error;
    }
  } catch {
    // Not JSON (a proxy's HTML page, plain text): keep the text.
  }
  if (message === '') return '(empty body)';
  return message.length > MAX_SERVER_MESSAGE ? `${message.slice(0, MAX_SERVER_MESSAGE)}… (${message.length} characters)` : message;
}

/** An InflowError for an HTTP error answer, with the server's message and the status. */
export function httpStatusError(endpoint: RemoteEndpoint, status: number, body: Uint8Array): InflowError {
  const message = serverMessageOf(body);
  return new InflowError(codeOfHttpStatus(status), `${endpointName(endpoint)}: ${message} (HTTP ${status})`, {
    details: { protocol: endpoint.protocol, url: endpoint.url, httpStatus: status },
  });
}

/** An InflowError for a failed gRPC call (status code and details as grpc-js gives them). */
export function grpcStatusError(endpoint: RemoteEndpoint, status: number, details: string, cause?: unknown): InflowError {
  const unreachable = status === GrpcStatus.UNAVAILABLE ? connectFailure(details) : undefined;
  if (unreachable !== undefined) {
    return new InflowError(
      'UNAVAILABLE',
      `${endpointName(endpoint)}: cannot reach the server (${unreachable}); expected it to accept connections (gRPC UNAVAILABLE)`,
      { cause, details: { protocol: endpoint.protocol, url: endpoint.url, grpcStatus: status } },
    );
  }
  return new InflowError(
    codeOfGrpcStatus(status, details),
    `${endpointName(endpoint)}: ${details || '(no details)'} (gRPC ${grpcStatusName(status)})`,
    { cause, details: { protocol: endpoint.protocol, url: endpoint.url, grpcStatus: status } },
  );
}

/**
 * What grpc-js's channel says when it could not connect ("No connection established. Last error:
 * Error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: ", "Name resolution failed for target
 * …"), as "ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:1"; undefined for other UNAVAILABLE details
 * (a server that answered UNAVAILABLE itself).
 */
function connectFailure(details: string): string | undefined {
  const last = /Last error: (?:Error: )?(.*?)\.?(?: Resolution note:.*)?$/s.exec(details)?.[1]?.trim();
  const resolution = /^(?:Name|DNS) resolution failed[^\n]*/.exec(details)?.[0];
  if (!/^No connection established/.test(details) && resolution === undefined) return undefined;
  const text = last || resolution || 'no connection established';
  const errno = /\b(E[A-Z]{3,})\b/.exec(text)?.[1];
  return errno !== undefined ? `${errno}: ${text}` : text;
}

/**
 * An InflowError for a socket that failed (ECONNREFUSED, ECONNRESET, "socket hang up", EPIPE,
 * DNS failures, …): the server cannot be reached now, so UNAVAILABLE, which is retried.
 */
export function networkError(endpoint: RemoteEndpoint, error: unknown): InflowError {
  const code = (error as { code?: unknown } | null)?.code;
  const text = error instanceof Error ? error.message : String(error);
  return new InflowError(
    'UNAVAILABLE',
    `${endpointName(endpoint)}: cannot reach the server (${typeof code === 'string' ? `${code}: ` : ''}${text}); expected it to accept connections`,
    { cause: error, details: { protocol: endpoint.protocol, url: endpoint.url, ...(typeof code === 'string' ? { errno: code } : {}) } },
  );
}

/** DEADLINE_EXCEEDED for an attempt that ran past `timeoutMs`. */
export function timeoutError(endpoint: RemoteEndpoint, timeoutMs: number): InflowError {
  return new InflowError('DEADLINE_EXCEEDED', `${endpointName(endpoint)}: no answer within ${timeoutMs} ms (the per-attempt timeout)`, {
    details: { protocol: endpoint.protocol, url: endpoint.url, timeoutMs },
  });
}

/** CANCELLED for a call the caller aborted. */
export function cancelledError(endpoint: RemoteEndpoint, signal: AbortSignal | undefined): InflowError {
  const reason: unknown = signal?.reason;
  const why = reason instanceof Error ? `: ${reason.message}` : '';
  return new InflowError('CANCELLED', `${endpointName(endpoint)}: the caller cancelled the call${why}`, { cause: reason });
}

/** An InflowError for an answer the client cannot read (malformed body, missing fields). */
export function badResponseError(endpoint: RemoteEndpoint, what: string, cause?: unknown): InflowError {
  const why = cause instanceof Error ? `: ${cause.message}` : '';
  return new InflowError('INTERNAL', `${endpointName(endpoint)}: cannot read the server's answer (${what})${why}`, {
    cause,
    details: { protocol: endpoint.protocol, url: endpoint.url },
  });
}
