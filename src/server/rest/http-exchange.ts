/**
 * One HTTP request/response pair as the routes see it: the request id, the route's metrics
 * label, the inference deadline and cancellation, body reading with a size limit, and the JSON
 * (and binary) answers. Every answer is `Content-Type: application/json` except binary OIP
 * responses; every error body is `{"error": "<message>"}` (TF Serving's and OIP's shape).
 */
import type { Span } from '@opentelemetry/api';
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { gunzip as gunzipCallback, inflate as inflateCallback, inflateRaw as inflateRawCallback } from 'node:zlib';
import { InflowError } from '../../errors.ts';
import type { Logger } from '../../observability/logger.ts';

/** State shared by every exchange of one handler. */
export interface ExchangeOwner {
  /** Set once shutdown began: answers close their connection. */
  draining: boolean;
  readonly logger: Logger;
}

const JSON_TYPE = 'application/json';
const gunzip = promisify(gunzipCallback);
const inflate = promisify(inflateCallback);
const inflateRaw = promisify(inflateRawCallback);
const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;

function onDeadline(exchange: Exchange): void {
  exchange.timedOut = true;
  exchange.abort(new InflowError('DEADLINE_EXCEEDED', `request exceeded its deadline of ${exchange.deadlineMs} ms (requestTimeoutMs)`));
}

/** A request being served. Fields are public on purpose: the handler and the routes share it. */
export class Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly owner: ExchangeOwner;
  /** performance.now() at arrival, ms. */
  readonly started: number;
  readonly requestId: string;
  /** Metrics label of the matched route. */
  route = 'unmatched';
  /** Holds a slot of `maxConcurrentRequests`. */
  limited = false;
  timedOut = false;
  deadlineMs = 0;
  /** Tracing on: the request's SERVER span, ended when the response closes. */
  span: Span | undefined = undefined;
  #controller: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(req: IncomingMessage, res: ServerResponse, owner: ExchangeOwner) {
    this.req = req;
    this.res = res;
    this.owner = owner;
    this.started = performance.now();
    const given = req.headers['x-request-id'];
    // Echo a caller's id only when it is a sane token (it goes back into a header and logs).
    this.requestId = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
  }

  /**
   * The signal an inference runs under: aborted when the client disconnects, or after
   * `timeoutMs` (0: no deadline) with DEADLINE_EXCEEDED.
   */
  signal(timeoutMs: number): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (timeoutMs > 0) {
        this.deadlineMs = timeoutMs;
        this.#timer = setTimeout(onDeadline, timeoutMs, this);
      }
    }
    return this.#controller.signal;
  }

  abort(reason: InflowError): void {
    this.#controller?.abort(reason);
  }

  /** Ends the deadline timer (the response is done). */
  settle(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Sends JSON text (already encoded). */
  sendJson(status: number, text: string): void {
    const res = this.res;
    if (res.headersSent || res.destroyed) return;
    res.statusCode = status;
    res.setHeader('content-type', JSON_TYPE);
    this.#connectionHeader();
    res.end(text);
  }

  /** Sends a body made of chunks (the OIP binary extension). */
  sendChunks(
    status: number,
    contentType: string,
    chunks: readonly Uint8Array[],
    byteLength: number,
    headers: Record<string, string>,
  ): void {
    const res = this.res;
    if (res.headersSent || res.destroyed) return;
    res.statusCode = status;
    res.setHeader('content-type', contentType);
    res.setHeader('content-length', byteLength);
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    this.#connectionHeader();
    const last = chunks.length - 1;
    for (let i = 0; i < last; i++) res.write(chunks[i]);
    res.end(chunks[last]);
  }

  /** Answers with the error's HTTP status and `{"error": message}`. */
  sendError(error: unknown): void {
    let e = InflowError.from(error);
    // The batcher reports an aborted request as CANCELLED whatever aborted it: name the deadline.
    if (this.timedOut && e.code === 'CANCELLED') {
      e = new InflowError('DEADLINE_EXCEEDED', `request exceeded its deadline of ${this.deadlineMs} ms (requestTimeoutMs)`, { cause: e });
    }
    if (e.httpStatus >= 500) this.owner.logger.warn({ err: e, requestId: this.requestId, route: this.route }, 'request failed');
    if (this.res.headersSent) {
      // Part of a body went out: the only honest signal left is a broken connection.
      this.res.destroy(e);
      return;
    }
    if (e.code === 'UNAUTHENTICATED') this.res.setHeader('www-authenticate', 'Bearer');
    this.sendJson(e.httpStatus, JSON.stringify({ error: e.message }));
  }

  #connectionHeader(): void {
    // A shutdown, or a body left unread (413, early errors): don't keep the connection (Node would
    // otherwise read and discard the rest of the body to reuse it).
    if (this.owner.draining || (!this.req.complete && hasBody(this.req))) this.res.setHeader('connection', 'close');
  }
}

/** Whether a request announces a body (`req.complete` is false for body-less requests until their end is read). */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/**
 * Reads a request body, at most `limit` bytes (413 PAYLOAD_TOO_LARGE beyond it; reading stops
 * early). A body sent with `Content-Encoding: gzip` or `deflate` (RFC 9110 §8.4; what Triton
 * accepts and tritonclient.http's `request_compression_algorithm` sends) is decompressed, and the
 * limit holds for both the compressed and the decompressed size, so a decompression bomb stops at
 * `limit` bytes of output. Other encodings answer 415.
 */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const encoding = contentEncoding(req.headers['content-encoding']);
  const body = await readRawBody(req, limit);
  return encoding === undefined ? body : decompress(body, encoding, limit);
}

/** The body's coding: undefined for none (absent or `identity`); 415 for what is not read. */
function contentEncoding(header: string | undefined): 'gzip' | 'deflate' | undefined {
  if (header === undefined) return undefined;
  const coding = header.trim().toLowerCase();
  if (coding === '' || coding === 'identity') return undefined;
  if (coding === 'gzip' || coding === 'x-gzip') return 'gzip';
  if (coding === 'deflate') return 'deflate';
  throw new InflowError(
    'UNSUPPORTED_MEDIA_TYPE',
    `Content-Encoding "${header}" is not supported; expected gzip, deflate or none (one coding, not a list)`,
  );
}

async function decompress(body: Buffer, encoding: 'gzip' | 'deflate', limit: number): Promise<Buffer> {
  const options = { maxOutputLength: limit };
  try {
    if (encoding === 'gzip') return await gunzip(body, options);
    // HTTP's "deflate" is the zlib format (RFC 9110 §8.4.1.2); some clients send raw deflate.
    try {
      return await inflate(body, options);
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') throw error;
      return await inflateRaw(body, options);
    }
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw tooLarge(`request body decompresses to more than ${limit} bytes (maxBodyBytes); send a smaller batch`);
    }
    throw new InflowError(
      'INVALID_ARGUMENT',
      `request body is not valid ${encoding} data (Content-Encoding: ${encoding}): ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}

function readRawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    return Promise.reject(tooLarge(`request body is ${declared} bytes (Content-Length); expected at most ${limit} bytes (maxBodyBytes)`));
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const fail = (error: InflowError): void => {
      if (done) return;
      done = true;
      req.removeListener('data', onData);
      req.pause();
      reject(error);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.byteLength;
      if (size > limit) return fail(tooLarge(`request body exceeds ${limit} bytes (maxBodyBytes); send a smaller batch`));
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => {
      if (done) return;
      done = true;
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    });
    // Build the error only when it is needed: an InflowError captures a stack (tens of µs), and
    // 'close' fires for every request, after 'end' too.
    req.once('error', (error) => {
      if (!done) fail(new InflowError('CANCELLED', `client aborted the request body: ${error.message}`, { cause: error }));
    });
    req.once('close', () => {
      if (!done) fail(new InflowError('CANCELLED', 'client closed the connection before the request body was complete'));
    });
  });
}

function tooLarge(message: string): InflowError {
  return new InflowError('PAYLOAD_TOO_LARGE', message);
}

/** A bearer-token check that compares in constant time (SHA-256 digests: equal lengths whatever the input). */
export function createBearerCheck(token: string): (header: string | undefined) => boolean {
  const expected = createHash('sha256').update(token).digest();
  return (header) => {
    if (header === undefined || header.length < 8 || header.slice(0, 7).toLowerCase() !== 'bearer ') return false;
    const given = createHash('sha256').update(header.slice(7).trim()).digest();
    return timingSafeEqual(given, expected);
  };
}
