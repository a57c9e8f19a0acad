/**
 * The ops of the transform platform: at load each step is planned (its input types checked, its
 * output spec computed, its parameters expanded into typed arrays); per call it runs as a plain
 * loop over the whole batch. Numeric ops compute in float64 and write FP32.
 */
import { InflowError } from '../errors.ts';
import { arrayTypeOf, type NumericArray } from '../tensor/dtype.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { murmur3 } from './murmur3.ts';
import type { TensorSpec } from './servable.ts';
import { describeSpec } from './signature-check.ts';
import type { TransformStep } from './transform-config.ts';

/** Reports a configuration problem at `field` (relative to the step) and stops. */
export type Fail = (field: string, message: string) => never;

/** A step ready to run. */
export interface PlannedStep {
  output: TensorSpec;
  inputs: string[];
  apply(values: ReadonlyMap<string, Tensor>, where: string): Tensor;
}

const utf8 = new TextDecoder();

function isNumeric(spec: TensorSpec): boolean {
  return spec.dtype !== 'BYTES' && spec.dtype !== 'FP16';
}

/** Elements as numbers (64-bit integers converted; exact below 2^53). */
function numbers(t: Tensor): ArrayLike<number> {
  const data = t.data;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    const out = new Float64Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
    return out;
  }
  return data as ArrayLike<number>;
}

/** Features per row: the last dim of a rank ≥ 2 tensor (−1 when dynamic), 1 for rank ≤ 1. */
function featureCount(shape: readonly number[]): number {
  return shape.length >= 2 ? (shape.at(-1) as number) : 1;
}

/** Expands one-per-feature parameters into arrays of the same length (scalars → length 1). */
function perFeature(
  values: readonly (number | number[] | undefined)[],
  names: readonly string[],
  spec: TensorSpec,
  fail: Fail,
  fill: readonly number[],
): Float64Array[] {
  const features = featureCount(spec.shape);
  let length = 1;
  for (const [i, value] of values.entries()) {
    if (!Array.isArray(value)) continue;
    if (features !== value.length) {
      fail(
        names[i] as string,
        `has ${value.length} values; expected one per feature of ${describeSpec(spec)} (${features === -1 ? 'a fixed last dim' : features})`,
      );
    }
    length = value.length;
  }
  return values.map((value, i) => {
    if (value === undefined) return new Float64Array(length).fill(fill[i] as number);
    return Array.isArray(value) ? Float64Array.from(value) : new Float64Array(length).fill(value);
  });
}

function fp32(shape: readonly number[], data: Float32Array): Tensor {
  return { dtype: 'FP32', shape, data };
}

function numericInput(step: { input: string }, env: ReadonlyMap<string, TensorSpec>, fail: Fail): TensorSpec {
  const spec = env.get(step.input) as TensorSpec;
  if (!isNumeric(spec)) fail('input', `"${step.input}" is ${describeSpec(spec)}; expected a numeric tensor (not BYTES or FP16)`);
  return spec;
}

function affine(
  input: string,
  spec: TensorSpec,
  output: string,
  offset: Float64Array,
  scale: Float64Array,
  shift: Float64Array,
): PlannedStep {
  // out = (x − offset) · scale + shift, per feature.
  const n = offset.length;
  return {
    inputs: [input],
    output: { name: output, dtype: 'FP32', shape: spec.shape },
    apply: (values) => {
      const t = values.get(input) as Tensor;
      const x = numbers(t);
      const out = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) {
        const j = i % n;
        out[i] = ((x[i] as number) - (offset[j] as number)) * (scale[j] as number) + (shift[j] as number);
      }
      return fp32(t.shape, out);
    },
  };
}

function planNumeric(
  step: Extract<TransformStep, { input: string }>,
  env: ReadonlyMap<string, TensorSpec>,
  fail: Fail,
): PlannedStep | undefined {
  const { input, output } = step;
  switch (step.op) {
    case 'standardize': {
      const spec = numericInput(step, env, fail);
      const [mean, std] = perFeature([step.mean, step.std], ['mean', 'std'], spec, fail, [0, 1]) as [Float64Array, Float64Array];
      if (std.some((s) => !(s > 0))) fail('std', 'must be > 0 for every feature');
      return affine(
        input,
        spec,
        output,
        mean,
        std.map((s) => 1 / s),
        new Float64Array(mean.length),
      );
    }
    case 'min-max': {
      const spec = numericInput(step, env, fail);
      const [min, max] = perFeature([step.min, step.max], ['min', 'max'], spec, fail, [0, 1]) as [Float64Array, Float64Array];
      if (min.some((m, j) => m > (max[j] as number))) fail('max', 'must be ≥ min for every feature');
      const [lo, hi] = step.range;
      const scale = min.map((m, j) => ((max[j] as number) === m ? 0 : (hi - lo) / ((max[j] as number) - m)));
      return affine(input, spec, output, min, scale, new Float64Array(min.length).fill(lo));
    }
    case 'clip': {
      const spec = numericInput(step, env, fail);
      if (step.min === undefined && step.max === undefined) fail('min', 'clip needs min, max or both');
      const [lo, hi] = perFeature([step.min, step.max], ['min', 'max'], spec, fail, [-Infinity, Infinity]) as [Float64Array, Float64Array];
      return {
        inputs: [input],
        output: { name: output, dtype: 'FP32', shape: spec.shape },
        apply: (values) => {
          const t = values.get(input) as Tensor;
          const x = numbers(t);
          const n = lo.length;
          const out = new Float32Array(x.length);
          for (let i = 0; i < x.length; i++) out[i] = Math.min(Math.max(x[i] as number, lo[i % n] as number), hi[i % n] as number);
          return fp32(t.shape, out);
        },
      };
    }
    case 'log': {
      const spec = numericInput(step, env, fail);
      return {
        inputs: [input],
        output: { name: output, dtype: 'FP32', shape: spec.shape },
        apply: (values, where) => {
          const t = values.get(input) as Tensor;
          const x = numbers(t);
          const out = new Float32Array(x.length);
          for (let i = 0; i < x.length; i++) {
            const v = x[i] as number;
            if (!(v > -1))
              throw new InflowError('INVALID_ARGUMENT', `${where}: log of "${input}" got ${v} at element ${i}; expected values > -1`);
            out[i] = Math.log1p(v);
          }
          return fp32(t.shape, out);
        },
      };
    }
    case 'bucketize': {
      const spec = numericInput(step, env, fail);
      const bounds = Float64Array.from(step.boundaries);
      if (bounds.some((b, i) => i > 0 && !(b > (bounds[i - 1] as number)))) fail('boundaries', 'must be strictly ascending');
      return {
        inputs: [input],
        output: { name: output, dtype: 'INT64', shape: spec.shape },
        apply: (values) => {
          const t = values.get(input) as Tensor;
          const x = numbers(t);
          const out = new BigInt64Array(x.length);
          for (let i = 0; i < x.length; i++) {
            // Upper bound: the number of boundaries ≤ x.
            let lo = 0;
            let hi = bounds.length;
            while (lo < hi) {
              const mid = (lo + hi) >>> 1;
              if ((bounds[mid] as number) <= (x[i] as number)) lo = mid + 1;
              else hi = mid;
            }
            out[i] = BigInt(lo);
          }
          return { dtype: 'INT64', shape: t.shape, data: out };
        },
      };
    }
    case 'cast': {
      const spec = numericInput(step, env, fail);
      const to = step.to;
      return {
        inputs: [input],
        output: { name: output, dtype: to, shape: spec.shape },
        apply: (values, where) => {
          const t = values.get(input) as Tensor;
          const x = numbers(t);
          const out = new arrayTypeOf[to](x.length);
          for (let i = 0; i < x.length; i++) {
            const v = x[i] as number;
            if (to === 'FP32' || to === 'FP64') out[i] = v;
            else if (!Number.isFinite(v) || (to === 'INT32' && (v >= 2 ** 31 || v < -(2 ** 31)))) {
              throw new InflowError(
                'INVALID_ARGUMENT',
                `${where}: cast of "${input}" to ${to} got ${v} at element ${i}, which ${to} cannot hold`,
              );
            } else out[i] = to === 'INT64' ? BigInt(Math.trunc(v)) : Math.trunc(v);
          }
          return { dtype: to, shape: t.shape, data: out };
        },
      };
    }
    default:
      return undefined;
  }
}

function planCategorical(step: Extract<TransformStep, { input: string }>, env: ReadonlyMap<string, TensorSpec>, fail: Fail): PlannedStep {
  const { input, output } = step;
  const spec = env.get(input) as TensorSpec;
  switch (step.op) {
    case 'one-hot': {
      const strings = typeof step.categories[0] === 'string';
      if (strings ? spec.dtype !== 'BYTES' : !isNumeric(spec))
        fail('categories', `are ${strings ? 'strings' : 'numbers'} but "${input}" is ${describeSpec(spec)}`);
      if (!(spec.shape.length === 1 || (spec.shape.length === 2 && spec.shape[1] === 1)))
        fail('input', `"${input}" is ${describeSpec(spec)}; expected [-1] or [-1, 1]`);
      const index = new Map<string | number, number>(step.categories.map((c, i) => [c, i]));
      const width = index.size;
      const unknown = step.unknown;
      return {
        inputs: [input],
        output: { name: output, dtype: 'FP32', shape: [spec.shape[0] as number, width] },
        apply: (values, where) => {
          const t = values.get(input) as Tensor;
          const keys: ArrayLike<string | number> = strings ? (t.data as Uint8Array[]).map((b) => utf8.decode(b)) : numbers(t);
          const out = new Float32Array(keys.length * width);
          for (let i = 0; i < keys.length; i++) {
            const j = index.get(keys[i] as string | number);
            if (j !== undefined) out[i * width + j] = 1;
            else if (unknown === 'error')
              throw new InflowError(
                'INVALID_ARGUMENT',
                `${where}: one-hot of "${input}": ${JSON.stringify(keys[i])} is not one of its ${width} categories`,
              );
          }
          return fp32([keys.length, width], out);
        },
      };
    }
    case 'hash-bucket': {
      if (spec.dtype !== 'BYTES') fail('input', `"${input}" is ${describeSpec(spec)}; expected BYTES`);
      const { buckets, seed } = step;
      return {
        inputs: [input],
        output: { name: output, dtype: 'INT64', shape: spec.shape },
        apply: (values) => {
          const t = values.get(input) as Tensor;
          const items = t.data as Uint8Array[];
          const out = new BigInt64Array(items.length);
          for (let i = 0; i < items.length; i++) out[i] = BigInt(murmur3(items[i] as Uint8Array, seed) % buckets);
          return { dtype: 'INT64', shape: t.shape, data: out };
        },
      };
    }
    case 'select': {
      if (spec.shape.length !== 2) fail('input', `"${input}" is ${describeSpec(spec)}; expected [N, features]`);
      const features = spec.shape[1] as number;
      const columns = step.columns;
      const outOfRange = columns.find((c) => features !== -1 && c >= features);
      if (outOfRange !== undefined) fail('columns', `column ${outOfRange} is outside "${input}" (${features} columns)`);
      return {
        inputs: [input],
        output: { name: output, dtype: spec.dtype, shape: [spec.shape[0] as number, columns.length] },
        apply: (values, where) => {
          const t = values.get(input) as Tensor;
          const [rows = 0, width = 0] = t.shape;
          if (columns.some((c) => c >= width))
            throw new InflowError(
              'INVALID_ARGUMENT',
              `${where}: select from "${input}" needs ${Math.max(...columns) + 1} columns, got ${width}`,
            );
          const k = columns.length;
          const src = t.data;
          const out: NumericArray | Uint8Array[] =
            t.dtype === 'BYTES' ? new Array<Uint8Array>(rows * k) : new arrayTypeOf[t.dtype](rows * k);
          for (let r = 0; r < rows; r++) {
            for (let c = 0; c < k; c++) (out as unknown[])[r * k + c] = (src as ArrayLike<unknown>)[r * width + (columns[c] as number)];
          }
          return { dtype: t.dtype, shape: [rows, k], data: out };
        },
      };
    }
    default:
      return planNumeric(step, env, fail) ?? fail('op', `unknown op`);
  }
}

function planConcat(step: Extract<TransformStep, { op: 'concat' }>, env: ReadonlyMap<string, TensorSpec>, fail: Fail): PlannedStep {
  const specs = step.inputs.map((name, i) => {
    const spec = env.get(name) as TensorSpec;
    if (!isNumeric(spec) || spec.shape.length > 2)
      fail(`inputs.${i}`, `"${name}" is ${describeSpec(spec)}; expected a numeric [N] or [N, F] tensor`);
    return spec;
  });
  const widths = specs.map((s) => featureCount(s.shape));
  const total = widths.includes(-1) ? -1 : widths.reduce((a, b) => a + b, 0);
  const inputs = step.inputs;
  return {
    inputs,
    output: { name: step.output, dtype: 'FP32', shape: [-1, total] },
    apply: (values, where) => {
      const tensors = inputs.map((name) => values.get(name) as Tensor);
      const rows = tensors[0]?.shape[0] ?? 0;
      const actual = tensors.map((t) => (t.shape.length === 2 ? (t.shape[1] as number) : 1));
      const width = actual.reduce((a, b) => a + b, 0);
      const out = new Float32Array(rows * width);
      let offset = 0;
      for (const [k, t] of tensors.entries()) {
        if (t.shape[0] !== rows)
          throw new InflowError('INVALID_ARGUMENT', `${where}: concat: "${inputs[k]}" has ${t.shape[0]} rows, "${inputs[0]}" has ${rows}`);
        const x = numbers(t);
        const w = actual[k] as number;
        for (let r = 0; r < rows; r++) for (let c = 0; c < w; c++) out[r * width + offset + c] = x[r * w + c] as number;
        offset += w;
      }
      return fp32([rows, width], out);
    },
  };
}

/**
 * Plans one step against the tensors defined so far (`env`, which it does not change).
 * @throws via `fail` for a configuration problem.
 */
export function planStep(step: TransformStep, env: ReadonlyMap<string, TensorSpec>, fail: Fail): PlannedStep {
  const sources = step.op === 'concat' ? step.inputs.map((name, i) => [name, `inputs.${i}`] as const) : [[step.input, 'input'] as const];
  for (const [name, field] of sources) {
    if (!env.has(name))
      fail(
        field,
        `"${name}" is neither an input nor the output of an earlier step; expected one of ${[...env.keys()].map((n) => `"${n}"`).join(', ')}`,
      );
  }
  if (env.has(step.output)) fail('output', `"${step.output}" is already defined; every step writes a new name`);
  return step.op === 'concat' ? planConcat(step, env, fail) : planCategorical(step, env, fail);
}
