/**
 * HTTP metrics of the REST transport: requests and latency by route and status code, client
 * disconnects, requests in flight. Registered once per registry (a second handler on the same
 * registry shares them), label children cached so the hot path does no label hashing.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Latency buckets, seconds: 100 µs … 30 s. */
const LATENCY = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30];

export interface HttpMetrics {
  /** Records one finished (or abandoned) request; `status` 499 for a client that went away. */
  observe(route: string, status: number, seconds: number): void;
  /** Counts a client that disconnected before its response was sent. */
  disconnected(route: string): void;
  inFlight(delta: 1 | -1): void;
}

interface Children {
  count: Counter.Internal;
  duration: Histogram.Internal<'route' | 'code'>;
}

/** Creates (or finds, when already registered) the HTTP metrics in `registry`. */
export function createHttpMetrics(registry: Registry): HttpMetrics {
  const registers = [registry];
  const requests =
    (registry.getSingleMetric('inflow_http_requests_total') as Counter<'route' | 'code'> | undefined) ??
    new Counter({
      name: 'inflow_http_requests_total',
      help: 'HTTP requests by route and status code',
      labelNames: ['route', 'code'],
      registers,
    });
  const duration =
    (registry.getSingleMetric('inflow_http_request_duration_seconds') as Histogram<'route' | 'code'> | undefined) ??
    new Histogram({
      name: 'inflow_http_request_duration_seconds',
      help: 'Time from request start to response end, by route and status code',
      labelNames: ['route', 'code'],
      buckets: LATENCY,
      registers,
    });
  const disconnects =
    (registry.getSingleMetric('inflow_http_client_disconnects_total') as Counter<'route'> | undefined) ??
    new Counter({
      name: 'inflow_http_client_disconnects_total',
      help: 'Requests whose client went away before the response (their inference is aborted)',
      labelNames: ['route'],
      registers,
    });
  const inFlight =
    (registry.getSingleMetric('inflow_http_requests_in_flight') as Gauge | undefined) ??
    new Gauge({ name: 'inflow_http_requests_in_flight', help: 'HTTP requests being served', registers });
  const children = new Map<string, Children>();

  return {
    observe(route, status, seconds) {
      const key = `${route} ${status}`;
      let child = children.get(key);
      if (!child) {
        const code = String(status);
        child = { count: requests.labels(route, code), duration: duration.labels(route, code) };
        children.set(key, child);
      }
      child.count.inc();
      child.duration.observe(seconds);
    },
    disconnected(route) {
      disconnects.labels(route).inc();
    },
    inFlight(delta) {
      inFlight.inc(delta);
    },
  };
}
