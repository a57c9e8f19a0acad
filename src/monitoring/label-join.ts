/**
 * The join of the prediction log with late labels, and the windows live accuracy is kept in — the
 * state of the accuracy monitor, without Kafka (./accuracy-monitor.ts reads and writes).
 *
 * A label meets the prediction with the same id whose timestamp is at most `labelWindowMs` before
 * the label's (or `graceMs` after it), whichever of the two is read first: either side waits for
 * the other. The first label of an id counts; later ones are duplicates (counted, not scored).
 * A label outside the window is late (its prediction stays unlabelled); a label whose id no
 * prediction had is a dead letter once no matching prediction can still come (the prediction
 * log's stream time passed its timestamp + grace).
 *
 * This is a left join over the prediction side with a final emit per window (the share still
 * unlabelled needs the predictions no label met), which the streams layer's inner windowed join
 * does not offer; the state is the same shape (both sides held by id within the window, stream
 * time per side, Kafka Streams' lateness rule).
 *
 * A window of prediction time closes once the prediction log's stream time passed its end +
 * grace and the labels' stream time passed its end + labelWindowMs + grace: every prediction of
 * it and every label that may still count has been read. A side's stream time is the least of its
 * partitions' (the largest timestamp read from each), so a monitor catching up, which reads one
 * partition far ahead of another, closes nothing early. Labels that stop flowing, or a partition
 * that stops getting records, keep windows open (stream time does not move).
 */
import type { ConsumedRecord } from '../kafka/types.ts';
import type { AccuracyConfig } from './accuracy-config.ts';
import {
  type ClassificationMetrics,
  type ClassLabel,
  classificationMetrics,
  type LabelledPrediction,
  type RegressionMetrics,
  regressionMetrics,
  summarize,
} from './live-metrics.ts';

/** A closed window's live accuracy (the monitoring topic's record value). */
export interface AccuracyReport {
  kind: 'accuracy-report';
  model: string;
  version: number;
  /** Prediction time, ms since the epoch. */
  window: { start: number; end: number };
  predictions: number;
  labelled: number;
  /** Predictions no label met (yet), as a share of `predictions`. */
  unlabelledShare: number;
  /** Label time − prediction time of the labelled ones, ms. */
  labelDelayMs?: { mean: number; p50: number; p95: number; max: number };
  classification?: ClassificationMetrics;
  regression?: RegressionMetrics;
}

/** A label that cannot be used, with why. */
export interface BadLabel {
  record: ConsumedRecord;
  /** `INVALID_ARGUMENT` (not JSON, no id, wrong type) or `NOT_FOUND` (no prediction had its id). */
  code: 'INVALID_ARGUMENT' | 'NOT_FOUND';
  reason: string;
}

/** What became of each label read. */
export const LabelOutcome = {
  MATCHED: 'matched',
  DUPLICATE: 'duplicate',
  OUTSIDE_WINDOW: 'outside_window',
  UNKNOWN_ID: 'unknown_id',
  INVALID: 'invalid',
} as const;
export type LabelOutcome = (typeof LabelOutcome)[keyof typeof LabelOutcome];

interface Label {
  value: ClassLabel;
  ts: number;
  record: ConsumedRecord;
}

interface Prediction {
  model: string;
  version: number;
  ts: number;
  windowKey: string;
  predicted: ClassLabel;
  probabilities?: number[];
  record: ConsumedRecord;
  label?: Label;
}

interface Window {
  model: string;
  version: number;
  start: number;
  ids: string[];
}

export interface LabelJoin {
  /** A prediction log record; false when it is not an entry this monitor can score (skipped). */
  addPrediction(record: ConsumedRecord): boolean;
  /** A label record; a bad one comes back with the reason (to dead-letter). */
  addLabel(record: ConsumedRecord): BadLabel | undefined;
  /**
   * Closes the windows that are due: their reports, and the labels found to have no prediction.
   * `final` (the end of a replay: nothing more will be read) closes every window.
   */
  closeDue(final?: boolean): { reports: AccuracyReport[]; badLabels: BadLabel[] };
  /** Per `topic:partition`: the earliest offset still held (a prediction of an open window, its label, a label waiting). */
  heldOffsets(): Map<string, bigint>;
  /** Labels per outcome so far. */
  outcomes(): Record<LabelOutcome, number>;
  /** Prediction log records skipped (not an entry, no id, no prediction, a repeated id). */
  skipped(): number;
  /** Predictions for a window already reported (read again after a restart, or later than the window's close): not scored again. */
  late(): number;
  /**
   * Marks windows of `model`/`version` ending at or before `end` as reported (from the monitoring
   * topic at start), so records read again after a restart do not report a window twice.
   */
  reported(model: string, version: number, end: number): void;
}

/** The value at a dotted path (`key` = the record key as text, `value` = the whole value). */
function at(record: ConsumedRecord, value: unknown, path: string): unknown {
  if (path === 'key') return record.key?.toString('utf8');
  if (path === 'value') return value;
  let v: unknown = value;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  // A one-row output logged as [x] is x.
  return Array.isArray(v) && v.length === 1 ? v[0] : v;
}

const parse = (record: ConsumedRecord): unknown => {
  try {
    return JSON.parse(record.value?.toString('utf8') ?? 'null');
  } catch {
    return undefined;
  }
};

const describe = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);

export function createLabelJoin(config: AccuracyConfig): LabelJoin {
  const predictions = new Map<string, Prediction>();
  const pending = new Map<string, Label[]>();
  const windows = new Map<string, Window>();
  /** Ids of predictions whose window closed: a label for one is late, not unknown. Kept 2 label windows. */
  const closed = new Map<string, { ts: number; labelled: boolean }>();
  const outcomes: Record<LabelOutcome, number> = { matched: 0, duplicate: 0, outside_window: 0, unknown_id: 0, invalid: 0 };
  let skipped = 0;
  let late = 0;
  /** The earliest timestamp of a label waiting for its prediction. */
  let minPending = Number.POSITIVE_INFINITY;
  /** Per `model\u0000version`: the end of the latest window reported; a prediction before it is late. */
  const reportedUpTo = new Map<string, number>();
  /** Stream time per partition of each side; a side's stream time is the least of its partitions'. */
  const predTimes = new Map<string, number>();
  const labelTimes = new Map<string, number>();
  const advance = (times: Map<string, number>, r: ConsumedRecord): void => {
    const k = `${r.topic}:${r.partition}`;
    times.set(k, Math.max(times.get(k) ?? Number.NEGATIVE_INFINITY, r.timestamp));
  };
  const streamTime = (times: Map<string, number>): number => (times.size === 0 ? Number.NEGATIVE_INFINITY : Math.min(...times.values()));
  const isClassification = config.task === 'classification';

  const inWindow = (p: { ts: number }, l: Label): boolean => l.ts - p.ts <= config.labelWindowMs && p.ts - l.ts <= config.graceMs;

  /** Offers `labels` (in read order) to `p`: the first inside the window labels it. */
  function meet(p: Prediction, l: Label): void {
    if (p.label) {
      outcomes.duplicate++;
    } else if (inWindow(p, l)) {
      p.label = l;
      outcomes.matched++;
    } else {
      outcomes.outside_window++;
    }
  }

  function bad(record: ConsumedRecord, reason: string): BadLabel {
    outcomes.invalid++;
    return { record, code: 'INVALID_ARGUMENT', reason };
  }

  return {
    addPrediction(record) {
      const entry = parse(record) as { model?: unknown; version?: unknown } | undefined;
      if (!entry || typeof entry !== 'object' || typeof entry.model !== 'string' || !Number.isInteger(entry.version)) {
        skipped++;
        return false;
      }
      const rawId = at(record, entry, config.id.prediction);
      const predicted = at(record, entry, config.prediction);
      const ok = isClassification ? typeof predicted === 'number' || typeof predicted === 'string' : typeof predicted === 'number';
      if ((typeof rawId !== 'string' && typeof rawId !== 'number') || !ok) {
        skipped++;
        return false;
      }
      const id = String(rawId);
      advance(predTimes, record);
      const version = entry.version as number;
      const start = Math.floor(record.timestamp / config.windowMs) * config.windowMs;
      if (start + config.windowMs <= (reportedUpTo.get(`${entry.model}\u0000${version}`) ?? Number.NEGATIVE_INFINITY)) {
        // Its window was reported already: reopening it would report it twice (a partial second report).
        late++;
        if (!closed.has(id)) closed.set(id, { ts: record.timestamp, labelled: false });
        return false;
      }
      if (predictions.has(id)) {
        // The same id predicted again (a replay): the first prediction is the one scored.
        skipped++;
        return false;
      }
      const probs = config.probabilities === undefined ? undefined : at(record, entry, config.probabilities);
      const windowKey = `${entry.model}\u0000${version}\u0000${start}`;
      const p: Prediction = {
        model: entry.model,
        version,
        ts: record.timestamp,
        windowKey,
        predicted: predicted as ClassLabel,
        ...(Array.isArray(probs) && probs.every((x) => typeof x === 'number') ? { probabilities: probs } : {}),
        record,
      };
      predictions.set(id, p);
      let w = windows.get(windowKey);
      if (!w) {
        w = { model: entry.model, version, start, ids: [] };
        windows.set(windowKey, w);
      }
      w.ids.push(id);
      const waiting = pending.get(id);
      if (waiting) {
        pending.delete(id);
        for (const l of waiting) meet(p, l);
      }
      return true;
    },

    addLabel(record) {
      const value = parse(record);
      if (value === undefined) return bad(record, `label on ${record.topic} is not JSON`);
      const rawId = at(record, value, config.id.label);
      if (typeof rawId !== 'string' && typeof rawId !== 'number') {
        return bad(record, `label has no id at "${config.id.label}" (expected a string or a number, got ${describe(rawId)})`);
      }
      const v = at(record, value, config.labelField);
      const ok = isClassification ? typeof v === 'number' || typeof v === 'string' : typeof v === 'number' && Number.isFinite(v);
      if (!ok) {
        return bad(
          record,
          `label of the wrong type at "${config.labelField}": expected ${isClassification ? 'a class (a number or a string)' : 'a finite number'}, got ${describe(v)}`,
        );
      }
      const id = String(rawId);
      const l: Label = { value: v as ClassLabel, ts: record.timestamp, record };
      advance(labelTimes, record);
      const p = predictions.get(id);
      if (p) {
        meet(p, l);
        return undefined;
      }
      const c = closed.get(id);
      if (c) {
        if (c.labelled) outcomes.duplicate++;
        else outcomes.outside_window++;
        return undefined;
      }
      const list = pending.get(id) ?? [];
      minPending = Math.min(minPending, l.ts);
      list.push(l);
      pending.set(id, list);
      return undefined;
    },

    closeDue(final = false) {
      const reports: AccuracyReport[] = [];
      const predTime = final ? Number.POSITIVE_INFINITY : streamTime(predTimes);
      const labelTime = final ? Number.POSITIVE_INFINITY : streamTime(labelTimes);
      // Oldest first, so the gauges end on the latest window.
      for (const [key, w] of [...windows].sort((a, b) => a[1].start - b[1].start)) {
        const end = w.start + config.windowMs;
        if (predTime < end + config.graceMs || labelTime < end + config.labelWindowMs + config.graceMs) continue;
        windows.delete(key);
        const mv = `${w.model}\u0000${w.version}`;
        reportedUpTo.set(mv, Math.max(reportedUpTo.get(mv) ?? Number.NEGATIVE_INFINITY, end));
        const rows: LabelledPrediction[] = [];
        const delays: number[] = [];
        for (const id of w.ids) {
          const p = predictions.get(id);
          if (!p) continue;
          predictions.delete(id);
          closed.set(id, { ts: p.ts, labelled: p.label !== undefined });
          if (!p.label) continue;
          delays.push(Math.max(0, p.label.ts - p.ts));
          rows.push({
            predicted: p.predicted,
            actual: p.label.value,
            ...(p.probabilities ? { probabilities: p.probabilities } : {}),
          });
        }
        const report: AccuracyReport = {
          kind: 'accuracy-report',
          model: w.model,
          version: w.version,
          window: { start: w.start, end },
          predictions: w.ids.length,
          labelled: rows.length,
          unlabelledShare: w.ids.length === 0 ? 0 : 1 - rows.length / w.ids.length,
        };
        const delay = summarize(delays);
        if (delay) report.labelDelayMs = delay;
        if (rows.length > 0) {
          if (isClassification) report.classification = classificationMetrics(rows, config.classes);
          else report.regression = regressionMetrics(rows as { predicted: number; actual: number }[]);
        }
        reports.push(report);
      }
      // Labels no prediction can still meet: their ids are unknown. (Scanned only when the
      // prediction side passed the earliest waiting label: this runs after every poll.)
      const badLabels: BadLabel[] = [];
      if (predTime >= minPending + config.graceMs) {
        minPending = Number.POSITIVE_INFINITY;
        for (const [id, list] of pending) {
          const remaining: Label[] = [];
          for (const l of list) {
            if (predTime < l.ts + config.graceMs) {
              remaining.push(l);
              minPending = Math.min(minPending, l.ts);
              continue;
            }
            outcomes.unknown_id++;
            badLabels.push({
              record: l.record,
              code: 'NOT_FOUND',
              reason: `no prediction with id "${id}" in the prediction log within ${config.labelWindowMs} ms before the label`,
            });
          }
          if (remaining.length === 0) pending.delete(id);
          else pending.set(id, remaining);
        }
      }
      // Closed ids in the order their windows closed (about time order): stop at the first kept.
      for (const [id, c] of closed) {
        if (predTime > c.ts + 2 * config.labelWindowMs + config.graceMs) closed.delete(id);
        else if (!final) break;
      }
      return { reports, badLabels };
    },

    heldOffsets() {
      const held = new Map<string, bigint>();
      const hold = (r: ConsumedRecord): void => {
        const k = `${r.topic}:${r.partition}`;
        const o = held.get(k);
        if (o === undefined || r.offset < o) held.set(k, r.offset);
      };
      for (const p of predictions.values()) {
        hold(p.record);
        if (p.label) hold(p.label.record);
      }
      for (const list of pending.values()) for (const l of list) hold(l.record);
      return held;
    },

    outcomes: () => ({ ...outcomes }),
    skipped: () => skipped,
    late: () => late,
    reported(model, version, end) {
      const mv = `${model}\u0000${version}`;
      reportedUpTo.set(mv, Math.max(reportedUpTo.get(mv) ?? Number.NEGATIVE_INFINITY, end));
    },
  };
}
