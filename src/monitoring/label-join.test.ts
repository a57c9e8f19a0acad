import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConsumedRecord, ProducerRecord } from '../kafka/types.ts';
import { accuracyConfigSchema } from './accuracy-config.ts';
import { assertMatchesGolden, type GoldenScenario, goldenRecords, loadAccuracyGolden } from './fixtures/accuracy-golden.ts';
import { type AccuracyReport, createLabelJoin } from './label-join.ts';

const golden = loadAccuracyGolden();
const topics = { log: 'log', labels: 'labels' };

function consumed(records: ProducerRecord[]): ConsumedRecord[] {
  return records.map((r, i) => ({
    topic: r.topic,
    partition: 0,
    offset: BigInt(i),
    key: r.key ?? null,
    value: r.value ?? null,
    headers: [],
    timestamp: r.timestamp ?? 0,
  }));
}

function run(s: GoldenScenario, task: 'classification' | 'regression', order: 'labels-first' | 'interleaved'): AccuracyReport[] {
  const config = accuracyConfigSchema.parse({
    labelsTopic: topics.labels,
    task,
    prediction: task === 'classification' ? 'outputs.label' : 'outputs.value',
    ...(task === 'classification' ? { probabilities: 'outputs.probabilities' } : {}),
    windowMs: golden.windowMs,
    labelWindowMs: golden.labelWindowMs,
    graceMs: golden.graceMs,
  });
  const join = createLabelJoin(config);
  const { predictions, labels } = goldenRecords(s, topics, 0);
  const p = consumed(predictions);
  const l = consumed(labels);
  const reports: AccuracyReport[] = [];
  const feed = (r: ConsumedRecord) => {
    if (r.topic === topics.labels) assert.equal(join.addLabel(r), undefined);
    else join.addPrediction(r);
    reports.push(...join.closeDue().reports);
  };
  if (order === 'labels-first') {
    for (const r of l) feed(r);
    for (const r of p) feed(r);
  } else {
    // By timestamp, as a monitor keeping up with both topics reads them.
    for (const r of [...p, ...l].sort((a, b) => a.timestamp - b.timestamp)) feed(r);
  }
  return reports;
}

describe('label join (live accuracy)', () => {
  for (const order of ['interleaved', 'labels-first'] as const) {
    it(`gives scikit-learn's classification metrics per version and window when the topics are read ${order}`, () => {
      assertMatchesGolden(run(golden.classification, 'classification', order), golden.classification.expected, 0);
    });
    it(`gives scikit-learn's MAE and RMSE per version and window when the topics are read ${order}`, () => {
      assertMatchesGolden(run(golden.regression, 'regression', order), golden.regression.expected, 0);
    });
  }

  it('counts labels that came twice, late or for no prediction, and does not report a window twice', () => {
    const config = accuracyConfigSchema.parse({ labelsTopic: 'labels', windowMs: 1000, labelWindowMs: 1000, graceMs: 0 });
    const join = createLabelJoin(config);
    let offset = 0n;
    const rec = (topic: string, key: string, value: unknown, timestamp: number): ConsumedRecord => ({
      topic,
      partition: 0,
      offset: offset++,
      key: Buffer.from(key),
      value: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
      headers: [],
      timestamp,
    });
    const pred = (id: string, ts: number, label: number) => rec('log', id, { model: 'm', version: 1, outputs: { label: [label] } }, ts);
    assert.ok(join.addPrediction(pred('a', 100, 1)));
    assert.ok(join.addPrediction(pred('b', 200, 0)));
    assert.equal(join.addLabel(rec('labels', 'a', { label: 1 }, 300)), undefined);
    assert.equal(join.addLabel(rec('labels', 'a', { label: 0 }, 310)), undefined);
    assert.equal(join.addLabel(rec('labels', 'b', { label: 0 }, 5000)), undefined);
    assert.equal(join.addLabel(rec('labels', 'zzz', { label: 0 }, 400)), undefined);
    assert.equal(
      join.addLabel(rec('labels', 'c', { label: { nested: true } }, 400))?.reason,
      'label of the wrong type at "label": expected a class (a number or a string), got object',
    );
    assert.equal(join.addLabel(rec('labels', 'c', 'not json', 400))?.code, 'INVALID_ARGUMENT');
    assert.ok(join.addPrediction(pred('later', 4500, 1)));
    assert.ok(join.addPrediction(pred('d', 9000, 1)));
    const { reports, badLabels } = join.closeDue();
    assert.equal(reports.length, 1);
    const r = reports[0];
    assert.equal(r?.predictions, 2);
    assert.equal(r?.labelled, 1);
    assert.equal(r?.unlabelledShare, 0.5);
    assert.equal(r?.classification?.accuracy, 1);
    assert.deepEqual(
      badLabels.map((b) => [b.code, b.record.key?.toString(), b.reason]),
      [['NOT_FOUND', 'zzz', 'no prediction with id "zzz" in the prediction log within 1000 ms before the label']],
    );
    assert.deepEqual(join.outcomes(), { matched: 1, duplicate: 1, outside_window: 1, unknown_id: 1, invalid: 2 });
    // A prediction for the reported window, read again (a restart) or late: not scored, not reopened.
    assert.equal(join.addPrediction(pred('again', 150, 1)), false);
    assert.equal(join.late(), 1);
    assert.deepEqual(join.closeDue().reports, []);
  });
});
