/**
 * Declarative features for the field mapping of `predict` (and pipeline YAML): a delimited
 * string of numbers (`"0.12,0.98,…"`) read as a list, a model input assembled from several
 * fields in a declared order (record fields, aggregates, joined table fields — all are fields of
 * the value by the time predict sees it), defaults for missing fields (a left join without a
 * row) and one-hot encoding of categories. Nothing here needs JavaScript from the user.
 */
import { InflowError } from '../../errors.ts';

/** A category one-hot encodes against a list of strings, numbers or booleans. */
export type Category = string | number | boolean;

/** One part of an assembled model input. */
export interface FeaturePart {
  /** Dotted path into the record value. */
  readonly field: string;
  /** The field is a string of numbers separated by this (`","`, `" "`, `";"`); whitespace around numbers is ignored. */
  readonly delimiter?: string;
  /** Used when the field is missing or null (a left join without a row); without it a missing field is an error. */
  readonly default?: number | readonly number[];
  /**
   * The field is a category: it becomes one element per listed category, 1 where it equals the
   * value, else 0 (a value not listed gives all zeros, like scikit-learn's handle_unknown=ignore).
   */
  readonly oneHot?: readonly Category[];
}

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$|^[+-]?Infinity$|^NaN$/;

/** Elements of one delimited string; an empty element or a non-number is an error naming it. */
export function parseDelimited(text: string, delimiter: string, where: string): number[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  // A whitespace delimiter splits on runs of whitespace ("1  2\t3"), like numpy.fromstring(sep=' ').
  const parts = delimiter.trim() === '' ? trimmed.split(/\s+/) : trimmed.split(delimiter);
  const out = new Array<number>(parts.length);
  for (let i = 0; i < parts.length; i++) {
    const p = (parts[i] as string).trim();
    // Number('') is 0 and Number('0x1f') is 31: decimal notation only (and NaN/Infinity, refused later unless allowNonFinite).
    if (!NUMBER.test(p)) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `${where}: element ${i} of the ${JSON.stringify(delimiter)}-delimited string is ${JSON.stringify(p)}; expected a number`,
      );
    }
    const v = Number(p);
    out[i] = v;
  }
  return out;
}

/** A string field read as numbers when a delimiter is given; other values as they are. */
export function readDelimited(raw: unknown, delimiter: string | undefined, where: string): unknown {
  if (delimiter === undefined || typeof raw !== 'string') return raw;
  return parseDelimited(raw, delimiter, where);
}

function describe(v: unknown): string {
  return typeof v === 'number' ? String(v) : (JSON.stringify(v) ?? String(v));
}

/** Normalizes the `fields:` list (a path or a part each). */
export function featureParts(fields: readonly (string | FeaturePart)[], name: string): FeaturePart[] {
  if (fields.length === 0) throw new InflowError('INVALID_CONFIG', `predict input "${name}": fields lists at least one field`);
  return fields.map((f) => {
    const part = typeof f === 'string' ? { field: f } : f;
    if (part.oneHot !== undefined && (part.oneHot.length === 0 || part.delimiter !== undefined)) {
      throw new InflowError(
        'INVALID_CONFIG',
        `predict input "${name}": field "${part.field}": oneHot lists at least one category and takes no delimiter`,
      );
    }
    return part;
  });
}

/**
 * Compiles assembly: the parts' values concatenated in order, each flattened (a number, a list, a
 * delimited string, a one-hot vector); `read` reads a dotted path from the value.
 */
export function compileAssembly(
  parts: readonly FeaturePart[],
  name: string,
  read: (value: unknown, path: string) => unknown,
  /** Strings are elements (a BYTES input), not a mistake. */
  strings = false,
): (value: unknown) => unknown[] {
  const steps = parts.map((part) => {
    const where = `input "${name}": field "${part.field}"`;
    const index = part.oneHot ? new Map<Category, number>(part.oneHot.map((c, i) => [c, i])) : undefined;
    const width = part.oneHot?.length ?? 0;
    return (value: unknown, out: unknown[]): void => {
      let raw = read(value, part.field);
      if (raw === undefined || raw === null) {
        if (part.default === undefined) {
          throw new InflowError('INVALID_ARGUMENT', `${where} is missing from the record; expected a value (or give the field a default)`);
        }
        raw = part.default;
      } else if (index) {
        const hot = new Array<number>(width).fill(0);
        const i = typeof raw === 'string' || typeof raw === 'number' || typeof raw === 'boolean' ? index.get(raw) : undefined;
        if (i !== undefined) hot[i] = 1;
        else if (typeof raw === 'object') {
          throw new InflowError('INVALID_ARGUMENT', `${where} is ${describe(raw)}; expected a category (a string, number or boolean)`);
        }
        for (const h of hot) out.push(h);
        return;
      }
      raw = readDelimited(raw, part.delimiter, where);
      if (Array.isArray(raw)) {
        for (const v of raw.flat(Infinity)) out.push(v);
      } else if (typeof raw === 'string' && !strings) {
        throw new InflowError('INVALID_ARGUMENT', `${where} is the string ${describe(raw)}; expected a number (or give a delimiter)`);
      } else {
        out.push(raw);
      }
    };
  });
  return (value) => {
    const out: unknown[] = [];
    for (const step of steps) step(value, out);
    return out;
  };
}

/**
 * The row shape for `n` elements: `shape` with its one `-1` (if any) inferred from `n`, as
 * numpy's reshape does; undefined when `n` does not fit.
 */
export function inferRowShape(shape: readonly number[], n: number): number[] | undefined {
  const free = shape.indexOf(-1);
  if (free === -1) return [...shape];
  const known = shape.reduce((a, d) => (d === -1 ? a : a * d), 1);
  if (known === 0 || n % known !== 0) return undefined;
  const out = [...shape];
  out[free] = n / known;
  return out;
}
