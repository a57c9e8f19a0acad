/**
 * Warm-up before a version takes traffic (Triton gates READY on it): the first calls into a
 * model pay for allocations and JIT, and a version that cannot answer at all must fail here,
 * not on a user's request.
 */
import { readFile } from 'node:fs/promises';
import { InflowError } from '../errors.ts';
import type { Servable, TensorSpec } from '../runtime/servable.ts';
import { decodeOipRequest } from '../tensor/codecs/oip-json.ts';
import { type Tensor, zeros } from '../tensor/tensor.ts';

/** Inputs of `rows` rows generated from the signature: dynamic dims become 1 (dim 0 becomes `rows`). */
export function warmupInputs(inputs: readonly TensorSpec[], rows: number): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const spec of inputs) {
    const shape = spec.shape.map((d, i) => (i === 0 ? rows : d < 0 ? 1 : d));
    out[spec.name] = zeros(spec.dtype, shape.length === 0 ? [] : shape);
  }
  return out;
}

/** Reads a warm-up request file (OIP JSON) into tensors; errors name the file. */
export async function readWarmupSamples(path: string): Promise<Record<string, Tensor>> {
  try {
    return decodeOipRequest(JSON.parse(await readFile(path, 'utf8'))).inputs;
  } catch (error) {
    const e = InflowError.from(error, 'INVALID_CONFIG');
    throw new InflowError('INVALID_CONFIG', `warm-up samples ${path}: ${e.message}`, { cause: error });
  }
}

/** Runs the servable `runs` times on `samples` or on generated inputs; throws what the servable throws. */
export async function warmUp(
  servable: Servable,
  rows: number,
  runs: number,
  samples?: Record<string, Tensor>,
  signal?: AbortSignal,
): Promise<void> {
  if (runs === 0) return;
  const inputs = samples ?? warmupInputs(servable.signature.inputs, rows);
  for (let i = 0; i < runs; i++) {
    signal?.throwIfAborted();
    await servable.run(inputs, signal ? { signal } : {});
  }
}
