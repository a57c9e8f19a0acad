/**
 * The soak's verdict on one process's samples (from `memory-probe.ts`): per figure (RSS, live
 * heap after a full GC, open file descriptors) the value at warm-up end, at the end, the range
 * after warm-up as ± % of its median, the trend (least-squares slope, per hour) and a ten-point
 * curve over the whole run; "flat" when every sample after warm-up is within ±5 % of the median.
 */

/** One sample line: ms since the epoch, bytes, and a descriptor count. */
export type Sample = Record<string, number>;

export interface FigureSummary {
  readonly atWarmup: number;
  readonly atEnd: number;
  readonly median: number;
  /** Largest distance of a post-warm-up sample from the median, % of the median. */
  readonly spreadPct: number;
  /** Least-squares slope after warm-up, units per hour. */
  readonly slopePerHour: number;
  /** Ten values evenly spaced over the whole run (warm-up included). */
  readonly curve: readonly number[];
}

export interface SoakSummary {
  readonly samples: number;
  readonly figures: Readonly<Record<string, FigureSummary>>;
  readonly flat: boolean;
  /** Printable table. */
  readonly text: string;
}

/** Within this fraction of the median after warm-up counts as flat (issue 15 fault 8: ±5 %). */
export const FLAT_WITHIN = 0.05;
/**
 * Open descriptors also count the sockets of the requests in flight at the sampling instant
 * (tens, coming and going with the load), so they count as flat within ±5 % or ±16 descriptors.
 */
const FD_SLACK = 16;

const FIGURES = [
  ['rss', 'RSS', 1024 * 1024, 'MB'],
  ['heapUsed', 'heap (after GC)', 1024 * 1024, 'MB'],
  ['fds', 'open fds', 1, ''],
] as const;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function slope(ts: readonly number[], ys: readonly number[]): number {
  const n = ts.length;
  if (n < 2) return 0;
  const mt = ts.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += ((ts[i] as number) - mt) * ((ys[i] as number) - my);
    den += ((ts[i] as number) - mt) ** 2;
  }
  return den === 0 ? 0 : (num / den) * 3_600_000;
}

/** Summarizes `samples` with everything before `warmupEnd` (ms since the epoch) as warm-up. */
export function summarize(samples: readonly Sample[], warmupEnd: number): SoakSummary {
  const after = samples.filter((s) => (s.t as number) >= warmupEnd);
  const figures: Record<string, FigureSummary> = {};
  const lines: string[] = [];
  let flat = after.length >= 2;
  for (const [key, label, unit, suffix] of FIGURES) {
    const ys = after.map((s) => s[key] as number);
    const m = median(ys);
    const spread = ys.length === 0 || m === 0 ? 0 : Math.max(...ys.map((y) => Math.abs(y - m))) / m;
    const curve = Array.from({ length: 10 }, (_, i) => samples[Math.round((i * (samples.length - 1)) / 9)]?.[key] ?? Number.NaN);
    const f: FigureSummary = {
      atWarmup: ys[0] ?? Number.NaN,
      atEnd: ys.at(-1) ?? Number.NaN,
      median: m,
      spreadPct: spread * 100,
      slopePerHour: slope(
        after.map((s) => s.t as number),
        ys,
      ),
      curve,
    };
    figures[key] = f;
    flat &&= spread <= FLAT_WITHIN || (key === 'fds' && Math.max(...ys.map((y) => Math.abs(y - m))) <= FD_SLACK);
    const v = (x: number): string => `${(x / unit).toFixed(unit === 1 ? 0 : 1)}${suffix}`;
    lines.push(
      `  ${label.padEnd(16)} warm-up end ${v(f.atWarmup)}, end ${v(f.atEnd)}, median ${v(m)}, spread ±${f.spreadPct.toFixed(1)} %, ` +
        `trend ${f.slopePerHour >= 0 ? '+' : ''}${v(f.slopePerHour)}/h; curve ${curve.map(v).join(' ')}`,
    );
  }
  return {
    samples: samples.length,
    figures,
    flat,
    text: `  ${samples.length} samples, ${after.length} after warm-up\n${lines.join('\n')}`,
  };
}
