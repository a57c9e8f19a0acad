/**
 * Comparing a shadow version's outputs with the primary's: "agreement" is what a rollout
 * decision needs (same class per row for score matrices, same values otherwise), and the mean
 * absolute difference shows how far numeric outputs moved.
 */
import type { Tensor } from '../tensor/tensor.ts';

export interface ShadowComparison {
  agree: boolean;
  /** Mean |shadow − primary| over all numeric elements compared; undefined when none were numeric. */
  meanAbsDiff: number | undefined;
}

const TOLERANCE = 1e-6;

function argmaxRows(data: ArrayLike<number>, rows: number, cols: number): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if ((data[r * cols + c] as number) > (data[r * cols + best] as number)) best = c;
    out[r] = best;
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Compares the outputs both sides produced (outputs only one side has are ignored). */
export function compareOutputs(primary: Record<string, Tensor>, shadow: Record<string, Tensor>): ShadowComparison {
  let agree = true;
  let diffSum = 0;
  let diffCount = 0;
  for (const [name, p] of Object.entries(primary)) {
    const s = shadow[name];
    if (!s) continue;
    if (p.dtype !== s.dtype || p.shape.join() !== s.shape.join()) {
      agree = false;
      continue;
    }
    if (p.dtype === 'BYTES') {
      const pb = p.data as Uint8Array[];
      const sb = s.data as Uint8Array[];
      if (!pb.every((v, i) => sameBytes(v, sb[i] as Uint8Array))) agree = false;
      continue;
    }
    const pd = Array.from(p.data as ArrayLike<number | bigint>, Number);
    const sd = Array.from(s.data as ArrayLike<number | bigint>, Number);
    for (let i = 0; i < pd.length; i++) diffSum += Math.abs((pd[i] as number) - (sd[i] as number));
    diffCount += pd.length;
    const cols = p.shape.length === 2 ? (p.shape[1] as number) : 1;
    if (cols > 1 && p.dtype.startsWith('FP')) {
      const rows = p.shape[0] as number;
      const pa = argmaxRows(pd, rows, cols);
      const sa = argmaxRows(sd, rows, cols);
      if (!pa.every((v, i) => v === sa[i])) agree = false;
    } else if (!pd.every((v, i) => Math.abs(v - (sd[i] as number)) <= TOLERANCE * Math.max(1, Math.abs(v)))) {
      agree = false;
    }
  }
  return { agree, meanAbsDiff: diffCount === 0 ? undefined : diffSum / diffCount };
}
