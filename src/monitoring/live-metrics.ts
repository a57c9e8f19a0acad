/**
 * The live-accuracy metrics of one window of labelled predictions, defined as scikit-learn defines
 * them (checked against it in live-metrics.test.ts with a golden fixture made by
 * scripts/monitoring/accuracy-golden.py): accuracy_score, precision_recall_fscore_support
 * (zero_division=0, classes = those seen in labels or predictions, sorted), confusion_matrix,
 * log_loss (rows renormalised, clipped to float64 eps) and, for regression,
 * mean_absolute_error and root_mean_squared_error.
 */

/** A class label as it appears in a label record or a prediction: a number or a string. */
export type ClassLabel = number | string;

/** One prediction joined with its label. */
export interface LabelledPrediction {
  predicted: ClassLabel;
  actual: ClassLabel;
  /** Class probabilities (index i is class `classes[i]`, or class i without `classes`), when the model outputs them. */
  probabilities?: readonly number[];
}

/** Per-class precision, recall, F1 and support (labels of that class). */
export interface ClassMetrics {
  class: ClassLabel;
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface ClassificationMetrics {
  accuracy: number;
  classes: ClassMetrics[];
  /** `matrix[i][j]`: labels of class `labels[i]` predicted as `labels[j]` (sklearn's confusion_matrix). */
  confusion: { labels: ClassLabel[]; matrix: number[][] };
  /** Present when every labelled prediction had probabilities. */
  logLoss?: number;
}

export interface RegressionMetrics {
  mae: number;
  rmse: number;
}

/** numpy's float64 eps: sklearn's log_loss clips probabilities to [eps, 1 − eps]. */
const EPS = 2.220446049250313e-16;

/** Numbers sort before strings, numbers numerically, strings by code unit (numpy's sort of one dtype). */
function compareLabels(a: ClassLabel, b: ClassLabel): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Classification metrics of `rows` (at least one). `classes` maps probability index → class; without
 * it, index i is class i.
 */
export function classificationMetrics(rows: readonly LabelledPrediction[], classes?: readonly ClassLabel[]): ClassificationMetrics {
  const labels = [...new Set(rows.flatMap((r) => [r.actual, r.predicted]))].sort(compareLabels);
  const index = new Map(labels.map((l, i) => [l, i]));
  const matrix = labels.map(() => labels.map(() => 0));
  let correct = 0;
  for (const r of rows) {
    const i = index.get(r.actual) ?? 0;
    const j = index.get(r.predicted) ?? 0;
    const row = matrix[i];
    if (row) row[j] = (row[j] ?? 0) + 1;
    if (r.actual === r.predicted) correct++;
  }
  const perClass = labels.map((label, k) => {
    const tp = matrix[k]?.[k] ?? 0;
    const predicted = matrix.reduce((s, row) => s + (row[k] ?? 0), 0);
    const support = (matrix[k] ?? []).reduce((s, v) => s + v, 0);
    const precision = predicted === 0 ? 0 : tp / predicted;
    const recall = support === 0 ? 0 : tp / support;
    const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
    return { class: label, precision, recall, f1, support };
  });
  const out: ClassificationMetrics = { accuracy: correct / rows.length, classes: perClass, confusion: { labels, matrix } };
  if (rows.length > 0 && rows.every((r) => r.probabilities && r.probabilities.length > 0)) {
    let sum = 0;
    for (const r of rows) {
      const p = r.probabilities ?? [];
      const at = classes ? classes.indexOf(r.actual) : typeof r.actual === 'number' ? r.actual : -1;
      const total = p.reduce((s, v) => s + v, 0);
      const pt = at >= 0 && at < p.length && total > 0 ? (p[at] ?? 0) / total : 0;
      sum -= Math.log(Math.min(Math.max(pt, EPS), 1 - EPS));
    }
    out.logLoss = sum / rows.length;
  }
  return out;
}

/** MAE and RMSE of `rows` (numbers; at least one). */
export function regressionMetrics(rows: readonly { predicted: number; actual: number }[]): RegressionMetrics {
  let abs = 0;
  let sq = 0;
  for (const r of rows) {
    const e = r.predicted - r.actual;
    abs += Math.abs(e);
    sq += e * e;
  }
  return { mae: abs / rows.length, rmse: Math.sqrt(sq / rows.length) };
}

/** Mean, median, 95th percentile and maximum of `values` (numpy's linear-interpolation quantile); undefined when empty. */
export function summarize(values: readonly number[]): { mean: number; p50: number; p95: number; max: number } | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const q = (p: number): number => {
    const h = (sorted.length - 1) * p;
    const lo = Math.floor(h);
    const a = sorted[lo] ?? 0;
    const b = sorted[Math.min(lo + 1, sorted.length - 1)] ?? a;
    return a + (h - lo) * (b - a);
  };
  return { mean: sorted.reduce((s, v) => s + v, 0) / sorted.length, p50: q(0.5), p95: q(0.95), max: sorted.at(-1) ?? 0 };
}
