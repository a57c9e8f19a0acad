/**
 * Triton's classification extension: an output requested with the parameter
 * `classification: k` comes back as BYTES with the top `k` classes of each batch row, each
 * `"<score>:<index>"`, highest score first — as Triton writes them (`std::to_string(score) + ":" +
 * std::to_string(index)`, so floating-point scores have six decimals: "0.973251:4"). Triton adds
 * `":<label>"` from the output's label file; inflow's model config has no label files, so the
 * strings are `score:index`.
 *
 * Shape, as Triton's: for a batched output (its first dimension is the batch: -1 in the model's
 * metadata, Triton's `max_batch_size > 0`) each batch row's elements are the classes →
 * `[batch, min(k, classes)]`; an unbatched output is one row → `[min(k, n)]`.
 */
import { InflowError } from '../errors.ts';
import { halfBitsToFloat } from '../tensor/codecs/half.ts';
import type { Tensor } from '../tensor/tensor.ts';

const FLOATS: ReadonlySet<string> = new Set(['FP16', 'FP32', 'FP64']);

/**
 * The class count of a `classification` parameter (REST: a JSON number; gRPC: int64/uint64 as a
 * string or number), or undefined when absent. INVALID_ARGUMENT for anything but an integer ≥ 1.
 */
export function classificationCount(value: unknown, output: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  const count = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      `output "${output}": parameter 'classification' must be an integer ≥ 1 (the number of top classes), got ${JSON.stringify(value)}`,
    );
  }
  return count;
}

/**
 * The top-`k` classes of `tensor` (an output of scores) as Triton's BYTES strings; `batched` when
 * the first dimension is the batch (see the module comment).
 */
export function topKClassification(tensor: Tensor, k: number, output: string, batched: boolean): Tensor {
  if (tensor.dtype === 'BYTES' || tensor.dtype === 'BOOL') {
    throw new InflowError(
      'INVALID_ARGUMENT',
      `output "${output}" is ${tensor.dtype}: classification needs numeric scores (an output of class probabilities or logits)`,
    );
  }
  const data = tensor.data as ArrayLike<number | bigint>;
  const rows = batched && tensor.shape.length >= 1 ? (tensor.shape[0] as number) : 1;
  const classes = rows === 0 ? 0 : data.length / rows;
  const take = Math.min(k, classes);
  const float = FLOATS.has(tensor.dtype);
  const score = (i: number): number => {
    const v = data[i] as number | bigint;
    return tensor.dtype === 'FP16' ? halfBitsToFloat(v as number) : Number(v);
  };
  const text = (i: number): string => {
    if (!float) return String(data[i]);
    const v = score(i);
    // C's %f spelling of the non-finite values.
    return Number.isNaN(v) ? 'nan' : v === Infinity ? 'inf' : v === -Infinity ? '-inf' : v.toFixed(6);
  };
  const encoder = new TextEncoder();
  const out: Uint8Array[] = [];
  const order = Array.from({ length: classes }, (_, i) => i);
  for (let row = 0; row < rows; row++) {
    const base = row * classes;
    // Highest score first; NaN last; ties by the lower index (a stable order where Triton's sort is not).
    order.sort((a, b) => {
      const x = score(base + a);
      const y = score(base + b);
      if (Number.isNaN(x) || Number.isNaN(y)) return Number(Number.isNaN(x)) - Number(Number.isNaN(y)) || a - b;
      return y - x || a - b;
    });
    for (let j = 0; j < take; j++) {
      const index = order[j] as number;
      out.push(encoder.encode(`${text(base + index)}:${index}`));
    }
  }
  return { dtype: 'BYTES', shape: batched && tensor.shape.length >= 1 ? [rows, take] : [take], data: out };
}

/** Whether an output's first dimension is the batch: -1 first in the model's metadata. */
export function isBatchedOutput(outputs: readonly { name: string; shape: readonly number[] }[], name: string): boolean {
  return outputs.find((o) => o.name === name)?.shape[0] === -1;
}
