/**
 * Batch-dimension operations for the dynamic batcher and servables: concatenate tensors along
 * dim 0, split them back, and check whether tensors can share a batch.
 */
import { InflowError } from '../errors.ts';
import { arrayTypeOf } from './dtype.ts';
import type { Tensor } from './tensor.ts';

/** Elements per batch row (product of dims after the first). */
function rowSize(shape: readonly number[]): number {
  let size = 1;
  for (let i = 1; i < shape.length; i++) size *= shape[i] as number;
  return size;
}

/** Key that is equal for tensors that can be concatenated along dim 0 (same dtype and non-batch dims). */
export function batchKey(tensor: Tensor): string {
  return `${tensor.dtype}[${tensor.shape.slice(1).join(',')}]`;
}

/** Concatenates tensors along dim 0. All must share dtype and the dims after the first. */
export function concatBatch(tensors: readonly Tensor[]): Tensor {
  const first = tensors[0];
  if (!first) throw new InflowError('INTERNAL', 'concatBatch of no tensors');
  if (tensors.length === 1) return first;
  if (first.shape.length === 0) throw new InflowError('INVALID_ARGUMENT', 'scalars have no batch dimension to concatenate');
  const key = batchKey(first);
  let rows = 0;
  for (const t of tensors) {
    if (batchKey(t) !== key) throw new InflowError('INVALID_ARGUMENT', `cannot batch ${batchKey(t)} with ${key}`);
    rows += t.shape[0] as number;
  }
  const shape = [rows, ...first.shape.slice(1)];
  if (first.dtype === 'BYTES') {
    return { dtype: 'BYTES', shape, data: tensors.flatMap((t) => t.data as Uint8Array[]) };
  }
  const out = new arrayTypeOf[first.dtype](rows * rowSize(first.shape));
  let offset = 0;
  for (const t of tensors) {
    (out as unknown as { set(a: ArrayLike<unknown>, o: number): void }).set(t.data, offset);
    offset += t.data.length;
  }
  return { dtype: first.dtype, shape, data: out };
}

/** Splits a tensor along dim 0 into parts of `rows[i]` rows each (views, no copy). */
export function splitBatch(tensor: Tensor, rows: readonly number[]): Tensor[] {
  const total = rows.reduce((a, b) => a + b, 0);
  if (tensor.shape.length === 0 || tensor.shape[0] !== total) {
    throw new InflowError('INTERNAL', `cannot split shape [${tensor.shape.join(', ')}] into ${total} rows`);
  }
  const size = rowSize(tensor.shape);
  const parts: Tensor[] = [];
  let start = 0;
  for (const n of rows) {
    const shape = [n, ...tensor.shape.slice(1)];
    const data = tensor.data.slice(start * size, (start + n) * size);
    // slice() copies typed arrays; subarray() would keep the whole batch alive per caller, so a copy of
    // each caller's rows is the memory-safe choice for long-lived responses.
    parts.push({ dtype: tensor.dtype, shape, data });
    start += n;
  }
  return parts;
}
