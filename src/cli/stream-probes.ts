/**
 * The small HTTP listener of `inflow stream --metrics-port`: Prometheus metrics of the pipeline
 * (and of its embedded models), and the liveness/readiness probes a Kubernetes pod needs.
 * `/healthz` answers 200 while the process runs; `/readyz` 200 once the runner consumes, 503
 * before and while it drains. With a {@link StoreQuery}, the pipeline's stores are readable by key
 * under `/v1/stores` (interactive queries: src/server/store-query-http.ts).
 */
import { createServer, type Server } from 'node:http';
import { Registry } from 'prom-client';
import { InflowError } from '../errors.ts';
import { handleStoreQuery } from '../server/store-query-http.ts';
import type { StoreQuery } from '../streams/runtime/store-query.ts';

export interface StreamProbes {
  readonly port: number;
  close(): Promise<void>;
}

/** Listens on `port` (0 = any free port); `registries` are read on each scrape. */
export async function startStreamProbes(
  port: number,
  host: string,
  registries: () => readonly Registry[],
  ready: () => boolean,
  stores?: StoreQuery,
): Promise<StreamProbes> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (stores !== undefined && path?.startsWith('/v1/stores')) {
      handleStoreQuery(stores, req.method ?? 'GET', req.url ?? '/')
        .then((answer) => {
          if (answer === undefined) res.writeHead(404).end();
          else res.writeHead(answer.status, answer.headers).end(req.method === 'HEAD' ? undefined : answer.body);
        })
        .catch((error: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(error as Error).message}\n`));
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const ok = ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ready\n' : 'not ready\n');
    } else if (path === '/metrics') {
      const merged = Registry.merge([...registries()]);
      merged
        .metrics()
        .then((text) => res.writeHead(200, { 'content-type': merged.contentType }).end(text))
        .catch((error: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(error as Error).message}\n`));
    } else {
      res
        .writeHead(404, { 'content-type': 'text/plain' })
        .end(`not found: try /metrics, /healthz or /readyz${stores ? ' or /v1/stores' : ''}\n`);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new InflowError(
          error.code === 'EADDRINUSE' ? 'UNAVAILABLE' : 'INTERNAL',
          `--metrics-port ${port}: ${error.code === 'EADDRINUSE' ? 'the port is in use; choose another' : error.message}`,
          { cause: error },
        ),
      ),
    );
    server.listen(port, host, resolve);
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
