/**
 * A version's reference profile: what its training/validation data looked like, per input feature
 * and per output, stored as `reference-profile.json` in the version folder (so it is published
 * and synced with the version: `inflow models publish --reference-data`). The drift monitor
 * compares live windows of the prediction log with it (./drift-detector.ts).
 *
 * Numeric features keep decile bin edges and the reference's share per bin (PSI), and up to
 * {@link SAMPLE_SIZE} evenly spaced order statistics (the KS test's reference sample: exact when
 * the data has at most that many values); categorical ones keep their category counts.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { InflowError } from '../errors.ts';
import { binProportions, quantile, quantileEdges, sortedFinite } from './drift-stats.ts';

/** The file name inside a version folder. */
export const PROFILE_FILE = 'reference-profile.json';
/** Order statistics kept per numeric feature for KS. */
export const SAMPLE_SIZE = 1000;
/** PSI bins (deciles). */
export const PSI_BINS = 10;
/** Distinct values above which a categorical feature is refused (a numeric column mislabelled as one). */
export const MAX_CATEGORIES = 1000;

const numericSchema = z.strictObject({
  kind: z.literal('numeric'),
  count: z.number().int().min(1),
  missing: z.number().int().min(0),
  min: z.number(),
  max: z.number(),
  mean: z.number(),
  /** Inner PSI bin edges; bin i is (edges[i-1], edges[i]]. */
  edges: z.array(z.number()),
  /** Share of the reference per bin (edges.length + 1 of them). */
  proportions: z.array(z.number().min(0).max(1)),
  /** Ascending order statistics (the KS reference sample). */
  sample: z.array(z.number()).min(1),
});
const categoricalSchema = z.strictObject({
  kind: z.literal('categorical'),
  count: z.number().int().min(1),
  missing: z.number().int().min(0),
  /** Category → rows. */
  frequencies: z.record(z.string(), z.number().int().min(0)),
});
export const featureProfileSchema = z.discriminatedUnion('kind', [numericSchema, categoricalSchema]);
export type FeatureProfile = z.output<typeof featureProfileSchema>;

export const referenceProfileSchema = z.strictObject({
  format: z.literal(1),
  /** Rows the profile was built from. */
  rows: z.number().int().min(1),
  /** Where the data came from (a file name, "validation split", …). */
  source: z.string(),
  createdAt: z.string(),
  inputs: z.record(z.string(), featureProfileSchema),
  outputs: z.record(z.string(), featureProfileSchema),
});
export type ReferenceProfile = z.output<typeof referenceProfileSchema>;

/** A value of one feature in one row: a number, a category, or missing. */
export type FeatureValue = number | string | boolean | null;
/** Columns by feature name. */
export type Columns = Map<string, FeatureValue[]>;

/**
 * Flattens one row's tensors (prediction-log JSON: name → nested arrays, a scalar for a
 * one-element row) into features: `name` for a scalar, `name[i]` (row-major) otherwise.
 */
export function flattenRow(tensors: Readonly<Record<string, unknown>>, into: Map<string, FeatureValue>): void {
  for (const [name, value] of Object.entries(tensors)) {
    if (!Array.isArray(value)) {
      into.set(name, scalar(value));
      continue;
    }
    const flat: unknown[] = (value as unknown[]).flat(20);
    if (flat.length === 1) into.set(name, scalar(flat[0]));
    else flat.forEach((v, i) => into.set(`${name}[${i}]`, scalar(v)));
  }
}

function scalar(v: unknown): FeatureValue {
  if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return v;
  return null;
}

/** Appends one flattened row to columns (a feature absent from the row counts as missing). */
export function appendRow(columns: Columns, row: ReadonlyMap<string, FeatureValue>, rowsBefore: number): void {
  for (const [name, value] of row) {
    let column = columns.get(name);
    if (!column) {
      column = new Array<FeatureValue>(rowsBefore).fill(null);
      columns.set(name, column);
    }
    column.push(value);
  }
  for (const column of columns.values()) if (column.length === rowsBefore) column.push(null);
}

/** Profiles one column: categorical when named in `categorical` or when any value is a string/boolean. */
export function profileColumn(name: string, values: readonly FeatureValue[], categorical: boolean): FeatureProfile {
  const present = values.filter((v): v is number | string | boolean => v !== null && !(typeof v === 'number' && !Number.isFinite(v)));
  const missing = values.length - present.length;
  if (present.length === 0) throw new InflowError('INVALID_ARGUMENT', `reference data: feature "${name}" has no values`);
  if (categorical || present.some((v) => typeof v !== 'number')) {
    const frequencies: Record<string, number> = {};
    for (const v of present) frequencies[String(v)] = (frequencies[String(v)] ?? 0) + 1;
    if (Object.keys(frequencies).length > MAX_CATEGORIES) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `reference data: feature "${name}" has more than ${MAX_CATEGORIES} categories; profile it as numeric`,
      );
    }
    return { kind: 'categorical', count: present.length, missing, frequencies };
  }
  const sorted = sortedFinite(present as number[]);
  const edges = quantileEdges(sorted, PSI_BINS);
  const sample =
    sorted.length <= SAMPLE_SIZE ? sorted : Array.from({ length: SAMPLE_SIZE }, (_, i) => quantile(sorted, (i + 0.5) / SAMPLE_SIZE));
  return {
    kind: 'numeric',
    count: sorted.length,
    missing,
    min: sorted[0] as number,
    max: sorted.at(-1) as number,
    mean: sorted.reduce((s, v) => s + v, 0) / sorted.length,
    edges,
    proportions: binProportions(edges, sorted),
    sample,
  };
}

/** One reference row as the prediction log writes it: tensors by name, nested arrays per row. */
export interface ReferenceRow {
  inputs: Readonly<Record<string, unknown>>;
  outputs?: Readonly<Record<string, unknown>>;
}

/** Options of {@link buildReferenceProfile}. */
export interface BuildProfileOptions {
  source: string;
  /** Features (flattened names, or tensor names for all their elements) to treat as categories. */
  categorical?: readonly string[];
  now?: () => number;
}

/** Builds a profile from reference rows (inputs, and outputs where given). */
export function buildReferenceProfile(rows: readonly ReferenceRow[], options: BuildProfileOptions): ReferenceProfile {
  if (rows.length === 0) throw new InflowError('INVALID_ARGUMENT', `reference data ${options.source}: no rows`);
  const inputs: Columns = new Map();
  const outputs: Columns = new Map();
  rows.forEach((r, i) => {
    const inRow = new Map<string, FeatureValue>();
    flattenRow(r.inputs, inRow);
    appendRow(inputs, inRow, i);
    const outRow = new Map<string, FeatureValue>();
    if (r.outputs) flattenRow(r.outputs, outRow);
    appendRow(outputs, outRow, i);
  });
  const cat = new Set(options.categorical ?? []);
  const isCategorical = (name: string): boolean => cat.has(name) || cat.has(name.replace(/\[\d+\]$/, ''));
  const profile = (columns: Columns): Record<string, FeatureProfile> =>
    Object.fromEntries(
      [...columns]
        .filter(([, values]) => values.some((v) => v !== null))
        .map(([name, values]) => [name, profileColumn(name, values, isCategorical(name))]),
    );
  return {
    format: 1,
    rows: rows.length,
    source: options.source,
    createdAt: new Date((options.now ?? Date.now)()).toISOString(),
    inputs: profile(inputs),
    outputs: profile(outputs),
  };
}

/**
 * Parses reference data: a JSON array (or JSON Lines) of `{inputs: {...}, outputs?: {...}}`
 * records, the shape of the prediction log's entries.
 */
export function parseReferenceData(text: string, source: string): ReferenceRow[] {
  const trimmed = text.trim();
  let raw: unknown[];
  try {
    raw = trimmed.startsWith('[')
      ? (JSON.parse(trimmed) as unknown[])
      : trimmed
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as unknown);
  } catch (error) {
    throw new InflowError('INVALID_ARGUMENT', `reference data ${source}: not JSON or JSON Lines (${(error as Error).message})`);
  }
  return raw.map((r, i) => {
    const row = r as { inputs?: unknown; outputs?: unknown };
    if (row === null || typeof row !== 'object' || row.inputs === null || typeof row.inputs !== 'object' || Array.isArray(row.inputs)) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `reference data ${source}: row ${i} has no "inputs" object; expected {"inputs": {"<tensor>": [...]}, "outputs": {...}} per row`,
      );
    }
    return {
      inputs: row.inputs as Record<string, unknown>,
      ...(row.outputs && typeof row.outputs === 'object' ? { outputs: row.outputs as Record<string, unknown> } : {}),
    };
  });
}

/**
 * Reads a version's profile from its folder. A version without one gets FAILED_PRECONDITION
 * saying drift is unavailable for it and how to add one.
 */
export async function loadReferenceProfile(versionDir: string, what: string): Promise<ReferenceProfile> {
  const path = join(versionDir, PROFILE_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new InflowError(
        'FAILED_PRECONDITION',
        `${what} has no reference profile (${PROFILE_FILE} in its version folder): drift is unavailable for it; ` +
          'publish it with --reference-data <file> to add one',
      );
    }
    throw error;
  }
  return parseReferenceProfile(text, path);
}

/** Validates profile JSON. */
export function parseReferenceProfile(text: string, source: string): ReferenceProfile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new InflowError('INVALID_ARGUMENT', `${source}: not JSON (${(error as Error).message})`);
  }
  const parsed = referenceProfileSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new InflowError('INVALID_ARGUMENT', `${source} is not a reference profile (format 1): ${issues}`);
  }
  return parsed.data;
}
