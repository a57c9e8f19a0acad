/**
 * Prometheus view of a model sync: refusals by reason (so an alert can say "a version was
 * refused for its signature") and installs. Read from the sync's counters at scrape time, so the
 * sync itself needs no registry and one sync can be shown in any service's registry.
 */
import { Counter, type Registry } from 'prom-client';
import { RejectReason } from './delivery-format.ts';
import type { ModelSync } from './model-sync.ts';

/** Registers `inflow_model_sync_rejected_total{reason}` and `inflow_model_sync_installed_total` for `sync` in `registry`. */
export function registerModelSyncMetrics(registry: Registry, sync: ModelSync): void {
  if (registry.getSingleMetric('inflow_model_sync_rejected_total')) return;
  new Counter({
    name: 'inflow_model_sync_rejected_total',
    help: 'Model versions and control records the model sync refused, by reason (unsigned, untrusted-key, bad-signature, executable-platform, integrity, incomplete, staging-limit, invalid-manifest, invalid-config, invalid-control)',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const by = sync.stats().rejectedByReason;
      this.reset();
      // Every reason, zeros included: a rate() over a series that appears only at the first refusal misses it.
      for (const reason of Object.values(RejectReason)) this.labels({ reason }).inc(by[reason] ?? 0);
    },
  });
  new Counter({
    name: 'inflow_model_sync_installed_total',
    help: 'Model versions the model sync installed into the repository',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(sync.stats().installed);
    },
  });
}
