/**
 * What the dashboard shows besides the server's own models and metrics: stream pipelines that
 * run in the same process (`inflow demo` passes its two runners). The REST server takes these as
 * `dashboard` in its options; the dashboard reads them on every refresh, so pipelines may come
 * and go.
 */
import type { Registry } from 'prom-client';
import type { DashboardMonitoring } from './dashboard-monitoring.ts';

/** A pipeline the dashboard charts: its runner's metrics registry, and optionally its state. */
export interface DashboardPipeline {
  /** Shown as the pipeline's name (e.g. the application id or "embedded"). */
  readonly name: string;
  /** The runner's metrics (`runner.metrics.registry`): records in/out, DLQ, lag, batch sizes, latency. */
  readonly registry: Registry;
  /** The runner's state (`runner.stats()`): running, closing, …; in-flight records. */
  status?(): { readonly state: string; readonly inFlight?: number };
}

/** The `dashboard` option of the REST server. */
export interface DashboardOptions {
  /** Pipelines running in this process; called on every refresh. Default none. */
  readonly pipelines?: () => readonly DashboardPipeline[];
  /** A model monitor (live accuracy, drift, alerts) for the monitoring panels; called on every refresh. Default none. */
  readonly monitoring?: () => DashboardMonitoring | undefined;
  /** Title of the page. Default "inflow". */
  readonly title?: string;
  /** The server-side history: a snapshot every this many ms. Default 5000. */
  readonly historyIntervalMs?: number;
  /** Snapshots the history keeps. Default 120 (10 minutes at the default interval). */
  readonly historyCapacity?: number;
}
