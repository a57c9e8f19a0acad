/**
 * The dashboard (`/dashboard/`): a live page of the models (versions, state, labels, traffic
 * split — editable through the admin API when it is on) and charts of throughput, latency
 * percentiles, batch sizes, errors/DLQ, consumer lag and shadow agreement.
 *
 * - `GET /dashboard`             → 308 to `/dashboard/` (the page's relative URLs need the slash)
 * - `GET /dashboard/`            the page (open)
 * - `GET /dashboard/uplot.js|css` the chart library (open)
 * - `GET /dashboard/api/state`   one JSON snapshot (inference access: the auth token when one is set)
 * - `GET /dashboard/api/history` the server-side ring of snapshots of the last minutes, oldest first
 *                                (same access), so a page opened or reloaded charts them at once
 */
import { InflowError } from '../../errors.ts';
import { dashboardAsset } from '../dashboard/dashboard-assets.ts';
import type { DashboardOptions } from '../dashboard/dashboard-options.ts';
import { createDashboardHistory } from '../dashboard/dashboard-history.ts';
import { dashboardSnapshot } from '../dashboard/dashboard-state.ts';
import type { Exchange } from './http-exchange.ts';
import type { RouteDeps, RouteMatch, RouteRun } from './rest-route.ts';

const ROOT = /^\/dashboard$/;
const ASSET = /^\/dashboard\/((?:uplot\.(?:js|css))?)$/;
const STATE = /^\/dashboard\/api\/state$/;
const HISTORY = /^\/dashboard\/api\/history$/;

export interface DashboardRoutes {
  match(method: string, path: string): RouteMatch | undefined;
  /** Stops sampling the history (the server is closing). */
  stop(): void;
}

function sendAsset(x: Exchange, body: Buffer, contentType: string, cacheControl: string): void {
  const res = x.res;
  if (res.headersSent || res.destroyed) return;
  res.statusCode = 200;
  res.setHeader('content-type', contentType);
  res.setHeader('content-length', body.byteLength);
  res.setHeader('cache-control', cacheControl);
  res.end(body);
}

/** The dashboard's routes over the server's inference service and the in-process pipelines. */
export function createDashboardRoutes(deps: RouteDeps, options: DashboardOptions): DashboardRoutes {
  const admin = deps.options.adminToken !== undefined;

  const redirect: RouteRun = async (x) => {
    const url = x.req.url ?? '/dashboard';
    const q = url.indexOf('?');
    x.res.statusCode = 308;
    x.res.setHeader('location', `/dashboard/${q < 0 ? '' : url.slice(q)}`);
    x.res.end();
  };

  const asset: RouteRun = async (x, m) => {
    const name = m[1] ?? '';
    const file = await dashboardAsset(name)?.catch((error: unknown) => {
      throw new InflowError('INTERNAL', `dashboard file "${name || 'dashboard.html'}" cannot be read: ${(error as Error).message}`, {
        cause: error,
      });
    });
    if (!file) throw new InflowError('NOT_FOUND', `no dashboard file "${name}"`);
    // The page changes with the package: revalidate it; the library is versioned by the package too.
    sendAsset(x, file.body, file.contentType, name === '' ? 'no-cache' : 'public, max-age=3600');
  };

  const history = createDashboardHistory({
    sample: () => dashboardSnapshot(deps.inference, options, admin),
    ...(options.historyIntervalMs !== undefined ? { intervalMs: options.historyIntervalMs } : {}),
    ...(options.historyCapacity !== undefined ? { capacity: options.historyCapacity } : {}),
  });

  const historyRoute: RouteRun = async (x) => {
    x.res.setHeader('cache-control', 'no-store');
    x.sendJson(200, JSON.stringify(history.snapshots()));
  };

  const state: RouteRun = async (x) => {
    const snapshot = await dashboardSnapshot(deps.inference, options, admin);
    x.res.setHeader('cache-control', 'no-store');
    x.sendJson(200, JSON.stringify(snapshot));
  };

  return {
    match(method, path) {
      if (method !== 'GET') return undefined;
      let m: RegExpExecArray | null;
      if ((m = STATE.exec(path))) return { route: 'dashboard_state', access: 'inference', run: state, match: m };
      if ((m = HISTORY.exec(path))) return { route: 'dashboard_history', access: 'inference', run: historyRoute, match: m };
      if ((m = ASSET.exec(path))) return { route: 'dashboard', access: 'open', run: asset, match: m };
      if ((m = ROOT.exec(path))) return { route: 'dashboard', access: 'open', run: redirect, match: m };
      return undefined;
    },
    stop: () => history.stop(),
  };
}
