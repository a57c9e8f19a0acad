/**
 * The REST server: the handler on `node:http` (or `node:https` with a key and certificate), with
 * slow-client bounds (headers timeout, whole-request timeout), keep-alive, and a graceful
 * shutdown that drains in-flight requests before it closes connections.
 */
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { LocalInference } from '../../serving/local-inference.ts';
import { createRestHandler, type RestHandler } from './rest-handler.ts';
import type { RestServerOptions } from './rest-options.ts';

/** A listening REST server. */
export interface RestServer {
  /** The port it listens on (the one picked when `port` was 0). */
  readonly port: number;
  readonly server: Server;
  readonly handler: RestHandler;
  /**
   * Graceful shutdown: readiness turns false (503 on `/v2/health/ready`), no new connections,
   * requests in flight complete, idle keep-alive connections close; after `graceMs` (default
   * 10 000) the remaining connections are destroyed. Does not close the inference service.
   */
  close(graceMs?: number): Promise<void>;
}

/** Starts the REST server (TF Serving's port 8501 by default). */
export async function startRestServer(inference: LocalInference, options: RestServerOptions = {}): Promise<RestServer> {
  const handler = createRestHandler(inference, options);
  const server: Server = options.tls
    ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, handler)
    : createHttpServer(handler);
  server.headersTimeout = options.headersTimeoutMs ?? 10_000;
  server.requestTimeout = options.bodyTimeoutMs ?? 60_000;
  server.keepAliveTimeout = options.keepAliveTimeoutMs ?? 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8501, options.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;

  async function shutdown(graceMs: number): Promise<void> {
    handler.drain();
    // Stops listening and closes idle keep-alive connections; busy ones close after their answer
    // (every answer now says `Connection: close`).
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<boolean>((resolve) => {
      timer = setTimeout(resolve, graceMs, true);
    });
    // A socket that went idle after its last answer but before close() is closed once no request runs.
    const drained = handler.idle().then(() => server.closeIdleConnections());
    const timedOut = await Promise.race([closed.then(() => false), expired]);
    clearTimeout(timer);
    if (timedOut) server.closeAllConnections();
    await Promise.all([closed, drained]);
  }

  return {
    port,
    server,
    handler,
    close(graceMs = 10_000) {
      closing ??= shutdown(graceMs);
      return closing;
    },
  };
}
