/** What the demo shows: the live block while it runs, and the summary table at the end. */
import { formatMs } from './latency-recorder.ts';
import { progressBar } from './progress.ts';
import type { ModeScore } from './demo-scoreboard.ts';
import { formatCount, renderTable } from './text-table.ts';

/** One mode's final numbers (the summary's row, and `--json`). */
export interface ModeSummary {
  readonly mode: string;
  /** Where the model ran, e.g. "in the pipeline" or "model server (oip-grpc)". */
  readonly where: string;
  readonly records: number;
  readonly recordsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Correct predictions / records, 0..1. */
  readonly accuracy: number;
  readonly duplicates: number;
  readonly deadLettered: number;
}

/** The numbers of one mode, rates over the time since the replay started. */
export function summarize(mode: string, where: string, score: ModeScore, replayStartedAt: number, deadLettered: number): ModeSummary {
  const seconds = (score.lastAt - replayStartedAt) / 1000;
  return {
    mode,
    where,
    records: score.scored,
    recordsPerSecond: score.scored > 0 && seconds > 0 ? score.scored / seconds : 0,
    p50Ms: score.latency.percentile(50),
    p99Ms: score.latency.percentile(99),
    maxMs: score.latency.max,
    accuracy: score.scored > 0 ? score.correct / score.scored : Number.NaN,
    duplicates: score.duplicates,
    deadLettered,
  };
}

const percent = (x: number): string => (Number.isNaN(x) ? '-' : `${(x * 100).toFixed(2)}%`);

/** The summary table (one row per mode). */
export function summaryTable(rows: readonly ModeSummary[]): string[] {
  const extra = rows.some((r) => r.duplicates > 0 || r.deadLettered > 0);
  return renderTable([
    ['MODE', 'MODEL RUNS', 'RECORDS', 'RECORDS/S', 'P50', 'P99', 'MAX', 'ACCURACY', ...(extra ? ['DUPLICATES', 'DLQ'] : [])],
    ...rows.map((r) => [
      r.mode,
      r.where,
      formatCount(r.records),
      formatCount(r.recordsPerSecond),
      formatMs(r.p50Ms),
      formatMs(r.p99Ms),
      formatMs(r.maxMs),
      percent(r.accuracy),
      ...(extra ? [formatCount(r.duplicates), formatCount(r.deadLettered)] : []),
    ]),
  ]);
}

/** A rate that moves on at most once per `everyMs` (a fast redraw shows no noise), and from the start until then. */
function createRate(now: () => number, everyMs = 1000) {
  const start = now();
  let ref = { at: start, value: 0 };
  let rate = 0;
  return (value: number): number => {
    const t = now();
    if (t - ref.at >= everyMs) {
      rate = ((value - ref.value) * 1000) / (t - ref.at);
      ref = { at: t, value };
    } else if (ref.at === start) {
      rate = t > start ? ((value - ref.value) * 1000) / (t - start) : 0;
    }
    return rate;
  };
}

/** The live block: the replay's progress bar, then one line per mode (count, rate, recent percentiles, accuracy, the latest prediction). */
export function createLiveView(total: number, modes: ReadonlyMap<string, ModeScore>, now: () => number = () => performance.now()) {
  const sentRate = createRate(now);
  const rates = new Map([...modes.keys()].map((mode) => [mode, createRate(now)]));
  return (sent: number): string[] => {
    const lines = [
      `replay    ${progressBar(sent, total)}  ${formatCount(sent)}/${formatCount(total)} events  ${formatCount(sentRate(sent))}/s`,
    ];
    for (const [mode, s] of modes) {
      const rate = rates.get(mode)?.(s.scored) ?? 0;
      const seen = s.last;
      const example = seen
        ? `  last d-${seen.seq} → ${seen.predicted} (true ${seen.label}) ${seen.predicted === seen.label ? '✓' : '✗'}`
        : '';
      lines.push(
        `${mode.padEnd(9)} ${formatCount(s.scored).padStart(7)} predicted  ${formatCount(rate).padStart(6)}/s  ` +
          `p50 ${formatMs(s.latency.recentPercentile(50))}  p99 ${formatMs(s.latency.recentPercentile(99))}  ` +
          `accuracy ${percent(s.scored > 0 ? s.correct / s.scored : Number.NaN)}${example}`,
      );
    }
    return lines;
  };
}
