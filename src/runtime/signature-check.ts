/**
 * Checks a call against a servable's signature before any work is done, so a bad request fails
 * with INVALID_ARGUMENT naming the input and what was expected, instead of deep inside a backend.
 */
import { InflowError } from '../errors.ts';
import { dataFits, elementCount, type Tensor } from '../tensor/tensor.ts';
import type { Signature } from './servable.ts';

/** `FP32 [-1, 4]`: how specs and tensors are written in messages. */
export function describeSpec(spec: { readonly dtype: string; readonly shape: readonly number[] }): string {
  return `${spec.dtype} [${spec.shape.join(', ')}]`;
}

/** Whether `shape` fits `spec` (`-1` matches any dim). An empty spec shape means "any shape": ONNX reports unknown ranks that way. */
export function shapeFits(spec: readonly number[], shape: readonly number[]): boolean {
  if (spec.length === 0) return true;
  if (spec.length !== shape.length) return false;
  return spec.every((dim, i) => dim === -1 || dim === shape[i]);
}

/**
 * Checks that `inputs` holds exactly the signature's inputs with matching dtypes and shapes and
 * consistent data; `where` prefixes messages (`model "iris" v1`).
 * @throws InflowError INVALID_ARGUMENT
 */
export function checkInputs(signature: Signature, inputs: Readonly<Record<string, Tensor>>, where: string): void {
  const expected = new Map(signature.inputs.map((spec) => [spec.name, spec]));
  for (const name of Object.keys(inputs)) {
    if (!expected.has(name)) {
      const names = signature.inputs.map((s) => `"${s.name}"`).join(', ');
      throw new InflowError('INVALID_ARGUMENT', `${where}: unknown input "${name}"; expected ${names}`);
    }
  }
  for (const spec of signature.inputs) {
    const tensor = inputs[spec.name];
    if (tensor === undefined)
      throw new InflowError('INVALID_ARGUMENT', `${where}: input "${spec.name}" is missing; expected ${describeSpec(spec)}`);
    if (tensor.dtype !== spec.dtype || !shapeFits(spec.shape, tensor.shape)) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `${where}: input "${spec.name}": expected ${describeSpec(spec)}, got ${describeSpec(tensor)}`,
      );
    }
    if (!dataFits(tensor.dtype, tensor.data) || tensor.data.length !== elementCount(tensor.shape)) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `${where}: input "${spec.name}": shape [${tensor.shape.join(', ')}] does not match its ${tensor.data.length} ${tensor.dtype} elements`,
      );
    }
  }
}

/**
 * The outputs a call wants: `requested` (checked against the signature) or all of them.
 * @throws InflowError INVALID_ARGUMENT for an output the servable does not have.
 */
export function selectOutputs(signature: Signature, requested: readonly string[] | undefined, where: string): string[] {
  const all = signature.outputs.map((s) => s.name);
  if (requested === undefined) return all;
  for (const name of requested) {
    if (!all.includes(name)) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `${where}: unknown output "${name}"; expected one of ${all.map((n) => `"${n}"`).join(', ')}`,
      );
    }
  }
  return [...new Set(requested)];
}

/** Rejects with CANCELLED when `signal` is already aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, where: string): void {
  if (signal?.aborted) throw new InflowError('CANCELLED', `${where}: the call was cancelled`, { cause: signal.reason });
}

/** A relative path inside a version folder: no absolute paths, no `..` escapes. */
export function isInsideRelative(path: string): boolean {
  if (path.length === 0 || path.startsWith('/') || path.startsWith('\\') || /^[a-zA-Z]:/.test(path)) return false;
  return !path.split(/[\\/]/).includes('..');
}
