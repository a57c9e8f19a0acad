/** Plain-text tables for command output: a header row, columns padded, numbers right-aligned. */

const NUMERIC = /^[-+]?[\d,.]+(?:\s?(?:%|ms|s|\/s))?$/;

/**
 * Renders rows (the first is the header) as aligned lines, two spaces between columns. Cells
 * that look numeric (`1,234`, `0.42 ms`, `97.3%`) are right-aligned; the rest left-aligned.
 */
export function renderTable(rows: readonly (readonly string[])[]): string[] {
  const columns = Math.max(0, ...rows.map((r) => r.length));
  const widths = Array.from({ length: columns }, (_, i) => Math.max(0, ...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((row, r) =>
    Array.from({ length: columns }, (_, i) => {
      const cell = row[i] ?? '';
      const width = widths[i] ?? 0;
      return r > 0 && NUMERIC.test(cell) ? cell.padStart(width) : cell.padEnd(width);
    })
      .join('  ')
      .trimEnd(),
  );
}

/** `12345.6` → `12,346` (whole numbers with thousands separators). */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
