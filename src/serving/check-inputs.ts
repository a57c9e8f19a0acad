/**
 * Checks a request's inputs against the version's signature before it reaches the batcher, so
 * a bad request fails alone with a message that says what was expected (and never poisons a
 * batch shared with other callers).
 */
import { InflowError } from '../errors.ts';
import type { Signature } from '../runtime/servable.ts';
import type { Tensor } from '../tensor/tensor.ts';

const fmt = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

/** Throws INVALID_ARGUMENT for a missing, unknown or mis-typed input, or a bad requested output. */
export function checkInputs(
  model: string,
  signature: Signature,
  inputs: Readonly<Record<string, Tensor>>,
  outputs?: readonly string[],
): void {
  const expected = new Map(signature.inputs.map((s) => [s.name, s]));
  for (const name of Object.keys(inputs)) {
    if (!expected.has(name)) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `model "${model}" has no input "${name}"; its inputs are: ${[...expected.keys()].join(', ')}`,
      );
    }
  }
  let rows: number | undefined;
  for (const spec of signature.inputs) {
    const tensor = inputs[spec.name];
    if (!tensor)
      throw new InflowError('INVALID_ARGUMENT', `model "${model}" needs input "${spec.name}" (${spec.dtype} ${fmt(spec.shape)})`);
    const wrong = (): InflowError =>
      new InflowError(
        'INVALID_ARGUMENT',
        `input "${spec.name}" of model "${model}": expected ${spec.dtype} with shape ${fmt(spec.shape)}, got ${tensor.dtype} ${fmt(tensor.shape)}`,
      );
    if (tensor.dtype !== spec.dtype) throw wrong();
    if (spec.shape.length !== tensor.shape.length) throw wrong();
    for (const [i, dim] of spec.shape.entries()) if (dim >= 0 && tensor.shape[i] !== dim) throw wrong();
    if (tensor.shape.length > 0) {
      const n = tensor.shape[0] as number;
      if (rows !== undefined && n !== rows) {
        throw new InflowError(
          'INVALID_ARGUMENT',
          `inputs of model "${model}" disagree on the batch size (dim 0): ${rows} and ${n} ("${spec.name}")`,
        );
      }
      rows = n;
    }
  }
  if (outputs) {
    const names = new Set(signature.outputs.map((o) => o.name));
    for (const o of outputs) {
      if (!names.has(o))
        throw new InflowError('INVALID_ARGUMENT', `model "${model}" has no output "${o}"; its outputs are: ${[...names].join(', ')}`);
    }
  }
}
