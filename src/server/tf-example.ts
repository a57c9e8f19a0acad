/**
 * tf.Example inputs for TF Serving's Classify, Regress and MultiInference, shared by the REST and
 * gRPC transports. TF Serving feeds serialized Examples to a TF graph that parses them; inflow's
 * models take tensors, so this module defines how a list of Examples becomes the input tensors of
 * a signature (see src/server/README.md, "tf.Example inputs"):
 *
 * - Every model input must have the shape `[-1, d1, …]` with fixed `d1 …`: each Example gives one
 *   row of `F = d1·…` values (`F = 1` for `[-1]`).
 * - The row comes from the feature named like the input with exactly `F` values, or, when that
 *   feature is absent, from the `F` one-value features `<input>_0 … <input>_{F-1}`.
 * - Numeric inputs take `float_list` or `int64_list` (integer dtypes only integral values in
 *   range; BOOL only 0 and 1); BYTES inputs take `bytes_list`.
 * - Features no input names are ignored (as TF's parser ignores features outside its spec); a
 *   context Example's features apply to every Example that does not have them itself.
 */
import { InflowError } from '../errors.ts';
import type { TensorSpec } from '../runtime/servable.ts';
import { floatToHalfBits } from '../tensor/codecs/index.ts';
import { arrayTypeOf, type DType, type NumericArray } from '../tensor/dtype.ts';
import type { Tensor } from '../tensor/tensor.ts';

/** One tf.Feature: `float_list`, `int64_list` or `bytes_list` (int64 values exact, as bigint). */
export type TfFeature =
  | { readonly kind: 'float'; readonly values: readonly number[] }
  | { readonly kind: 'int64'; readonly values: readonly bigint[] }
  | { readonly kind: 'bytes'; readonly values: readonly Uint8Array[] };

/** One tf.Example: its features by name. */
export type TfExample = ReadonlyMap<string, TfFeature>;

/** The proto field name of a feature kind, for messages. */
export const featureListName = { float: 'float_list', int64: 'int64_list', bytes: 'bytes_list' } as const;

/** Most Examples one request may carry: a bound on the rows (and memory) a request can ask for. */
export const MAX_EXAMPLES = 1 << 16;

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/** Parses an int64 given as a decimal string or number (gRPC `longs: String`); INVALID_ARGUMENT when it is not one. */
export function parseInt64(value: string | number | bigint, where: string): bigint {
  let parsed: bigint | undefined;
  if (typeof value === 'bigint') parsed = value;
  else if (typeof value === 'number' ? Number.isInteger(value) : /^-?\d+$/.test(value)) parsed = BigInt(value);
  if (parsed === undefined || parsed < INT64_MIN || parsed > INT64_MAX) {
    throw new InflowError('INVALID_ARGUMENT', `${where}: ${String(value)} is not an int64; expected an integer in [-2^63, 2^63)`);
  }
  return parsed;
}

/**
 * Examples with a context merged in: a context feature applies to each Example that lacks a
 * feature of that name (TF concatenates the serialized context and Example, so the Example's own wins).
 */
export function withContext(examples: readonly TfExample[], context: TfExample | undefined): TfExample[] {
  if (context === undefined || context.size === 0) return [...examples];
  return examples.map((example) => new Map([...context, ...example]));
}

/** Checks the count of Examples: at least one, at most {@link MAX_EXAMPLES}. */
export function checkExampleCount(count: number): void {
  if (count === 0) throw new InflowError('INVALID_ARGUMENT', 'Input is empty; expected at least one tf.Example');
  if (count > MAX_EXAMPLES) {
    throw new InflowError('INVALID_ARGUMENT', `Input has ${count} tf.Examples; expected at most ${MAX_EXAMPLES} per request`);
  }
}

const describe = (spec: TensorSpec): string => `model input "${spec.name}" (${spec.dtype} [${spec.shape.join(', ')}])`;

/** Values per Example of an input (product of the dims after the batch); FAILED_PRECONDITION for shapes Examples cannot fill. */
export function exampleWidth(spec: TensorSpec): number {
  const [batch, ...rest] = spec.shape;
  if (batch === undefined || rest.some((d) => d < 0)) {
    throw new InflowError(
      'FAILED_PRECONDITION',
      `${describe(spec)} cannot be fed from tf.Examples; expected a batch dimension followed by fixed dimensions, e.g. [-1, 64]`,
    );
  }
  return rest.reduce((a, b) => a * b, 1);
}

/** Integer ranges of the integer dtypes that a typed array would otherwise wrap silently. */
const intRange: Partial<Record<DType, readonly [bigint, bigint]>> = {
  BOOL: [0n, 1n],
  UINT8: [0n, 255n],
  UINT16: [0n, 65535n],
  UINT32: [0n, 4294967295n],
  UINT64: [0n, (1n << 64n) - 1n],
  INT8: [-128n, 127n],
  INT16: [-32768n, 32767n],
  INT32: [-2147483648n, 2147483647n],
  INT64: [INT64_MIN, INT64_MAX],
};

/** Writes one Example's row of one input into `data` at `offset`. */
type RowWriter = (values: TfFeature, from: number, offset: number, where: string) => void;

function rowWriter(spec: TensorSpec, data: NumericArray | Uint8Array[]): RowWriter {
  const { dtype } = spec;
  const expected = dtype === 'BYTES' ? 'a bytes_list' : 'a float_list or int64_list';
  const kindError = (feature: TfFeature, where: string): InflowError =>
    new InflowError('INVALID_ARGUMENT', `${where} is a ${featureListName[feature.kind]}; expected ${expected} for ${describe(spec)}`);
  if (dtype === 'BYTES') {
    const out = data as Uint8Array[];
    return (feature, from, offset, where) => {
      if (feature.kind !== 'bytes') throw kindError(feature, where);
      out[offset] = feature.values[from] as Uint8Array;
    };
  }
  const range = intRange[dtype];
  if (range === undefined) {
    // Floating point: any number; FP16 is carried as its bits.
    const out = data as Float32Array | Float64Array | Uint16Array;
    const half = dtype === 'FP16';
    return (feature, from, offset, where) => {
      if (feature.kind === 'bytes') throw kindError(feature, where);
      const value = Number(feature.values[from]);
      out[offset] = half ? floatToHalfBits(value) : value;
    };
  }
  const [min, max] = range;
  const big = dtype === 'INT64' || dtype === 'UINT64';
  return (feature, from, offset, where) => {
    if (feature.kind === 'bytes') throw kindError(feature, where);
    const raw = feature.values[from] as number | bigint;
    if (typeof raw === 'number' && !Number.isInteger(raw)) {
      throw new InflowError('INVALID_ARGUMENT', `${where} has the value ${raw}; expected integers for ${describe(spec)}`);
    }
    const value = BigInt(raw);
    if (value < min || value > max) {
      throw new InflowError('INVALID_ARGUMENT', `${where} has the value ${value}; expected ${min} … ${max} for ${describe(spec)}`);
    }
    if (big) (data as BigInt64Array | BigUint64Array)[offset] = value;
    else (data as Exclude<NumericArray, BigInt64Array | BigUint64Array>)[offset] = Number(value);
  };
}

/** The input tensor of one signature input from the Examples (row i = Example i). */
function inputFromExamples(examples: readonly TfExample[], spec: TensorSpec): Tensor {
  const width = exampleWidth(spec);
  const count = examples.length * width;
  const data: NumericArray | Uint8Array[] = spec.dtype === 'BYTES' ? new Array<Uint8Array>(count) : new arrayTypeOf[spec.dtype](count);
  const write = rowWriter(spec, data);
  const { name } = spec;
  for (const [i, example] of examples.entries()) {
    const offset = i * width;
    const whole = example.get(name);
    if (whole !== undefined) {
      const where = `example ${i}: feature "${name}"`;
      if (whole.values.length !== width) {
        throw new InflowError('INVALID_ARGUMENT', `${where} has ${whole.values.length} values; expected ${width} for ${describe(spec)}`);
      }
      for (let j = 0; j < width; j++) write(whole, j, offset + j, where);
      continue;
    }
    const last = `${name}_${width - 1}`;
    if (!example.has(`${name}_0`)) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `example ${i}: no feature "${name}" (${width} values) nor "${name}_0" … "${last}" (one value each); expected one of these for ${describe(spec)}`,
      );
    }
    for (let j = 0; j < width; j++) {
      const key = `${name}_${j}`;
      const feature = example.get(key);
      const where = `example ${i}: feature "${key}"`;
      if (feature === undefined) {
        throw new InflowError(
          'INVALID_ARGUMENT',
          `${where} is missing; expected "${name}_0" … "${last}", one value each, for ${describe(spec)}`,
        );
      }
      if (feature.values.length !== 1) {
        throw new InflowError('INVALID_ARGUMENT', `${where} has ${feature.values.length} values; expected 1 for ${describe(spec)}`);
      }
      write(feature, 0, offset + j, where);
    }
  }
  return { dtype: spec.dtype, shape: [examples.length, ...spec.shape.slice(1)], data };
}

/**
 * The input tensors of a signature from a list of Examples (see the module doc for the mapping).
 * INVALID_ARGUMENT names the Example, the feature and what the input expected; FAILED_PRECONDITION
 * when an input's shape cannot be filled from Examples.
 */
export function examplesToInputs(examples: readonly TfExample[], inputs: readonly TensorSpec[]): Record<string, Tensor> {
  checkExampleCount(examples.length);
  const out: Record<string, Tensor> = {};
  for (const spec of inputs) out[spec.name] = inputFromExamples(examples, spec);
  return out;
}
