/**
 * The dashboard's monitoring panels: live accuracy per model version and drift against each
 * version's reference profile, read from a model monitor's Prometheus registry (the gauges
 * `inflow_live_accuracy` and `inflow_drift_statistic` and the counter `inflow_drift_alerts_total`
 * that `inflow monitor` exports, src/monitoring), and the latest alerts (drift and rollbacks) the
 * caller read from the alerts topic. The page charts the snapshots over time.
 */
import type { Registry } from 'prom-client';

/** An alert as the dashboard lists it (a drift alert or a guarded rollout's rollback). */
export interface DashboardAlert {
  /** `drift`, `rollback`, … (the alert's `kind`). */
  readonly kind: string;
  readonly model: string;
  readonly version: number;
  /** When it was raised, ISO 8601. */
  readonly at: string;
  /** One line with the evidence: feature, statistic, value and threshold; or the rollback's reason. */
  readonly text: string;
}

/** A model monitor the dashboard shows: its metrics and, optionally, its thresholds and latest alerts. */
export interface DashboardMonitoring {
  /** The monitor's metrics (`createDriftMonitor` / `createAccuracyMonitor`'s registry). */
  readonly registry: Registry;
  /** Alert thresholds of the statistics charted (PSI, Jensen–Shannon distance), drawn beside them. */
  readonly thresholds?: { readonly psi?: number; readonly jensenShannon?: number };
  /** The latest alerts, oldest first (the page shows the last few). */
  alerts?(): readonly DashboardAlert[];
}

/** The largest value of one statistic over a version's features in its last closed window. */
export interface DriftPeak {
  /** `model vN`. */
  readonly series: string;
  /** `psi` or `jensen_shannon`. */
  readonly statistic: string;
  readonly feature: string;
  readonly value: number;
  /** The alert threshold when known, else null. */
  readonly threshold: number | null;
}

/** What `/dashboard/api/state` carries for the monitor (`monitoring`, null without one). */
export interface MonitoringSnapshot {
  /** Live accuracy of the last closed window per `model vN` (0..1). */
  readonly accuracy: Record<string, number>;
  /** Per version and statistic, the feature that drifted most (inputs and outputs alike). */
  readonly drift: DriftPeak[];
  /** Features past their threshold now, largest (relative to the threshold) first; at most 10. */
  readonly breaches: DriftPeak[];
  /** Drift alerts raised so far per `model vN`. */
  readonly alertsTotal: Record<string, number>;
  /** The last alerts, newest last; at most 20. */
  readonly alerts: DashboardAlert[];
}

interface MetricValue {
  value: number;
  labels: Partial<Record<string, string | number>>;
}

/** The statistics charted: those whose threshold is an upper bound on the value itself. */
const CHARTED = { psi: 'psi', jensen_shannon: 'jensenShannon' } as const;

/** Reads the monitor's metrics into one snapshot. */
export async function monitoringSnapshot(m: DashboardMonitoring): Promise<MonitoringSnapshot> {
  const all = (await m.registry.getMetricsAsJSON()) as unknown as { name: string; values: MetricValue[] }[];
  const metric = (name: string): MetricValue[] => all.find((x) => x.name === name)?.values ?? [];
  const series = (v: MetricValue): string => `${String(v.labels.model)} v${String(v.labels.version)}`;
  const accuracy: Record<string, number> = {};
  for (const v of metric('inflow_live_accuracy')) if (Number.isFinite(v.value)) accuracy[series(v)] = v.value;
  const peaks = new Map<string, DriftPeak>();
  const breaches: DriftPeak[] = [];
  for (const v of metric('inflow_drift_statistic')) {
    const statistic = String(v.labels.statistic);
    if (!(statistic in CHARTED) || !Number.isFinite(v.value)) continue;
    const threshold = m.thresholds?.[CHARTED[statistic as keyof typeof CHARTED]] ?? null;
    const peak: DriftPeak = { series: series(v), statistic, feature: String(v.labels.feature), value: v.value, threshold };
    const key = `${peak.series}\u0000${statistic}`;
    if ((peaks.get(key)?.value ?? Number.NEGATIVE_INFINITY) < v.value) peaks.set(key, peak);
    if (threshold !== null && v.value > threshold) breaches.push(peak);
  }
  breaches.sort((a, b) => b.value / (b.threshold ?? 1) - a.value / (a.threshold ?? 1));
  const alertsTotal: Record<string, number> = {};
  for (const v of metric('inflow_drift_alerts_total')) alertsTotal[series(v)] = (alertsTotal[series(v)] ?? 0) + v.value;
  return {
    accuracy,
    drift: [...peaks.values()].sort((a, b) => (a.series + a.statistic).localeCompare(b.series + b.statistic)),
    breaches: breaches.slice(0, 10),
    alertsTotal,
    alerts: (m.alerts?.() ?? []).slice(-20),
  };
}
