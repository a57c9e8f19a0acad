/**
 * The guards of a guarded rollout: each one looks at what happened since the step began (a
 * {@link SignalSnapshot} delta, the drift alerts raised for the new version) and passes, fails,
 * or lacks samples (the rollout then holds the step instead of advancing on no evidence).
 *
 * The latency guard fails only on significant evidence. A p99 over a few dozen requests is their
 * slowest one or two: one request stalled by a loaded host (a GC pause, a descheduled thread) puts
 * it far above the limit. So a p99 over the limit fails only when more of the new version's
 * requests were slower than the limit than a p99 at the limit explains: under "p99 ≤ limit" each
 * request exceeds the limit with probability ≤ 1 %, and the guard fails when the count seen has a
 * one-sided binomial p-value below {@link LATENCY_SIGNIFICANCE}; until then it holds. A version
 * that is slower on every request gets there in four requests (0.01⁴ = 1e-8); host stalls that hit
 * a few % of both versions' requests, more of the new one's by chance, do not (7 of 45 requests
 * slower than the limit are needed at 45).
 */
import { z } from 'zod';
import type { AlertHead } from './alerts.ts';
import { logGamma } from './drift-stats.ts';
import { histogramQuantile, type SignalSnapshot } from './rollout-signals.ts';

/** The latency guard fails when P(this many requests over the limit | p99 at the limit) is below this. */
export const LATENCY_SIGNIFICANCE = 1e-6;

export const guardOptionsSchema = z.strictObject({
  /** Requests of the new version (and shadow comparisons) needed before a guard decides. */
  minSamples: z.number().int().min(1).default(100),
  /** Highest share of the new version's requests that may fail. */
  maxErrorRate: z.number().min(0).max(1).default(0.01),
  /** Highest p99 latency of the new version, ms (absolute); absent: not checked. */
  maxLatencyP99Ms: z.number().positive().optional(),
  /** Highest p99 of the new version relative to the baseline's (when both have samples). */
  maxLatencyP99Ratio: z.number().positive().default(2),
  /** Lowest share of shadowed baseline requests the new version must agree on; absent: no shadow, not checked. */
  minAgreement: z.number().min(0).max(1).optional(),
  /** Largest drop of live accuracy below the baseline's (from `inflow_live_accuracy`); absent: not checked. */
  maxAccuracyDrop: z.number().min(0).max(1).optional(),
  /** Fail on any drift alert raised for the new version during the rollout. */
  failOnDrift: z.boolean().default(true),
});
export type GuardOptions = z.output<typeof guardOptionsSchema>;

export const GuardStatus = { PASS: 'pass', FAIL: 'fail', INSUFFICIENT: 'insufficient' } as const;
export type GuardStatus = (typeof GuardStatus)[keyof typeof GuardStatus];

/** One guard's verdict. */
export interface GuardResult {
  guard: 'error-rate' | 'latency-p99' | 'shadow-agreement' | 'live-accuracy' | 'drift';
  status: GuardStatus;
  /** A sentence with the numbers. */
  detail: string;
}

const pct = (x: number): string => `${(x * 100).toFixed(2)} %`;

/**
 * Observations above `limit` (seconds) in a cumulative histogram, interpolated linearly inside the
 * bucket that holds the limit (the inverse of histogram_quantile()'s interpolation); those in the
 * +Inf bucket count as above any finite limit.
 */
export function countAbove(buckets: ReadonlyMap<number, number>, limit: number): number {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of sorted) {
    if (le >= limit) {
      if (le === Number.POSITIVE_INFINITY) return total - prevCount;
      const below = prevCount + (count - prevCount) * ((limit - prevLe) / Math.max(le - prevLe, 1e-12));
      return total - below;
    }
    prevLe = le;
    prevCount = count;
  }
  return total - prevCount;
}

/** P(X ≥ k) for X ~ Binomial(n, p): the one-sided p-value of seeing k or more. */
export function binomialUpperTail(k: number, n: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  // Summed from k up: the terms fall geometrically once past the mean, so few are needed when k is past it.
  let term = Math.exp(logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1) + k * Math.log(p) + (n - k) * Math.log1p(-p));
  let sum = 0;
  for (let i = k; i <= n; i++) {
    sum += term;
    if (term <= sum * 1e-17 && i > n * p) break;
    term *= ((n - i) / (i + 1)) * (p / (1 - p));
  }
  return Math.min(1, sum);
}

/** Evaluates every enabled guard for `target` against `baseline`. */
export function evaluateGuards(
  delta: SignalSnapshot,
  baseline: number,
  target: number,
  options: GuardOptions,
  driftAlerts: readonly AlertHead[],
): GuardResult[] {
  const out: GuardResult[] = [];
  const t = delta.versions.get(target);
  const b = delta.versions.get(baseline);
  const n = (t?.success ?? 0) + (t?.failure ?? 0);
  const unreachable = delta.unreachable.length > 0 ? `; unreachable: ${delta.unreachable.join(', ')}` : '';
  if (n < options.minSamples) {
    const detail = `version ${target} answered ${n} of the ${options.minSamples} requests needed${unreachable}`;
    out.push({ guard: 'error-rate', status: GuardStatus.INSUFFICIENT, detail });
    out.push({ guard: 'latency-p99', status: GuardStatus.INSUFFICIENT, detail });
  } else {
    const rate = (t?.failure ?? 0) / n;
    out.push({
      guard: 'error-rate',
      status: rate > options.maxErrorRate ? GuardStatus.FAIL : GuardStatus.PASS,
      detail: `version ${target} failed ${t?.failure ?? 0} of ${n} requests (${pct(rate)}; at most ${pct(options.maxErrorRate)})`,
    });
    const p99 = histogramQuantile(t?.buckets ?? new Map(), 0.99);
    const bn = (b?.success ?? 0) + (b?.failure ?? 0);
    const bp99 = bn >= options.minSamples ? histogramQuantile(b?.buckets ?? new Map(), 0.99) : undefined;
    const limits = [
      ...(options.maxLatencyP99Ms !== undefined ? [options.maxLatencyP99Ms] : []),
      ...(bp99 !== undefined ? [bp99 * 1000 * options.maxLatencyP99Ratio] : []),
    ];
    const limit = limits.length > 0 ? Math.min(...limits) : undefined;
    const ms = p99 === undefined ? undefined : p99 * 1000;
    out.push(
      ms === undefined || limit === undefined
        ? {
            guard: 'latency-p99',
            status: limit === undefined ? GuardStatus.PASS : GuardStatus.INSUFFICIENT,
            detail:
              limit === undefined
                ? `version ${target} p99 ${ms?.toFixed(2) ?? '?'} ms (no limit: the baseline has too few requests and no --max-latency-p99)`
                : `version ${target} reported no latency histogram`,
          }
        : latencyVerdict(target, ms, limit, bp99, t?.buckets ?? new Map()),
    );
  }
  if (options.minAgreement !== undefined) {
    const s = delta.shadow.get(`${baseline}>${target}`) ?? { requests: 0, agreement: 0 };
    if (s.requests < options.minSamples) {
      out.push({
        guard: 'shadow-agreement',
        status: GuardStatus.INSUFFICIENT,
        detail: `${s.requests} of the ${options.minSamples} shadow comparisons of version ${target} against ${baseline} needed${unreachable}`,
      });
    } else {
      const share = s.agreement / s.requests;
      out.push({
        guard: 'shadow-agreement',
        status: share < options.minAgreement ? GuardStatus.FAIL : GuardStatus.PASS,
        detail: `version ${target} agreed with version ${baseline} on ${s.agreement} of ${s.requests} shadowed requests (${pct(share)}; at least ${pct(options.minAgreement)})`,
      });
    }
  }
  if (options.maxAccuracyDrop !== undefined) {
    const ta = delta.accuracy.get(target);
    const ba = delta.accuracy.get(baseline);
    out.push(
      ta === undefined || ba === undefined
        ? {
            guard: 'live-accuracy',
            status: GuardStatus.INSUFFICIENT,
            detail: `no live accuracy (inflow_live_accuracy) yet for version ${ta === undefined ? target : baseline}`,
          }
        : {
            guard: 'live-accuracy',
            status: ba - ta > options.maxAccuracyDrop ? GuardStatus.FAIL : GuardStatus.PASS,
            detail: `live accuracy of version ${target} ${pct(ta)} vs ${pct(ba)} of version ${baseline} (at most ${pct(options.maxAccuracyDrop)} lower)`,
          },
    );
  }
  if (options.failOnDrift) {
    const mine = driftAlerts.filter((a) => a.kind === 'drift' && a.version === target);
    const first = mine[0];
    out.push({
      guard: 'drift',
      status: first ? GuardStatus.FAIL : GuardStatus.PASS,
      detail: first
        ? `${mine.length} drift alert(s) for version ${target}, first: ${JSON.stringify(first.feature)} ${JSON.stringify(first.statistic)} = ${JSON.stringify(first.value)} at ${first.at}`
        : `no drift alert for version ${target}`,
    });
  }
  return out;
}

/** The latency guard's verdict once there is a p99 and a limit (ms): fail only on significant evidence. */
function latencyVerdict(
  target: number,
  ms: number,
  limit: number,
  bp99: number | undefined,
  buckets: ReadonlyMap<number, number>,
): GuardResult {
  const numbers = `version ${target} p99 ${ms.toFixed(2)} ms (at most ${limit.toFixed(2)} ms${bp99 !== undefined ? `; baseline ${(bp99 * 1000).toFixed(2)} ms` : ''})`;
  if (ms <= limit) return { guard: 'latency-p99', status: GuardStatus.PASS, detail: numbers };
  // The histogram's own count: it is what `over` is a share of.
  const observed = Math.max(0, ...buckets.values());
  const over = Math.round(countAbove(buckets, limit / 1000));
  const pValue = binomialUpperTail(over, observed, 0.01);
  const evidence = `${over} of ${observed} requests slower than ${limit.toFixed(2)} ms, p = ${pValue.toPrecision(2)} against a p99 at the limit`;
  return pValue < LATENCY_SIGNIFICANCE
    ? { guard: 'latency-p99', status: GuardStatus.FAIL, detail: `${numbers}: ${evidence}` }
    : {
        guard: 'latency-p99',
        status: GuardStatus.INSUFFICIENT,
        detail: `${numbers}: only ${evidence}, not yet below ${LATENCY_SIGNIFICANCE}`,
      };
}
