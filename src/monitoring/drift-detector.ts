/**
 * Compares one window of live values (per feature, from the prediction log) with a version's
 * reference profile: PSI and KS for numeric features, PSI, chi-square and Jensen–Shannon for
 * categorical ones; outputs the same way (prediction drift). Thresholds decide which statistic
 * raises an alert; the alert carries the evidence (statistic, value, threshold, samples, the
 * reference's and the window's bins).
 */
import { z } from 'zod';
import { binProportions, chiSquare, jensenShannon, ks2samp, PSI_EPSILON, psi, sortedFinite, type TestResult } from './drift-stats.ts';
import type { FeatureProfile, FeatureValue, ReferenceProfile } from './reference-profile.ts';

/** Per-model drift thresholds (the `drift:` section of a model in a monitor file). */
export const driftThresholdsSchema = z.strictObject({
  /** Alert when PSI exceeds this (0.25: "significant shift" in the usual reading). */
  psi: z.number().positive().default(0.25),
  /** Alert when the KS p-value falls below this. */
  ksPValue: z.number().min(0).max(1).default(0.001),
  /** Alert when the chi-square p-value falls below this. */
  chiSquarePValue: z.number().min(0).max(1).default(0.001),
  /** Alert when the Jensen–Shannon distance (bits, 0..1) exceeds this. */
  jensenShannon: z.number().min(0).max(1).default(0.2),
  /** Below this many values in a window a feature is reported but raises no alert (too few samples). */
  minSamples: z.number().int().min(1).default(100),
  /** Only these features (flattened names, or tensor names for all their elements); default all. */
  features: z.array(z.string()).optional(),
});
export type DriftThresholds = z.output<typeof driftThresholdsSchema>;

export const Statistic = {
  PSI: 'psi',
  KS: 'ks',
  CHI_SQUARE: 'chi_square',
  JENSEN_SHANNON: 'jensen_shannon',
} as const;
export type Statistic = (typeof Statistic)[keyof typeof Statistic];

/** One statistic that crossed its threshold. */
export interface DriftBreach {
  statistic: Statistic;
  /** PSI / JS: the value; KS / chi-square: the p-value. */
  value: number;
  threshold: number;
}

/** One feature's drift in one window. */
export interface FeatureDrift {
  feature: string;
  side: 'input' | 'output';
  kind: FeatureProfile['kind'];
  samples: number;
  psi: number;
  ks?: TestResult;
  chiSquare?: TestResult;
  jensenShannon?: number;
  /** Reference vs window share per bin (numeric) or per category (categorical): the evidence. */
  bins: { labels: string[]; reference: number[]; window: number[] };
  /** Empty when below every threshold or below minSamples. */
  breaches: DriftBreach[];
  /** True when the window had fewer than minSamples values (reported, no alert). */
  insufficient: boolean;
}

/** Live values of one window: flattened feature → values (prediction-log inputs and outputs). */
export interface WindowColumns {
  inputs: ReadonlyMap<string, readonly FeatureValue[]>;
  outputs: ReadonlyMap<string, readonly FeatureValue[]>;
}

const selected = (name: string, features: readonly string[] | undefined): boolean =>
  features === undefined || features.includes(name) || features.includes(name.replace(/\[\d+\]$/, ''));

function numericDrift(ref: Extract<FeatureProfile, { kind: 'numeric' }>, values: readonly FeatureValue[]) {
  const sorted = sortedFinite(values.filter((v): v is number => typeof v === 'number'));
  const window = binProportions(ref.edges, sorted);
  const labels = [...ref.edges.map((e) => `≤${e}`), `>${ref.edges.at(-1) ?? '-∞'}`];
  return {
    samples: sorted.length,
    psi: sorted.length === 0 ? 0 : psi(ref.proportions, window),
    ...(sorted.length > 0 ? { ks: ks2samp(ref.sample, sorted) } : {}),
    bins: { labels, reference: ref.proportions, window },
  };
}

function categoricalDrift(ref: Extract<FeatureProfile, { kind: 'categorical' }>, values: readonly FeatureValue[]) {
  const counts = new Map<string, number>(Object.keys(ref.frequencies).map((c) => [c, 0]));
  let n = 0;
  for (const v of values) {
    if (v === null) continue;
    counts.set(String(v), (counts.get(String(v)) ?? 0) + 1);
    n++;
  }
  const labels = [...counts.keys()];
  const refCounts = labels.map((c) => ref.frequencies[c] ?? 0);
  const refTotal = refCounts.reduce((s, v) => s + v, 0);
  const reference = refCounts.map((c) => c / refTotal);
  const observed = labels.map((c) => counts.get(c) ?? 0);
  const window = observed.map((c) => (n === 0 ? 0 : c / n));
  // A category the reference never saw gets PSI_EPSILON of the expected mass (chi-square needs
  // positive expected counts); the rest is renormalized so expected sums to the window's count.
  const smoothed = reference.map((p) => Math.max(p, PSI_EPSILON));
  const smoothedTotal = smoothed.reduce((s, v) => s + v, 0);
  return {
    samples: n,
    psi: n === 0 ? 0 : psi(reference, window),
    ...(n > 0 && labels.length >= 2
      ? {
          chiSquare: chiSquare(
            observed,
            smoothed.map((p) => (p / smoothedTotal) * n),
          ),
          jensenShannon: jensenShannon(reference, observed),
        }
      : {}),
    bins: { labels, reference, window },
  };
}

/** Drift of every profiled feature (inputs, then outputs) in one window. */
export function detectDrift(profile: ReferenceProfile, window: WindowColumns, thresholds: DriftThresholds): FeatureDrift[] {
  const out: FeatureDrift[] = [];
  for (const side of ['input', 'output'] as const) {
    const refs = side === 'input' ? profile.inputs : profile.outputs;
    const live = side === 'input' ? window.inputs : window.outputs;
    for (const [feature, ref] of Object.entries(refs)) {
      if (!selected(feature, thresholds.features)) continue;
      const values = live.get(feature) ?? [];
      const d = ref.kind === 'numeric' ? numericDrift(ref, values) : categoricalDrift(ref, values);
      const insufficient = d.samples < thresholds.minSamples;
      const breaches: DriftBreach[] = [];
      if (!insufficient) {
        if (d.psi > thresholds.psi) breaches.push({ statistic: Statistic.PSI, value: d.psi, threshold: thresholds.psi });
        if ('ks' in d && d.ks && d.ks.pValue < thresholds.ksPValue) {
          breaches.push({ statistic: Statistic.KS, value: d.ks.pValue, threshold: thresholds.ksPValue });
        }
        if ('chiSquare' in d && d.chiSquare && d.chiSquare.pValue < thresholds.chiSquarePValue) {
          breaches.push({ statistic: Statistic.CHI_SQUARE, value: d.chiSquare.pValue, threshold: thresholds.chiSquarePValue });
        }
        if ('jensenShannon' in d && d.jensenShannon !== undefined && d.jensenShannon > thresholds.jensenShannon) {
          breaches.push({ statistic: Statistic.JENSEN_SHANNON, value: d.jensenShannon, threshold: thresholds.jensenShannon });
        }
      }
      out.push({ feature, side, kind: ref.kind, ...d, breaches, insufficient });
    }
  }
  return out;
}
