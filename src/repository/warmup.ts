/**
 * Warm-up before a version takes traffic (Triton gates READY on it): the first calls into a
 * model pay for allocations and JIT, and a version that cannot answer at all must fail here,
 * not on a user's request.
 */
import type { Servable, TensorSpec } from '../runtime/servable.ts';
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

/** Runs the servable `runs` times on generated inputs; throws what the servable throws. */
export async function warmUp(servable: Servable, rows: number, runs: number, signal?: AbortSignal): Promise<void> {
  if (runs === 0) return;
  const inputs = warmupInputs(servable.signature.inputs, rows);
  for (let i = 0; i < runs; i++) {
    signal?.throwIfAborted();
    await servable.run(inputs, signal ? { signal } : {});
  }
}
