/**
 * Latency samples of a CLI run (demo, bench): every sample is kept (a Float64Array that doubles
 * when full: 8 bytes a sample, so a million samples are 8 MiB) for exact percentiles at the end,
 * and the last `window` samples for the live view.
 */

/** Records latencies (milliseconds) and answers percentiles. */
export interface LatencyRecorder {
  record(ms: number): void;
  readonly count: number;
  /** Nearest-rank percentile (0 < p ≤ 100) of every sample, ms; NaN when there is none. */
  percentile(p: number): number;
  /** The same over the most recent `window` samples. */
  recentPercentile(p: number): number;
  readonly max: number;
  readonly mean: number;
}

/** Nearest-rank percentile of sorted values; NaN for none. */
export function nearestRank(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

/** Creates a recorder; `window` is the size of the live view (default 1000 samples). */
export function createLatencyRecorder(window = 1000): LatencyRecorder {
  let all = new Float64Array(1024);
  let count = 0;
  let sum = 0;
  let max = Number.NaN;
  const recent = new Float64Array(window);
  let sortedAll: Float64Array | undefined;
  return {
    record(ms) {
      if (count === all.length) {
        const grown = new Float64Array(all.length * 2);
        grown.set(all);
        all = grown;
      }
      all[count] = ms;
      recent[count % window] = ms;
      count++;
      sum += ms;
      max = Number.isNaN(max) ? ms : Math.max(max, ms);
      sortedAll = undefined;
    },
    get count() {
      return count;
    },
    percentile(p) {
      sortedAll ??= all.slice(0, count).sort();
      return nearestRank(sortedAll, p);
    },
    recentPercentile(p) {
      return nearestRank(recent.slice(0, Math.min(count, window)).sort(), p);
    },
    get max() {
      return max;
    },
    get mean() {
      return count === 0 ? Number.NaN : sum / count;
    },
  };
}

/** `0.42 ms`, `12.3 ms`, `1.52 s`; `-` for NaN. */
export function formatMs(ms: number): string {
  if (Number.isNaN(ms)) return '-';
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}
