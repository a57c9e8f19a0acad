/**
 * Prometheus metrics of the monitor. Label values come from the reference profile's feature names
 * and the models followed (never from record contents), so the series stay bounded.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export interface MonitoringMetrics {
  /** Latest value per window: PSI and JS as computed, KS and chi-square as their statistic. */
  readonly driftStatistic: Gauge<'model' | 'version' | 'feature' | 'statistic'>;
  readonly driftAlerts: Counter<'model' | 'version' | 'statistic'>;
  /** 1 while a version has no reference profile (drift unavailable for it). */
  readonly driftUnavailable: Gauge<'model' | 'version'>;
}

/** Registers the monitor's metrics in `registry`. */
export function createMonitoringMetrics(registry: Registry): MonitoringMetrics {
  const registers = [registry];
  return {
    driftStatistic: new Gauge({
      name: 'inflow_drift_statistic',
      help: 'Drift of a feature in the last closed window against the version reference profile',
      labelNames: ['model', 'version', 'feature', 'statistic'],
      registers,
    }),
    driftAlerts: new Counter({
      name: 'inflow_drift_alerts_total',
      help: 'Drift alerts raised (a statistic past its threshold in a window)',
      labelNames: ['model', 'version', 'statistic'],
      registers,
    }),
    driftUnavailable: new Gauge({
      name: 'inflow_drift_unavailable',
      help: '1 while a version has no reference profile, so drift is not computed for it',
      labelNames: ['model', 'version'],
      registers,
    }),
  };
}
