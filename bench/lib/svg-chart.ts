/**
 * A tiny SVG chart writer for the benchmark report (no plotting service, no dependency): line
 * charts with optional log axes (throughput vs clients, latency CDFs, rows/s vs batch size) and
 * grouped bar charts (records/s per system). Output is a standalone SVG document.
 */

export interface Series {
  readonly name: string;
  readonly points: ReadonlyArray<readonly [number, number]>;
}

export interface LineChart {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  readonly logX?: boolean;
  readonly logY?: boolean;
}

export interface BarChart {
  readonly title: string;
  readonly yLabel: string;
  /** Groups along x (e.g. guarantees); each has one bar per series name. */
  readonly groups: ReadonlyArray<{
    readonly name: string;
    readonly bars: ReadonlyArray<{ readonly name: string; readonly value: number }>;
  }>;
  readonly logY?: boolean;
}

const W = 860;
const H = 420;
const M = { left: 70, right: 330, top: 40, bottom: 50 };
const PW = W - M.left - M.right;
const PH = H - M.top - M.bottom;
const COLORS = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
  '#393b79',
  '#637939',
];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const color = (i: number): string => COLORS[i % COLORS.length] as string;

/** Short tick text: 1.2k, 15k, 3M, 0.5. */
export function tick(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  return `${+v.toPrecision(3)}`;
}

interface Scale {
  (v: number): number;
  ticks: number[];
}

function scale(min: number, max: number, log: boolean, pixels: number, invert: boolean): Scale {
  let lo = min;
  let hi = max;
  if (log) {
    lo = Math.log10(Math.max(min, 1e-9));
    hi = Math.log10(Math.max(max, 1e-9));
    lo = Math.floor(lo);
    hi = Math.ceil(hi);
  }
  if (hi === lo) hi = lo + 1;
  const f = ((v: number): number => {
    const x = log ? Math.log10(Math.max(v, 1e-9)) : v;
    const t = (x - lo) / (hi - lo);
    return invert ? pixels * (1 - t) : pixels * t;
  }) as Scale;
  if (log) {
    f.ticks = [];
    for (let e = lo; e <= hi; e++) f.ticks.push(10 ** e);
  } else {
    const step = niceStep((hi - lo) / 5);
    f.ticks = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) f.ticks.push(+v.toPrecision(12));
  }
  return f;
}

function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  const n = raw / p;
  return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * p;
}

function frame(title: string, xLabel: string, yLabel: string, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">
<rect width="${W}" height="${H}" fill="white"/>
<text x="${W / 2 - M.right / 2 + M.left / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>
<text x="${M.left + PW / 2}" y="${H - 10}" text-anchor="middle">${esc(xLabel)}</text>
<text transform="translate(16 ${M.top + PH / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>
<g transform="translate(${M.left} ${M.top})">
${body}
</g>
</svg>
`;
}

function legend(names: readonly string[]): string {
  return names
    .map(
      (n, i) =>
        `<rect x="${PW + 15}" y="${i * 18}" width="12" height="12" fill="${color(i)}"/><text x="${PW + 32}" y="${i * 18 + 10}">${esc(n)}</text>`,
    )
    .join('\n');
}

/** A line chart with one polyline (and dots) per series. */
export function lineChart(c: LineChart): string {
  const pts = c.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (pts.length === 0) return frame(c.title, c.xLabel, c.yLabel, '<text x="10" y="20">no data</text>');
  const xs = pts.map(([x]) => x);
  const ys = pts.map(([, y]) => y);
  const sx = scale(Math.min(...xs), Math.max(...xs), c.logX ?? false, PW, false);
  const sy = scale(c.logY ? Math.min(...ys) : Math.min(0, ...ys), Math.max(...ys), c.logY ?? false, PH, true);
  const grid = [
    ...sx.ticks.map(
      (t) =>
        `<line x1="${sx(t)}" y1="0" x2="${sx(t)}" y2="${PH}" stroke="#ddd"/><text x="${sx(t)}" y="${PH + 16}" text-anchor="middle">${tick(t)}</text>`,
    ),
    ...sy.ticks.map(
      (t) =>
        `<line x1="0" y1="${sy(t)}" x2="${PW}" y2="${sy(t)}" stroke="#ddd"/><text x="-6" y="${sy(t) + 4}" text-anchor="end">${tick(t)}</text>`,
    ),
  ].join('\n');
  const lines = c.series
    .map((s, i) => {
      const p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
      const d = p.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
      const dots = p.map(([x, y]) => `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${color(i)}"/>`).join('');
      return `<polyline points="${d}" fill="none" stroke="${color(i)}" stroke-width="2"/>${dots}`;
    })
    .join('\n');
  return frame(
    c.title,
    c.xLabel,
    c.yLabel,
    `${grid}\n<rect width="${PW}" height="${PH}" fill="none" stroke="#444"/>\n${lines}\n${legend(c.series.map((s) => s.name))}`,
  );
}

/** A grouped bar chart: one group per x position, one colored bar per series name. */
export function barChart(c: BarChart): string {
  const names = [...new Set(c.groups.flatMap((g) => g.bars.map((b) => b.name)))];
  const values = c.groups.flatMap((g) => g.bars.map((b) => b.value)).filter((v) => Number.isFinite(v) && v > 0);
  if (values.length === 0) return frame(c.title, '', c.yLabel, '<text x="10" y="20">no data</text>');
  const sy = scale(c.logY ? Math.min(...values) : 0, Math.max(...values), c.logY ?? false, PH, true);
  const gw = PW / c.groups.length;
  const bw = (gw * 0.8) / names.length;
  const grid = sy.ticks
    .map(
      (t) =>
        `<line x1="0" y1="${sy(t)}" x2="${PW}" y2="${sy(t)}" stroke="#ddd"/><text x="-6" y="${sy(t) + 4}" text-anchor="end">${tick(t)}</text>`,
    )
    .join('\n');
  const bars = c.groups
    .map((g, gi) => {
      const x0 = gi * gw + gw * 0.1;
      const rects = g.bars
        .map((b) => {
          const i = names.indexOf(b.name);
          if (!Number.isFinite(b.value) || b.value <= 0) return '';
          const y = sy(b.value);
          return `<rect x="${(x0 + i * bw).toFixed(1)}" y="${y.toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${(PH - y).toFixed(1)}" fill="${color(i)}"><title>${esc(b.name)}: ${tick(b.value)}</title></rect><text x="${(x0 + i * bw + bw / 2).toFixed(1)}" y="${(y - 3).toFixed(1)}" text-anchor="middle" font-size="9">${tick(b.value)}</text>`;
        })
        .join('');
      return `${rects}<text x="${gi * gw + gw / 2}" y="${PH + 16}" text-anchor="middle">${esc(g.name)}</text>`;
    })
    .join('\n');
  return frame(c.title, '', c.yLabel, `${grid}\n<rect width="${PW}" height="${PH}" fill="none" stroke="#444"/>\n${bars}\n${legend(names)}`);
}
