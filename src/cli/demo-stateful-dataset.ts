/**
 * The card-payments dataset the stateful example replays: 1501 payments of 150 generated cards
 * (models/card_fraud.py, seed 3; the label rules are in its docstring), the merchants table, the
 * labels, and the reference — the pipeline's features computed offline with pandas and the
 * fraud probability Python onnxruntime gives on them — written by models/build.py to
 * models/datasets/card-payments.json. examples/pipelines/card-payments.yaml must reproduce the
 * features exactly (integer cents: counts, sums, maxima and gaps are exact, means too).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InflowError } from '../errors.ts';

/** Where the file lives in the package. */
export const CARD_PAYMENTS_DATASET = join(import.meta.dirname, '..', '..', 'models', 'datasets', 'card-payments.json');

/** One payment as produced to the input topic (key: `card`). */
export interface CardPayment {
  readonly id: string;
  readonly card: string;
  readonly merchant: string;
  /** Cents. */
  readonly amount: number;
  /** Event time, ms since the epoch. */
  readonly ts: number;
}

/** A merchants-table row (key: `merchant`). */
export interface Merchant {
  readonly merchant: string;
  readonly category: string;
  readonly risk: number;
}

/** The pandas reference of one payment's features and the model's answer on them. */
export interface CardReference {
  readonly n_10m: number;
  readonly sum_amount_10m: number;
  readonly mean_amount_10m: number;
  readonly max_amount_10m: number;
  /** ms; null: no earlier payment of the card in the window. */
  readonly gap_ms: number | null;
  /** Python onnxruntime on the reference features (FP32). */
  readonly fraud_probability: number;
}

export interface CardPaymentsDataset {
  readonly source: string;
  readonly windowMs: number;
  readonly events: readonly CardPayment[];
  readonly merchants: readonly Merchant[];
  /** 1 = fraud, index for index with `events`. */
  readonly labels: readonly number[];
  /** Index for index with `events`. */
  readonly reference: readonly CardReference[];
}

const COLUMNS = ['n_10m', 'sum_amount_10m', 'mean_amount_10m', 'max_amount_10m', 'gap_ms', 'fraud_probability'] as const;

function malformed(path: string, what: string): InflowError {
  return new InflowError(
    'FAILED_PRECONDITION',
    `the card-payments dataset ${path} is malformed (${what}); run models/build.sh to write it again`,
  );
}

/** Reads and checks the dataset. */
export async function loadCardPayments(path: string = CARD_PAYMENTS_DATASET): Promise<CardPaymentsDataset> {
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new InflowError(
      'FAILED_PRECONDITION',
      `cannot read the card-payments dataset ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); expected the file models/build.py writes (run models/build.sh)`,
      { cause: error },
    );
  }
  const { events, merchants, labels, reference, referenceColumns } = data;
  if (!Array.isArray(events) || events.length === 0) throw malformed(path, 'no events');
  if (!Array.isArray(labels) || labels.length !== events.length) throw malformed(path, 'labels do not match the events');
  if (!Array.isArray(reference) || reference.length !== events.length) throw malformed(path, 'reference rows do not match the events');
  if (!Array.isArray(merchants) || merchants.length === 0) throw malformed(path, 'no merchants');
  if (JSON.stringify(referenceColumns) !== JSON.stringify(COLUMNS)) throw malformed(path, `referenceColumns is not ${COLUMNS.join(', ')}`);
  for (const e of events as CardPayment[]) {
    if (typeof e?.id !== 'string' || typeof e.card !== 'string' || !Number.isInteger(e.amount) || !Number.isInteger(e.ts)) {
      throw malformed(path, `event ${JSON.stringify(e).slice(0, 80)}`);
    }
  }
  return {
    source: typeof data.source === 'string' ? data.source : path,
    windowMs: typeof data.window_ms === 'number' ? data.window_ms : 600_000,
    events: events as CardPayment[],
    merchants: merchants as Merchant[],
    labels: labels as number[],
    reference: (reference as unknown[][]).map(
      (row) => Object.fromEntries(COLUMNS.map((c, i) => [c, row[i] ?? null])) as unknown as CardReference,
    ),
  };
}

/** A scored output record's fields the comparison reads. */
export interface ScoredPayment {
  readonly id?: unknown;
  readonly n_10m?: unknown;
  readonly sum_amount_10m?: unknown;
  readonly mean_amount_10m?: unknown;
  readonly max_amount_10m?: unknown;
  readonly gap_ms?: unknown;
  readonly fraud?: unknown;
  readonly fraud_probability?: unknown;
}

/**
 * Differences between the pipeline's outputs and the reference, one line each (empty: equal):
 * every event scored exactly once, the features exactly equal, the fraud probability within
 * 1e-5 of Python onnxruntime's.
 */
export function compareWithReference(dataset: CardPaymentsDataset, outputs: readonly ScoredPayment[]): string[] {
  const problems: string[] = [];
  const byId = new Map<unknown, ScoredPayment[]>();
  for (const o of outputs) byId.set(o.id, [...(byId.get(o.id) ?? []), o]);
  for (const [i, e] of dataset.events.entries()) {
    const got = byId.get(e.id) ?? [];
    if (got.length !== 1) {
      problems.push(`${e.id}: ${got.length} outputs, expected 1`);
      continue;
    }
    const o = got[0] as ScoredPayment;
    const want = dataset.reference[i] as CardReference;
    for (const c of ['n_10m', 'sum_amount_10m', 'mean_amount_10m', 'max_amount_10m', 'gap_ms'] as const) {
      if (o[c] !== want[c]) problems.push(`${e.id}: ${c} is ${JSON.stringify(o[c])}, the pandas reference ${JSON.stringify(want[c])}`);
    }
    const p = o.fraud_probability;
    if (typeof p !== 'number' || Math.abs(p - want.fraud_probability) > 1e-5) {
      problems.push(`${e.id}: fraud_probability is ${JSON.stringify(p)}, Python onnxruntime gave ${want.fraud_probability}`);
    }
    if (o.fraud !== 0 && o.fraud !== 1) problems.push(`${e.id}: fraud is ${JSON.stringify(o.fraud)}, expected 0 or 1`);
  }
  const ids = new Set(dataset.events.map((e) => e.id));
  for (const o of outputs) if (!ids.has(o.id as string)) problems.push(`an output for an unknown payment ${JSON.stringify(o.id)}`);
  return problems;
}
