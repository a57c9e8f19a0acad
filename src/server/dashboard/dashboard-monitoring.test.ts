import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Gauge, Registry } from 'prom-client';
import { createMonitoringMetrics } from '../../monitoring/monitoring-metrics.ts';
import { monitoringSnapshot } from './dashboard-monitoring.ts';

describe('dashboard monitoring snapshot', () => {
  it('gives live accuracy per version, the most drifted feature per version and statistic, breaches past the threshold and the alerts', async () => {
    const registry = new Registry();
    const drift = createMonitoringMetrics(registry);
    // The gauge the accuracy monitor sets (src/monitoring/accuracy-metrics.ts), by the same name and labels.
    const accuracy = new Gauge({ name: 'inflow_live_accuracy', help: 'a', labelNames: ['model', 'version'], registers: [registry] });
    accuracy.set({ model: 'digits', version: '1' }, 0.47);
    accuracy.set({ model: 'digits', version: '3' }, 0.98);
    const at = (feature: string, statistic: string, value: number, version = '1') =>
      drift.driftStatistic.set({ model: 'digits', version, feature, statistic }, value);
    at('input[7]', 'psi', 1.9);
    at('input[3]', 'psi', 0.3);
    at('input[1]', 'psi', 0.1);
    at('input[7]', 'ks', 0.8); // not charted: its threshold is on the p-value
    at('label', 'jensen_shannon', 0.35);
    at('input[7]', 'psi', 0.02, '3');
    drift.driftAlerts.inc({ model: 'digits', version: '1', statistic: 'psi' }, 2);
    drift.driftAlerts.inc({ model: 'digits', version: '1', statistic: 'ks' }, 3);
    const alerts = Array.from({ length: 25 }, (_, i) => ({ kind: 'drift', model: 'digits', version: 1, at: `t${i}`, text: `alert ${i}` }));
    const s = await monitoringSnapshot({ registry, thresholds: { psi: 0.25, jensenShannon: 0.2 }, alerts: () => alerts });
    assert.deepEqual(s.accuracy, { 'digits v1': 0.47, 'digits v3': 0.98 });
    assert.deepEqual(s.drift, [
      { series: 'digits v1', statistic: 'jensen_shannon', feature: 'label', value: 0.35, threshold: 0.2 },
      { series: 'digits v1', statistic: 'psi', feature: 'input[7]', value: 1.9, threshold: 0.25 },
      { series: 'digits v3', statistic: 'psi', feature: 'input[7]', value: 0.02, threshold: 0.25 },
    ]);
    // Largest relative to its threshold first: 1.9/0.25, 0.35/0.2, 0.3/0.25; input[1] (0.1) is below.
    assert.deepEqual(
      s.breaches.map((b) => `${b.feature} ${b.statistic}`),
      ['input[7] psi', 'label jensen_shannon', 'input[3] psi'],
    );
    assert.deepEqual(s.alertsTotal, { 'digits v1': 5 });
    assert.deepEqual(
      s.alerts.map((a) => a.text),
      alerts.slice(5).map((a) => a.text),
    );
  });

  it('charts values without a threshold when none is given, and lists no breach then', async () => {
    const registry = new Registry();
    createMonitoringMetrics(registry).driftStatistic.set({ model: 'm', version: '2', feature: 'x', statistic: 'psi' }, 4);
    const s = await monitoringSnapshot({ registry });
    assert.deepEqual(s.drift, [{ series: 'm v2', statistic: 'psi', feature: 'x', value: 4, threshold: null }]);
    assert.deepEqual([s.breaches, s.alerts, s.accuracy], [[], [], {}]);
  });
});
