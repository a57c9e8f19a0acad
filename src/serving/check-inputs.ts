/**
 * Checks a request's inputs against the version's signature before it reaches the batcher, so
 * a bad request fails alone with a message that says what was expected (and never poisons a
 * batch shared with other callers) — and, as a gate the transports' decoders call with each
 * input's dtype and shape before decoding any element, before a hostile request costs memory.
 */
import { InflowError } from '../errors.ts';
import type { Signature, TensorSpec } from '../runtime/servable.ts';
import type { DType } from '../tensor/dtype.ts';
import { elementCount, type Tensor, type TensorGate } from '../tensor/tensor.ts';

const fmt = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

/**
 * Element limits of one request (all its inputs together), checked before decoding. A BYTES
 * element is an object of its own in memory (~100 bytes however short), so it has its own, lower
 * bound: 8 M zero-length elements in a 32 MB binary body would otherwise cost ~700 MB.
 */
export interface DecodeLimits {
  /** Elements of every dtype. Default 16 Mi (64 MiB of FP32). */
  readonly maxElements: number;
  /** BYTES elements. Default 1 Mi. */
  readonly maxBytesElements: number;
}

export const DEFAULT_DECODE_LIMITS: DecodeLimits = { maxElements: 16 * 1024 * 1024, maxBytesElements: 1024 * 1024 };

function specFits(spec: TensorSpec, dtype: DType, shape: readonly number[]): boolean {
  return dtype === spec.dtype && spec.shape.length === shape.length && spec.shape.every((dim, i) => dim < 0 || shape[i] === dim);
}

function noSuchInput(model: string, signature: Signature, name: string): InflowError {
  return new InflowError(
    'INVALID_ARGUMENT',
    `model "${model}" has no input "${name}"; its inputs are: ${signature.inputs.map((s) => s.name).join(', ')}`,
  );
}

/** Throws INVALID_ARGUMENT when input `name` with `dtype` and `shape` does not fit `spec` (or there is no such input). */
function checkInputSpec(
  model: string,
  signature: Signature,
  spec: TensorSpec | undefined,
  name: string,
  dtype: DType,
  shape: readonly number[],
): void {
  if (!spec) throw noSuchInput(model, signature, name);
  if (!specFits(spec, dtype, shape)) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      `input "${spec.name}" of model "${model}": expected ${spec.dtype} with shape ${fmt(spec.shape)}, got ${dtype} ${fmt(shape)}`,
    );
  }
}

/** Throws INVALID_ARGUMENT for a missing, unknown or mis-typed input, or a bad requested output. */
export function checkInputs(
  model: string,
  signature: Signature,
  inputs: Readonly<Record<string, Tensor>>,
  outputs?: readonly string[],
): void {
  const expected = new Map(signature.inputs.map((s) => [s.name, s]));
  for (const name of Object.keys(inputs)) {
    if (!expected.has(name)) throw noSuchInput(model, signature, name);
  }
  let rows: number | undefined;
  for (const spec of signature.inputs) {
    const tensor = inputs[spec.name];
    if (!tensor)
      throw new InflowError('INVALID_ARGUMENT', `model "${model}" needs input "${spec.name}" (${spec.dtype} ${fmt(spec.shape)})`);
    checkInputSpec(model, signature, spec, spec.name, tensor.dtype, tensor.shape);
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

/**
 * The gate of one request to `model`: each input's dtype and shape must fit one of `signatures`
 * (the version the request names, or every version that could answer it: the full check after
 * routing still applies), and the request's elements stay within `limits`. Decoders call it
 * before decoding any element; it throws INVALID_ARGUMENT or PAYLOAD_TOO_LARGE. With no
 * signatures (no version ready) only the limits apply; the inference then says why.
 */
export function createInputGate(model: string, signatures: readonly Signature[], limits: DecodeLimits = DEFAULT_DECODE_LIMITS): TensorGate {
  let elements = 0;
  let bytesElements = 0;
  return (name, dtype, shape) => {
    // The signature first: its message (expected FP32 [-1, 64], got BYTES [10000000]) is the useful one.
    const fits = signatures.length === 0 || signatures.some((sig) => sig.inputs.some((s) => s.name === name && specFits(s, dtype, shape)));
    if (!fits) {
      const latest = signatures[0] as Signature;
      checkInputSpec(
        model,
        latest,
        latest.inputs.find((s) => s.name === name),
        name,
        dtype,
        shape,
      );
    }
    const count = elementCount(shape);
    elements += count;
    if (dtype === 'BYTES') bytesElements += count;
    if (elements > limits.maxElements) {
      throw new InflowError(
        'PAYLOAD_TOO_LARGE',
        `request to model "${model}" has more than ${limits.maxElements} tensor elements (input "${name}": ${dtype} ${fmt(shape)}); send a smaller batch`,
      );
    }
    if (bytesElements > limits.maxBytesElements) {
      throw new InflowError(
        'PAYLOAD_TOO_LARGE',
        `request to model "${model}" has more than ${limits.maxBytesElements} BYTES elements (input "${name}": ${fmt(shape)}); send a smaller batch`,
      );
    }
  };
}
