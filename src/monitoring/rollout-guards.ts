/**
 * The guards of a guarded rollout: each one looks at what happened since the step began (a
 * {@link SignalSnapshot} delta, the drift alerts raised for the new version) and passes, fails,
 * or lacks samples (the rollout then holds the step instead of advancing on no evidence).
 */
import { z } from 'zod';
import type { AlertHead } from './alerts.ts';
import { histogramQuantile, type SignalSnapshot } from './rollout-signals.ts';

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
        : {
            guard: 'latency-p99',
            status: ms > limit ? GuardStatus.FAIL : GuardStatus.PASS,
            detail: `version ${target} p99 ${ms.toFixed(2)} ms (at most ${limit.toFixed(2)} ms${bp99 !== undefined ? `; baseline ${(bp99 * 1000).toFixed(2)} ms` : ''})`,
          },
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
