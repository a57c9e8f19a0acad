/**
 * Alerts on the alerts topic: drift that crossed a model's threshold (with the evidence), and a
 * guarded rollout's rollback (with the failing guard). Key = the model name, value = JSON, so a
 * consumer can follow one model and a compacted copy keeps each model's latest.
 */
import { z } from 'zod';
import type { ProducerRecord } from '../kafka/types.ts';
import type { FeatureDrift } from './drift-detector.ts';

/** The topic alerts go to unless told otherwise. */
export const DEFAULT_ALERTS_TOPIC = 'inflow-alerts';

/** A drift alert: one feature, one statistic, one window of one version. */
export interface DriftAlert {
  kind: 'drift';
  model: string;
  version: number;
  /** Window bounds, ms since the epoch (record time of the prediction log). */
  window: { start: number; end: number };
  feature: string;
  side: 'input' | 'output';
  statistic: string;
  value: number;
  threshold: number;
  samples: number;
  /** Reference vs window share per bin/category. */
  evidence: FeatureDrift['bins'];
  /** ISO 8601. */
  at: string;
}

/** One alert per breached statistic of every feature. */
export function driftAlerts(
  model: string,
  version: number,
  window: { start: number; end: number },
  drift: readonly FeatureDrift[],
  now: number,
): DriftAlert[] {
  return drift.flatMap((f) =>
    f.breaches.map((b) => ({
      kind: 'drift' as const,
      model,
      version,
      window,
      feature: f.feature,
      side: f.side,
      statistic: b.statistic,
      value: b.value,
      threshold: b.threshold,
      samples: f.samples,
      evidence: f.bins,
      at: new Date(now).toISOString(),
    })),
  );
}

/** The alert as a record for `topic`. */
export function alertRecord(topic: string, alert: { readonly model: string; readonly kind: string }): ProducerRecord {
  return {
    topic,
    key: Buffer.from(alert.model),
    value: Buffer.from(JSON.stringify(alert)),
    headers: [['inflow-alert-kind', Buffer.from(alert.kind)]],
  };
}

/** The fields every alert has (what a rollout guard reads). */
export const alertHeadSchema = z.looseObject({
  kind: z.string(),
  model: z.string(),
  version: z.number().int(),
  at: z.string(),
});
export type AlertHead = z.output<typeof alertHeadSchema>;

/** Parses an alert record's value; undefined for anything that is not one (other writers). */
export function parseAlertHead(value: Buffer | null): AlertHead | undefined {
  if (!value) return undefined;
  try {
    const r = alertHeadSchema.safeParse(JSON.parse(value.toString('utf8')));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}
