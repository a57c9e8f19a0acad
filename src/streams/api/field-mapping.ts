/**
 * Declarative mapping between record values (JSON-like objects) and tensors, for the `predict`
 * operator and pipeline YAML: which field feeds which model input (dtype, row shape), and which
 * output lands in which field of the output value. One record is one batch row.
 */
import { InflowError } from '../../errors.ts';
import { arrayTypeOf, type DType, type NumericArray } from '../../tensor/dtype.ts';
import { elementCount, MAX_RANK, type Tensor } from '../../tensor/tensor.ts';
import { compileAssembly, type FeaturePart, featureParts, inferRowShape, readDelimited } from './feature-assembly.ts';

export type { FeaturePart } from './feature-assembly.ts';

/** Where a model input comes from: one `field`, or several `fields` assembled in order. */
export interface InputField {
  /** Dotted path into the record value (`features`, `reading.pixels`); `.` is the value itself. */
  readonly field?: string;
  /**
   * Several fields concatenated in this order into one row (`[amount, stats.count, customer.segment]`):
   * paths, or parts with their own delimiter, default or one-hot categories. Exactly one of
   * `field` and `fields`.
   */
  readonly fields?: readonly (string | FeaturePart)[];
  /** With `field`: the field is a string of numbers separated by this (`"0.12,0.98,…"` with `","`). */
  readonly delimiter?: string;
  /** Default FP32. */
  readonly dtype?: DType;
  /**
   * Row shape without the batch dimension; default: the flat length of the field (`[n]`), `[]` for
   * a number. Reshapes: 784 numbers with `[1, 784]` feed a model declaring `[-1, 1, 784]`. One
   * dimension may be -1: inferred from the element count, as numpy's reshape does.
   */
  readonly shape?: readonly number[];
  /** Accept NaN/±Infinity (some models treat NaN as missing); default false: a clear error instead. */
  readonly allowNonFinite?: boolean;
}

/** Where a model output goes. */
export interface OutputField {
  /** Output tensor name. */
  readonly tensor: string;
  /** `auto` (default): a number when the row has one element, else an array nested by the row shape. */
  readonly as?: 'auto' | 'array' | 'scalar' | 'argmax';
}

/** Reads a dotted path; `.` or '' is the value itself. */
export function readField(value: unknown, path: string): unknown {
  if (path === '.' || path === '') return value;
  let cur = value;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/**
 * Appends the leaves of nested lists to `out` in row-major order, without recursion: a record
 * nested 100 000 deep is the producer's mistake (INVALID_ARGUMENT, a dead letter), not a stack
 * overflow (INTERNAL). Deeper than MAX_RANK levels cannot be a tensor.
 */
function flatten(value: unknown, out: unknown[], name: string, field: string): void {
  if (!Array.isArray(value)) {
    out.push(value);
    return;
  }
  const lists: unknown[][] = [value];
  const next: number[] = [0];
  while (lists.length > 0) {
    const depth = lists.length - 1;
    const list = lists[depth] as unknown[];
    const i = next[depth] as number;
    if (i === list.length) {
      lists.pop();
      next.pop();
      continue;
    }
    next[depth] = i + 1;
    const v = list[i];
    if (!Array.isArray(v)) {
      out.push(v);
    } else if (lists.length === MAX_RANK) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `input "${name}": field "${field}" has lists nested more than ${MAX_RANK} deep; a tensor has at most ${MAX_RANK} dimensions`,
      );
    } else {
      lists.push(v);
      next.push(0);
    }
  }
}

/**
 * The common case without intermediate arrays: a flat array of finite numbers of the expected
 * length into a float or 32-bit integer type (measured: half the mapping cost of the general
 * path for 784 floats). Anything else — nesting, wrong length, a bad element — returns
 * undefined and the general path builds the tensor or the precise error.
 */
function fastNumeric(raw: unknown, dtype: DType, spec: InputField): NumericArray | undefined {
  if (!Array.isArray(raw) || (dtype !== 'FP32' && dtype !== 'FP64' && dtype !== 'INT32')) return undefined;
  const n = raw.length;
  if (spec.shape && elementCount(spec.shape) !== n) return undefined;
  const data = new arrayTypeOf[dtype](n) as Float32Array | Float64Array | Int32Array;
  for (let i = 0; i < n; i++) {
    const v: unknown = raw[i];
    if (typeof v !== 'number' || (!spec.allowNonFinite && !Number.isFinite(v))) return undefined;
    data[i] = v;
  }
  return data;
}

/** Reads the raw value of one input: its field (a delimited string parsed), or its assembled fields. */
type RawReader = (value: unknown) => unknown;

function rawReader(name: string, spec: InputField): RawReader {
  if ((spec.field === undefined) === (spec.fields === undefined)) {
    throw new InflowError('INVALID_CONFIG', `predict input "${name}": give field (one field) or fields (several, in order), exactly one`);
  }
  if (spec.fields !== undefined) {
    if (spec.delimiter !== undefined) {
      throw new InflowError('INVALID_CONFIG', `predict input "${name}": with fields, give each field its own delimiter`);
    }
    return compileAssembly(featureParts(spec.fields, name), name, readField, spec.dtype === 'BYTES');
  }
  const field = spec.field as string;
  const where = `input "${name}": field "${field}"`;
  const delimiter = spec.delimiter;
  if (delimiter === '') throw new InflowError('INVALID_CONFIG', `predict ${where}: delimiter is empty; expected e.g. ","`);
  return (value) => {
    const raw = readField(value, field);
    if (raw === undefined || raw === null) {
      throw new InflowError('INVALID_ARGUMENT', `${where} is missing from the record; expected a number or an array of numbers`);
    }
    if (typeof raw === 'string' && delimiter === undefined && spec.dtype !== 'BYTES') {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `${where} is a string (${JSON.stringify(raw.length > 40 ? `${raw.slice(0, 40)}…` : raw)}); expected a number or an array of numbers (for a delimited string of numbers give delimiter, e.g. ",")`,
      );
    }
    return readDelimited(raw, delimiter, where);
  };
}

/**
 * A Float32Array / Float64Array value (Avro arrays of float/double decode into them) as the
 * input's data: the array itself when the dtype matches (no copy), else converted; undefined
 * when the length or an element is wrong (the general path then says what).
 */
function typedNumeric(raw: Float32Array | Float64Array, dtype: DType, spec: InputField): NumericArray | undefined {
  if (dtype === 'BYTES' || dtype === 'FP16' || dtype === 'INT64' || dtype === 'UINT64') return undefined;
  if (spec.shape && (spec.shape.includes(-1) || elementCount(spec.shape) !== raw.length)) return undefined;
  if (!spec.allowNonFinite) {
    // Indexed: a for-of over a typed array subclass runs the iterator protocol per element (measured ~20 µs for 784).
    for (let i = 0, n = raw.length; i < n; i++) if (!Number.isFinite(raw[i])) return undefined;
  }
  // A subclass (JSON's typed arrays, src/kafka/json-numeric.ts) becomes a plain view of the same
  // memory: tensors hold exactly Float32Array/Float64Array (dataFits, and onnxruntime maps types by constructor).
  if (dtype === 'FP32' && raw instanceof Float32Array)
    return raw.constructor === Float32Array ? raw : new Float32Array(raw.buffer, raw.byteOffset, raw.length);
  if (dtype === 'FP64' && raw instanceof Float64Array)
    return raw.constructor === Float64Array ? raw : new Float64Array(raw.buffer, raw.byteOffset, raw.length);
  return (arrayTypeOf[dtype] as unknown as { from(values: ArrayLike<number>): NumericArray }).from(raw);
}

/** Builds one model input tensor (batch of 1) from the input's raw value. */
function inputTensor(name: string, spec: InputField, value: unknown): Tensor {
  const dtype = spec.dtype ?? 'FP32';
  let raw = value;
  if (raw instanceof Float32Array || raw instanceof Float64Array) {
    const typed = typedNumeric(raw, dtype, spec);
    if (typed) return { dtype, shape: [1, ...(spec.shape ?? [typed.length])], data: typed };
    raw = Array.from(raw);
  }
  const what = spec.field !== undefined ? `field "${spec.field}"` : 'the assembled fields';
  const fast = spec.shape?.includes(-1) ? undefined : fastNumeric(raw, dtype, spec);
  if (fast) return { dtype, shape: [1, ...(spec.shape ?? [fast.length])], data: fast };
  const flat: unknown[] = [];
  flatten(raw, flat, name, spec.field ?? 'fields');
  const rowShape = spec.shape ? inferRowShape(spec.shape, flat.length) : Array.isArray(raw) ? [flat.length] : [];
  const n = rowShape ? elementCount(rowShape) : -1;
  if (!rowShape || flat.length !== n) {
    const expected = rowShape ? String(n) : 'a multiple of the known dimensions';
    throw new InflowError(
      'INVALID_ARGUMENT',
      `input "${name}": ${what} has ${flat.length} elements; expected ${expected} (row shape [${(spec.shape ?? rowShape ?? []).join(', ')}])`,
    );
  }
  if (dtype === 'BYTES') {
    return { dtype, shape: [1, ...rowShape], data: flat.map((v) => Buffer.from(String(v), 'utf8')) };
  }
  const data = new arrayTypeOf[dtype](n);
  const big = dtype === 'INT64' || dtype === 'UINT64';
  for (let i = 0; i < n; i++) {
    let v = flat[i];
    if (typeof v === 'boolean') v = v ? 1 : 0;
    if (typeof v !== 'number' || (!spec.allowNonFinite && !Number.isFinite(v))) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `input "${name}": element ${i} of ${what} is ${typeof v === 'number' ? String(v) : (JSON.stringify(v) ?? String(v))}; expected a finite number`,
      );
    }
    (data as unknown as Array<number | bigint>)[i] = big ? BigInt(Math.trunc(v)) : v;
  }
  return { dtype, shape: [1, ...rowShape], data };
}

/** Compiles an input mapping to a function value → model inputs (each with batch dim 1). */
export function compileInputMapping(mapping: Readonly<Record<string, InputField>>): (value: unknown) => Record<string, Tensor> {
  const entries = Object.entries(mapping);
  if (entries.length === 0) throw new InflowError('INVALID_CONFIG', 'predict inputs: map at least one model input to a record field');
  const readers = entries.map(([name, spec]) => [name, spec, rawReader(name, spec)] as const);
  for (const [name, spec] of entries) {
    if (spec.shape !== undefined && spec.shape.filter((d) => d === -1).length > 1) {
      throw new InflowError(
        'INVALID_CONFIG',
        `predict input "${name}": shape [${spec.shape.join(', ')}] has more than one -1; at most one dimension is inferred`,
      );
    }
    if (spec.dtype === 'FP16') {
      throw new InflowError(
        'INVALID_CONFIG',
        `predict input "${name}": FP16 cannot be filled from JSON numbers; use FP32 (or a custom inputs function)`,
      );
    }
  }
  return (value) => {
    const out: Record<string, Tensor> = {};
    for (const [name, spec, read] of readers) out[name] = inputTensor(name, spec, read(value));
    return out;
  };
}

function nest(values: unknown[], shape: readonly number[]): unknown {
  if (shape.length <= 1) return values;
  const [, ...rest] = shape;
  const size = elementCount(rest);
  const out: unknown[] = [];
  for (let i = 0; i < values.length; i += size) out.push(nest(values.slice(i, i + size), rest));
  return out;
}

/** JSON form of one output row (`tensor` has batch dim 1). */
export function rowToJson(tensor: Tensor, as: OutputField['as'] = 'auto'): unknown {
  const rowShape = tensor.shape.slice(1);
  const values: unknown[] =
    tensor.dtype === 'BYTES'
      ? (tensor.data as Uint8Array[]).map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8'))
      : Array.from(tensor.data as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? Number(v) : v));
  if (as === 'argmax') {
    let best = 0;
    for (let i = 1; i < values.length; i++) if ((values[i] as number) > (values[best] as number)) best = i;
    return best;
  }
  if (as === 'scalar' || (as === 'auto' && values.length === 1)) return values[0];
  return nest(values, rowShape);
}

/** Compiles an output mapping to a function (input value, outputs) → output value. */
export function compileOutputMapping(
  mapping: Readonly<Record<string, OutputField>>,
  keepInput = true,
): (value: unknown, outputs: Readonly<Record<string, Tensor>>) => Record<string, unknown> {
  const entries = Object.entries(mapping);
  return (value, outputs) => {
    const out: Record<string, unknown> =
      keepInput && value !== null && typeof value === 'object' && !Array.isArray(value) ? { ...value } : {};
    for (const [field, spec] of entries) {
      const t = outputs[spec.tensor];
      if (!t) {
        throw new InflowError(
          'INVALID_ARGUMENT',
          `output field "${field}": the model returned no tensor "${spec.tensor}" (got ${Object.keys(outputs).join(', ')})`,
        );
      }
      out[field] = rowToJson(t, spec.as);
    }
    return out;
  };
}
