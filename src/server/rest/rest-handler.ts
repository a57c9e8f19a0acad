/**
 * The REST transport's request handler for `node:http`/`node:https`: a small router over
 * precompiled regexes (TF Serving under `/v1/`, OIP under `/v2`, `/metrics`, `/admin/`), then per
 * request: bearer auth, the concurrency limit, the inference deadline, abort on client disconnect,
 * metrics by route and status, and `x-request-id`. A thin adapter: the inference service does the
 * work, the codecs the wire formats.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { context as otelContext, SpanStatusCode } from '@opentelemetry/api';
import { InflowError } from '../../errors.ts';
import { startServerSpan, tracingActive } from '../../observability/tracing.ts';
import type { LocalInference } from '../../serving/local-inference.ts';
import { createAdminRoutes } from './admin-routes.ts';
import { createDashboardRoutes } from './dashboard-routes.ts';
import { createBearerCheck, Exchange, type ExchangeOwner } from './http-exchange.ts';
import { createHttpMetrics, type HttpMetrics } from './http-metrics.ts';
import { createOipRoutes } from './oip-routes.ts';
import { type RestHandlerOptions, resolveHandlerOptions } from './rest-options.ts';
import { createRepositoryRoutes } from './repository-routes.ts';
import type { RouteDeps, RouteMatch, RouteRun } from './rest-route.ts';
import { createTfServingRoutes } from './tf-serving-routes.ts';
import { degradedReasons, notReadyReason } from '../readiness-gate.ts';
import type { StoreQuery } from '../../streams/runtime/store-query.ts';
import { handleStoreQuery, STORE_QUERY_PREFIX } from '../store-query-http.ts';

/** The handler, plus what a server needs for a graceful shutdown. */
export interface RestHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  /** Starts shutdown: readiness turns false, new requests get 503 and every answer closes its connection. */
  drain(): void;
  /** Requests being served now. */
  readonly inFlight: number;
  /** Resolves when no request is being served. */
  idle(): Promise<void>;
}

const PACKAGE_VERSION = ((): string => {
  try {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
})();

interface HandlerState extends ExchangeOwner {
  metrics: HttpMetrics;
  /** Fraction of successful requests written to the access log (errors: all of them). */
  accessLogSampleRate: number;
  inFlight: number;
  active: number;
  idleWaiters: Array<() => void>;
}

function onResponseClose(x: Exchange): void {
  const res = x.res;
  const state = x.owner as HandlerState;
  x.settle();
  let status = res.statusCode;
  if (!res.writableFinished) {
    // The client went away first: stop its inference and count it (nginx's 499).
    status = 499;
    state.metrics.disconnected(x.route);
    x.abort(new InflowError('CANCELLED', 'client disconnected before the response was sent'));
  }
  const seconds = (performance.now() - x.started) / 1000;
  state.metrics.observe(x.route, status, seconds);
  if (x.span) {
    x.span.setAttribute('http.response.status_code', status);
    if (status >= 500) x.span.setStatus({ code: SpanStatusCode.ERROR });
    x.span.end();
  }
  // Structured access log, sampled: every failed request, a fraction of the successful ones.
  if (status >= 400 || (state.accessLogSampleRate > 0 && Math.random() < state.accessLogSampleRate)) {
    state.logger.info(
      { requestId: x.requestId, method: x.req.method, url: x.req.url, route: x.route, status, ms: Math.round(seconds * 1e6) / 1e3 },
      'access',
    );
  }
  state.metrics.inFlight(-1);
  if (x.limited) state.active--;
  if (--state.inFlight === 0 && state.idleWaiters.length > 0) for (const wake of state.idleWaiters.splice(0)) wake();
}

/** Runs a route and turns anything it throws into the error answer (no per-request closure). */
async function runRoute(run: RouteRun, x: Exchange, match: RegExpExecArray): Promise<void> {
  try {
    await run(x, match);
  } catch (error) {
    x.sendError(error);
  }
}

const notFound: RouteRun = async (x) => {
  throw new InflowError(
    'NOT_FOUND',
    `no route for ${x.req.method ?? ''} ${x.req.url ?? ''}; expected /v1/models/… (TF Serving), /v2/… (Open Inference Protocol) or /metrics`,
  );
};
const EMPTY_MATCH = /^/.exec('') as RegExpExecArray;

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function startsWithV1(path: string): boolean {
  // TF Serving matches `(?i)/v1/.*`.
  return (
    path.length >= 4 &&
    path.charCodeAt(0) === 47 &&
    (path.charCodeAt(1) | 32) === 118 &&
    path.charCodeAt(2) === 49 &&
    path.charCodeAt(3) === 47
  );
}

/** Creates the REST handler over a local inference service (see {@link RestHandlerOptions}). */
export function createRestHandler(inference: LocalInference, options: RestHandlerOptions = {}): RestHandler {
  const resolved = resolveHandlerOptions(options, PACKAGE_VERSION);
  const registry = options.registry ?? inference.metrics.registry;
  const state: HandlerState = {
    draining: false,
    logger: resolved.logger,
    metrics: createHttpMetrics(registry),
    accessLogSampleRate: options.accessLogSampleRate ?? 0.01,
    inFlight: 0,
    active: 0,
    idleWaiters: [],
  };
  const deps: RouteDeps = {
    inference,
    options: resolved,
    accepting: () => !state.draining,
    notReady: () => notReadyReason(options.readiness),
    degraded: () => degradedReasons(options.readiness),
  };
  const tf = createTfServingRoutes(deps);
  const oip = createOipRoutes(deps);
  const admin = resolved.adminToken === undefined ? undefined : createAdminRoutes(deps);
  // Triton's repository extension is model management: only with the admin token, like /admin/.
  const repository = resolved.adminToken === undefined ? undefined : createRepositoryRoutes(deps);
  const dashboard = options.dashboard === false ? undefined : createDashboardRoutes(deps, options.dashboard ?? {});
  const inferenceAuth = resolved.authToken === undefined ? undefined : createBearerCheck(resolved.authToken);
  const adminAuth = resolved.adminToken === undefined ? undefined : createBearerCheck(resolved.adminToken);

  const metricsRoute: RouteRun = async (x) => {
    const text = await registry.metrics();
    const res = x.res;
    if (res.headersSent || res.destroyed) return;
    res.statusCode = 200;
    res.setHeader('content-type', registry.contentType);
    res.end(text);
  };

  const stores = options.stores;
  /** Interactive queries on the pipelines' stores: the same answers as `inflow stream --metrics-port`. */
  const storesRoute: RouteRun = async (x) => {
    const answer = await handleStoreQuery(stores as StoreQuery, x.req.method ?? 'GET', x.req.url ?? '/');
    const res = x.res;
    if (!answer || res.headersSent || res.destroyed) return;
    res.statusCode = answer.status;
    for (const [k, v] of Object.entries(answer.headers)) res.setHeader(k, v);
    res.end(answer.body);
  };

  function route(method: string, path: string): RouteMatch {
    if (stores && (path === STORE_QUERY_PREFIX || path.startsWith(`${STORE_QUERY_PREFIX}/`))) {
      return { route: 'stores', access: 'inference', run: storesRoute, match: EMPTY_MATCH };
    }
    if (startsWithV1(path)) return tf.match(method, path);
    if (path.startsWith('/v2')) {
      const m = repository && path.startsWith('/v2/repository/') ? repository.match(method, path) : oip.match(method, path);
      if (m) return m;
    } else if (path === '/metrics' || path === '/monitoring/prometheus/metrics') {
      if (method === 'GET') return { route: 'metrics', access: 'open', run: metricsRoute, match: EMPTY_MATCH };
    } else if (admin && path.startsWith('/admin/')) {
      const m = admin.match(method, path);
      if (m) return m;
    } else if (dashboard && path.startsWith('/dashboard')) {
      const m = dashboard.match(method, path);
      if (m) return m;
    }
    return { route: 'not_found', access: 'open', run: notFound, match: EMPTY_MATCH };
  }

  function reject(x: Exchange, error: InflowError): void {
    x.sendError(error);
  }

  const handler = ((req: IncomingMessage, res: ServerResponse): void => {
    const x = new Exchange(req, res, state);
    state.inFlight++;
    state.metrics.inFlight(1);
    // One small closure on purpose: tagging `res` with a property instead would change the hidden
    // class of Node's response objects, which its HTTP internals are optimised for.
    res.once('close', () => onResponseClose(x));
    res.setHeader('x-request-id', x.requestId);

    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const m = route(req.method ?? 'GET', path);
    x.route = m.route;
    if (m.access !== 'open') {
      const check = m.access === 'admin' ? adminAuth : inferenceAuth;
      if (check && !check(req.headers.authorization)) {
        return reject(
          x,
          new InflowError('UNAUTHENTICATED', 'missing or wrong bearer token; expected the header Authorization: Bearer <token>'),
        );
      }
      if (state.draining) return reject(x, new InflowError('UNAVAILABLE', 'the server is shutting down; retry on another instance'));
      if (state.active >= resolved.maxConcurrentRequests) {
        return reject(
          x,
          new InflowError(
            'RESOURCE_EXHAUSTED',
            `too many concurrent requests: ${state.active} in flight, the limit is ${resolved.maxConcurrentRequests} (maxConcurrentRequests); retry with backoff`,
          ),
        );
      }
      state.active++;
      x.limited = true;
    }
    if (tracingActive() && m.access !== 'open') {
      // A SERVER span per API call (HTTP semantic conventions), child of the caller's traceparent.
      const method = req.method ?? 'GET';
      const traced = startServerSpan(`${method} ${m.route}`, (k) => headerValue(req.headers[k]), {
        'http.request.method': method,
        'http.route': m.route,
        'url.path': path,
      });
      x.span = traced.span;
      otelContext.with(traced.context, () => void runRoute(m.run, x, m.match));
      return;
    }
    void runRoute(m.run, x, m.match);
  }) as RestHandler;

  Object.defineProperty(handler, 'inFlight', { get: () => state.inFlight });
  handler.drain = () => {
    state.draining = true;
    dashboard?.stop();
  };
  handler.idle = () => (state.inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => state.idleWaiters.push(resolve)));
  return handler;
}
