/**
 * Prometheus metrics of live accuracy. `inflow_live_accuracy{model,version}` is what a guarded
 * rollout's accuracy guard reads (./rollout-signals.ts). Class labels come from the model's
 * classes; past {@link MAX_CLASS_SERIES} classes per version the per-class series are left out,
 * so a label topic full of junk classes cannot grow the series without bound.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AccuracyReport, LabelOutcome } from './label-join.ts';

/** Per-class series kept per model version at most. */
export const MAX_CLASS_SERIES = 32;

export interface AccuracyMetrics {
  /** Sets the gauges from a closed window's report. */
  record(report: AccuracyReport): void;
  /** Counts labels by outcome. */
  labels(outcome: LabelOutcome, n?: number): void;
}

/** Registers the live-accuracy metrics in `registry`. */
export function createAccuracyMetrics(registry: Registry): AccuracyMetrics {
  const registers = [registry];
  const gauge = (name: string, help: string, extra: string[] = []) =>
    new Gauge({ name, help, labelNames: ['model', 'version', ...extra], registers });
  const accuracy = gauge('inflow_live_accuracy', 'Accuracy of the last closed window (predictions joined with their labels)');
  const logLoss = gauge('inflow_live_log_loss', 'Log-loss of the last closed window (models with class probabilities)');
  const perClass = gauge('inflow_live_class_metric', 'Precision, recall or F1 of one class in the last closed window', ['class', 'metric']);
  const mae = gauge('inflow_live_mae', 'Mean absolute error of the last closed window (regression)');
  const rmse = gauge('inflow_live_rmse', 'Root mean squared error of the last closed window (regression)');
  const unlabelled = gauge('inflow_live_unlabelled_ratio', 'Share of the last closed window’s predictions no label met');
  const delay = gauge('inflow_live_label_delay_seconds', 'Label time minus prediction time in the last closed window', ['statistic']);
  const labelled = new Counter({
    name: 'inflow_live_labelled_predictions_total',
    help: 'Predictions scored against a label, per closed window',
    labelNames: ['model', 'version'],
    registers,
  });
  const outcomes = new Counter({
    name: 'inflow_live_labels_total',
    help: 'Labels read, by outcome (matched, duplicate, outside_window, unknown_id, invalid)',
    labelNames: ['outcome'],
    registers,
  });
  return {
    record(r) {
      const labels = { model: r.model, version: String(r.version) };
      unlabelled.set(labels, r.unlabelledShare);
      labelled.inc(labels, r.labelled);
      if (r.labelDelayMs) {
        for (const s of ['mean', 'p50', 'p95', 'max'] as const) delay.set({ ...labels, statistic: s }, r.labelDelayMs[s] / 1000);
      }
      const c = r.classification;
      if (c) {
        accuracy.set(labels, c.accuracy);
        if (c.logLoss !== undefined) logLoss.set(labels, c.logLoss);
        for (const k of c.classes.slice(0, MAX_CLASS_SERIES)) {
          const l = { ...labels, class: String(k.class) };
          perClass.set({ ...l, metric: 'precision' }, k.precision);
          perClass.set({ ...l, metric: 'recall' }, k.recall);
          perClass.set({ ...l, metric: 'f1' }, k.f1);
        }
      }
      if (r.regression) {
        mae.set(labels, r.regression.mae);
        rmse.set(labels, r.regression.rmse);
      }
    },
    labels(outcome, n = 1) {
      if (n > 0) outcomes.inc({ outcome }, n);
    },
  };
}
