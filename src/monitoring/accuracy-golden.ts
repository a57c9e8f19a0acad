/**
 * The golden live-accuracy fixture (scripts/monitoring/accuracy-golden.py: records and what
 * scikit-learn says about them) as records, for the tests and the monitor benchmark.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { ProducerRecord } from '../kafka/types.ts';
import type { AccuracyReport } from './label-join.ts';
import type { ClassMetrics } from './live-metrics.ts';

export interface GoldenScenario {
  predictions: { id: string; version: number; ts: number; outputs: Record<string, unknown> }[];
  labels: { id: string; ts: number; label: number }[];
  expected: Record<string, unknown>[];
}
export interface AccuracyGolden {
  windowMs: number;
  labelWindowMs: number;
  graceMs: number;
  classification: GoldenScenario;
  regression: GoldenScenario;
}

/** Reads the fixture. */
export function loadAccuracyGolden(): AccuracyGolden {
  return JSON.parse(readFileSync(new URL('./fixtures/accuracy-golden.json', import.meta.url), 'utf8')) as AccuracyGolden;
}

/** The scenario's prediction-log entries (the shape pipelines write) and labels, timestamps from `t0`. */
export function goldenRecords(
  s: GoldenScenario,
  topics: { log: string; labels: string },
  t0: number,
  model = 'scorer',
): { predictions: ProducerRecord[]; labels: ProducerRecord[] } {
  return {
    predictions: s.predictions.map((p) => ({
      topic: topics.log,
      key: Buffer.from(p.id),
      value: Buffer.from(
        JSON.stringify({ requestId: p.id, key: p.id, model, version: p.version, outputs: p.outputs, latencyMs: 1, timestamp: t0 + p.ts }),
      ),
      timestamp: t0 + p.ts,
    })),
    labels: s.labels.map((l) => ({
      topic: topics.labels,
      key: Buffer.from(l.id),
      value: Buffer.from(JSON.stringify({ label: l.label })),
      timestamp: t0 + l.ts,
    })),
  };
}

/** Compares a report with what scikit-learn said (1e-9), field by field. */
export function assertMatchesGolden(reports: readonly AccuracyReport[], expected: readonly Record<string, unknown>[], t0: number): void {
  assert.equal(reports.length, expected.length, JSON.stringify(reports.map((r) => [r.version, r.window.start - t0])));
  const close = (a: number | undefined, b: unknown, what: string) =>
    assert.ok(a !== undefined && Math.abs(a - (b as number)) <= 1e-9, `${what}: ${a} vs scikit-learn ${String(b)}`);
  for (const e of expected) {
    const r = reports.find((x) => x.version === e.version && x.window.start - t0 === e.windowStart);
    assert.ok(r, `no report for version ${String(e.version)} window ${String(e.windowStart)}`);
    const at = `v${r.version}@${r.window.start - t0}`;
    assert.equal(r.predictions, e.predictions, `${at} predictions`);
    assert.equal(r.labelled, e.labelled, `${at} labelled`);
    close(r.unlabelledShare, e.unlabelledShare, `${at} unlabelledShare`);
    const d = e.labelDelayMs as Record<string, number>;
    for (const k of ['mean', 'p50', 'p95', 'max'] as const) close(r.labelDelayMs?.[k], d[k], `${at} labelDelayMs.${k}`);
    if (e.accuracy !== undefined) {
      const c = r.classification;
      assert.ok(c, `${at}: no classification metrics`);
      close(c.accuracy, e.accuracy, `${at} accuracy`);
      close(c.logLoss, e.logLoss, `${at} logLoss`);
      assert.deepEqual(c.confusion, e.confusion, `${at} confusion`);
      const classes = e.classes as { class: number; precision: number; recall: number; f1: number; support: number }[];
      assert.equal(c.classes.length, classes.length);
      for (const [i, k] of classes.entries()) {
        const got: ClassMetrics | undefined = c.classes[i];
        assert.equal(got?.class, k.class);
        assert.equal(got?.support, k.support);
        close(got?.precision, k.precision, `${at} class ${k.class} precision`);
        close(got?.recall, k.recall, `${at} class ${k.class} recall`);
        close(got?.f1, k.f1, `${at} class ${k.class} f1`);
      }
    } else {
      close(r.regression?.mae, e.mae, `${at} mae`);
      close(r.regression?.rmse, e.rmse, `${at} rmse`);
    }
  }
}
