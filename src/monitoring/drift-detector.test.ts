import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { driftAlerts } from './alerts.ts';
import { detectDrift, driftThresholdsSchema } from './drift-detector.ts';
import { ks2samp, sortedFinite } from './drift-stats.ts';
import {
  buildReferenceProfile,
  type FeatureValue,
  loadReferenceProfile,
  PROFILE_FILE,
  parseReferenceData,
  SAMPLE_SIZE,
} from './reference-profile.ts';

/** Deterministic pseudo-random numbers (mulberry32) so the windows are the same every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function rows(n: number, seed: number, shift: number, classes: number[]) {
  const r = random(seed);
  return Array.from({ length: n }, () => ({
    inputs: { input: [r() * 10 + shift, Math.round(r() * 4)], country: r() < 0.5 ? 'de' : 'fr' },
    outputs: { label: [classes[Math.floor(r() * classes.length)] as number] },
  }));
}

function columns(data: ReturnType<typeof rows>) {
  const inputs = new Map<string, FeatureValue[]>();
  const outputs = new Map<string, FeatureValue[]>();
  const push = (m: Map<string, FeatureValue[]>, k: string, v: FeatureValue) => m.set(k, [...(m.get(k) ?? []), v]);
  for (const d of data) {
    push(inputs, 'input[0]', d.inputs.input[0] as number);
    push(inputs, 'input[1]', d.inputs.input[1] as number);
    push(inputs, 'country', d.inputs.country);
    push(outputs, 'label', d.outputs.label[0] as number);
  }
  return { inputs, outputs };
}

const thresholds = driftThresholdsSchema.parse({ minSamples: 50 });

describe('reference profile and drift detection', () => {
  const reference = rows(2000, 1, 0, [0, 1, 2]);
  const profile = buildReferenceProfile(reference, { source: 'test', categorical: ['label'], now: () => 0 });

  it('profiles flattened tensor elements as numeric, strings and named outputs as categories', () => {
    assert.deepEqual(Object.keys(profile.inputs).sort(), ['country', 'input[0]', 'input[1]']);
    assert.equal(profile.inputs['input[0]']?.kind, 'numeric');
    assert.equal(profile.inputs.country?.kind, 'categorical');
    assert.equal(profile.outputs.label?.kind, 'categorical');
    const f = profile.inputs['input[0]'];
    assert.ok(f?.kind === 'numeric' && f.sample.length === SAMPLE_SIZE && f.edges.length === 9);
  });

  it('the profile sample of a large reference gives nearly the KS statistic of the full reference', () => {
    const full = sortedFinite(reference.map((r) => r.inputs.input[0] as number));
    const window = sortedFinite(rows(400, 7, 0.5, [0]).map((r) => r.inputs.input[0] as number));
    const f = profile.inputs['input[0]'];
    assert.ok(f?.kind === 'numeric');
    assert.ok(Math.abs(ks2samp(f.sample, window).statistic - ks2samp(full, window).statistic) < 1 / SAMPLE_SIZE + 1e-9);
  });

  it('a window from the same distribution raises no alert', () => {
    const drift = detectDrift(profile, columns(rows(500, 2, 0, [0, 1, 2])), thresholds);
    assert.equal(drift.length, 4);
    assert.deepEqual(
      drift.filter((d) => d.breaches.length > 0).map((d) => d.feature),
      [],
    );
  });

  it('a shifted feature and a collapsed prediction raise alerts with the evidence', () => {
    const drift = detectDrift(profile, columns(rows(500, 3, 3, [2])), thresholds);
    const by = new Map(drift.map((d) => [d.feature, d]));
    assert.deepEqual(
      by
        .get('input[0]')
        ?.breaches.map((b) => b.statistic)
        .sort(),
      ['ks', 'psi'],
    );
    assert.deepEqual(
      by
        .get('label')
        ?.breaches.map((b) => b.statistic)
        .sort(),
      ['chi_square', 'jensen_shannon', 'psi'],
    );
    assert.deepEqual(by.get('input[1]')?.breaches, []);
    const alerts = driftAlerts('m', 3, { start: 0, end: 60_000 }, drift, 0);
    const label = alerts.find((a) => a.feature === 'label' && a.statistic === 'jensen_shannon');
    assert.ok(label && label.value > 0.2 && label.side === 'output' && label.samples === 500);
    assert.deepEqual(label.evidence.labels, ['0', '1', '2']);
    assert.deepEqual(label.evidence.window, [0, 0, 1]);
  });

  it('a category the reference never saw counts as drift instead of failing', () => {
    const window = columns(rows(200, 4, 0, [0, 1, 2]));
    window.inputs.set('country', new Array<FeatureValue>(200).fill('jp'));
    const country = detectDrift(profile, window, thresholds).find((d) => d.feature === 'country');
    assert.ok(country?.chiSquare && country.chiSquare.pValue < 1e-10);
    assert.deepEqual(country.bins.labels.sort(), ['de', 'fr', 'jp']);
  });

  it('a window below minSamples is reported without alerts', () => {
    const drift = detectDrift(profile, columns(rows(20, 5, 5, [2])), thresholds);
    assert.ok(drift.every((d) => d.insufficient && d.breaches.length === 0));
  });

  it('a version folder without a profile says drift is unavailable and how to add one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inflow-profile-'));
    await assert.rejects(loadReferenceProfile(dir, 'model m version 2'), {
      code: 'FAILED_PRECONDITION',
      message: /model m version 2 has no reference profile .*drift is unavailable.*--reference-data/,
    });
    await writeFile(join(dir, PROFILE_FILE), JSON.stringify(profile));
    assert.deepEqual((await loadReferenceProfile(dir, 'model m version 2')).inputs.country, profile.inputs.country);
    await writeFile(join(dir, PROFILE_FILE), '{"format":1}');
    await assert.rejects(loadReferenceProfile(dir, 'x'), { code: 'INVALID_ARGUMENT', message: /is not a reference profile/ });
  });

  it('reference data without inputs is refused with the expected shape', () => {
    assert.throws(() => parseReferenceData('[{"x": 1}]', 'd.json'), { code: 'INVALID_ARGUMENT', message: /row 0 has no "inputs" object/ });
    assert.equal(parseReferenceData('{"inputs":{"a":1}}\n{"inputs":{"a":2}}\n', 'd.jsonl').length, 2);
  });
});
