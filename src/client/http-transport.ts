/**
 * The HTTP/1.1 transport of the REST clients: one keep-alive connection pool per server, a
 * per-attempt deadline combined with the caller's AbortSignal, and socket failures mapped to
 * UNAVAILABLE (see remote-errors.ts).
 *
 * Why node:http and not fetch: the request body goes out as the codecs produce it — a JSON header
 * and typed-array views, written with one corked `writev` and no concatenation — and the answer
 * is read as Buffers with at most one copy (`Buffer.concat`). fetch (undici) would need the body
 * as one Blob/stream and the answer through WHATWG streams; undici's faster `request` API is not
 * importable from Node without the npm package, which inflow does not depend on. The round-trip
 * numbers are in bench/client/remote-inferencer.ts.
 */
import type { Span } from '@opentelemetry/api';
import { endWithError, injectContext, startClientSpan, tracingActive } from '../observability/tracing.ts';
import http from 'node:http';
import https from 'node:https';
import { InflowError } from '../errors.ts';
import { cancelledError, endpointName, httpStatusError, networkError, type RemoteEndpoint, timeoutError } from './remote-errors.ts';

/** One HTTP request. */
export interface HttpRequest {
  method: 'GET' | 'POST';
  /** Path and query below the base URL's path, starting with `/`. */
  path: string;
  headers?: Record<string, string>;
  /** Body chunks, written in order (Content-Length is their total). */
  body?: readonly Uint8Array[];
  signal?: AbortSignal | undefined;
}

/** A complete answer (any status). */
export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** Options of {@link createHttpTransport}. */
export interface HttpTransportOptions {
  endpoint: RemoteEndpoint;
  /** Sent as `Authorization: Bearer <token>`. */
  bearerToken?: string | undefined;
  /** Deadline of one request, ms (connect + send + whole answer); 0 disables. */
  timeoutMs: number;
  /** Connections kept per server (requests beyond wait for one). */
  maxSockets: number;
  /** Largest answer body, bytes; a larger one fails with PAYLOAD_TOO_LARGE. */
  maxResponseBytes: number;
}

/** A keep-alive HTTP client of one server. */
export interface HttpTransport {
  readonly endpoint: RemoteEndpoint;
  /** Sends a request; rejects only when no complete answer arrived (socket error, deadline, cancel, size). */
  request(request: HttpRequest): Promise<HttpResponse>;
  /** Like {@link request}, but a status outside 2xx rejects with its mapped InflowError. */
  call(request: HttpRequest): Promise<HttpResponse>;
  /** Closes idle connections; requests in flight finish. */
  close(): void;
}

/** Creates the transport; `endpoint.url` is `http(s)://host:port[/base-path]`. */
export function createHttpTransport(options: HttpTransportOptions): HttpTransport {
  const { endpoint, timeoutMs, maxResponseBytes } = options;
  const base = new URL(endpoint.url);
  const secure = base.protocol === 'https:';
  const basePath = base.pathname.replace(/\/+$/, '');
  const agent = secure
    ? new https.Agent({ keepAlive: true, maxSockets: options.maxSockets })
    : new http.Agent({ keepAlive: true, maxSockets: options.maxSockets });
  const send = secure ? https.request : http.request;
  const authorization = options.bearerToken === undefined ? undefined : `Bearer ${options.bearerToken}`;

  function clientSpan(method: string, path: string, headers: Record<string, string | number>): Span {
    const { span, context } = startClientSpan(`${method} ${path}`, {
      'http.request.method': method,
      'server.address': base.hostname,
      'url.full': `${base.protocol}//${base.host}${path}`,
    });
    injectContext((k, v) => {
      headers[k] = v;
    }, context);
    return span;
  }

  function request(req: HttpRequest): Promise<HttpResponse> {
    const { signal } = req;
    if (signal?.aborted) return Promise.reject(cancelledError(endpoint, signal));
    return new Promise<HttpResponse>((resolve, reject) => {
      let settled = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const headers: Record<string, string | number> = { ...req.headers };
      if (authorization !== undefined) headers.authorization = authorization;
      // Tracing on: a CLIENT span, its context in the W3C traceparent header.
      const span = tracingActive() ? clientSpan(req.method, basePath + req.path, headers) : undefined;
      let length = 0;
      for (const chunk of req.body ?? []) length += chunk.byteLength;
      if (req.method === 'POST') headers['content-length'] = length;
      const outgoing = send({
        agent,
        protocol: base.protocol,
        hostname: base.hostname,
        port: base.port,
        method: req.method,
        path: basePath + req.path,
        headers,
      });
      const finish = (error: InflowError | undefined, response?: HttpResponse): void => {
        if (settled) return;
        settled = true;
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (span) {
          if (response) span.setAttribute('http.response.status_code', response.status);
          if (error) endWithError(span, error);
          else span.end();
        }
        if (error) {
          // Destroying the socket (not returning it to the pool) is right: it is mid-exchange.
          outgoing.destroy();
          reject(error);
        } else resolve(response as HttpResponse);
      };
      const onAbort = (): void => finish(cancelledError(endpoint, signal));
      signal?.addEventListener('abort', onAbort, { once: true });
      // A plain timer cleared on completion, rather than AbortSignal.timeout(): that one stays
      // armed (holding its signal) for the whole timeout after every request, thousands at a time.
      if (timeoutMs > 0) timer = setTimeout(() => finish(timeoutError(endpoint, timeoutMs)), timeoutMs);
      outgoing.on('error', (error) => finish(networkError(endpoint, error)));
      outgoing.on('response', (incoming) => {
        const chunks: Buffer[] = [];
        let received = 0;
        incoming.on('data', (chunk: Buffer) => {
          received += chunk.byteLength;
          if (received > maxResponseBytes) {
            finish(
              new InflowError(
                'PAYLOAD_TOO_LARGE',
                `${endpointName(endpoint)}: the answer is larger than ${maxResponseBytes} bytes (maxMessageBytes)`,
              ),
            );
            return;
          }
          chunks.push(chunk);
        });
        incoming.on('error', (error) => finish(networkError(endpoint, error)));
        incoming.on('close', () => {
          if (!incoming.complete) finish(networkError(endpoint, new Error('the server closed the connection mid-answer')));
        });
        incoming.on('end', () => {
          const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, received);
          finish(undefined, { status: incoming.statusCode ?? 0, headers: incoming.headers, body });
        });
      });
      // Written before the socket is assigned, the header and the tensor chunks are flushed together
      // in one writev: no concatenation of the body.
      for (const chunk of req.body ?? []) outgoing.write(chunk);
      outgoing.end();
    });
  }

  return {
    endpoint,
    request,
    async call(req) {
      const response = await request(req);
      if (response.status < 200 || response.status > 299) throw httpStatusError(endpoint, response.status, response.body);
      return response;
    },
    close() {
      agent.destroy();
    },
  };
}
