/**
 * The bundled labelled dataset the demo and `inflow bench` replay: the 450 held-out rows of
 * scikit-learn's load_digits (8×8 grey levels 0..16) with their true digits, written by
 * models/build.py (`digits_dataset`) to models/datasets/digits-test.json.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InflowError } from '../errors.ts';

/** Where the file lives in the package. */
export const DIGITS_DATASET = join(import.meta.dirname, '..', '..', 'models', 'datasets', 'digits-test.json');

/** Rows of pixels and their labels, index for index. */
export interface DigitsDataset {
  readonly source: string;
  readonly pixels: readonly (readonly number[])[];
  readonly labels: readonly number[];
}

/** Reads and checks the dataset (every row 64 numbers in 0..16, every label 0..9). */
export async function loadDigitsDataset(path: string = DIGITS_DATASET): Promise<DigitsDataset> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new InflowError(
      'FAILED_PRECONDITION',
      `cannot read the digits dataset ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); expected the file models/build.py writes (run models/build.sh)`,
      { cause: error },
    );
  }
  const data = value as { source?: unknown; pixels?: unknown; labels?: unknown };
  const pixels = data.pixels;
  const labels = data.labels;
  const okRow = (row: unknown): boolean =>
    Array.isArray(row) && row.length === 64 && row.every((v) => typeof v === 'number' && v >= 0 && v <= 16);
  if (
    !Array.isArray(pixels) ||
    !Array.isArray(labels) ||
    pixels.length === 0 ||
    pixels.length !== labels.length ||
    !pixels.every(okRow) ||
    !labels.every((l) => Number.isInteger(l) && l >= 0 && l <= 9)
  ) {
    throw new InflowError(
      'FAILED_PRECONDITION',
      `the digits dataset ${path} is malformed; expected {"pixels": [[64 numbers 0..16], …], "labels": [0..9, …]} of equal length`,
    );
  }
  return {
    source: typeof data.source === 'string' ? data.source : path,
    pixels: pixels as number[][],
    labels: labels as number[],
  };
}
