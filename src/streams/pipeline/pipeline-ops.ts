/**
 * The functions behind the declarative operators of a pipeline file: field predicates (filter,
 * split), select and rename of fields, and the tensor-valued form of predict
 * (a record value that is one tensor in, one output tensor out).
 */
import { InflowError } from '../../errors.ts';
import type { DType } from '../../tensor/dtype.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import { readField } from '../api/field-mapping.ts';
import type { PredicateConfig } from './pipeline-config.ts';

/** A predicate over record values: every condition given must hold. */
export function compilePredicate(p: PredicateConfig): (value: unknown) => boolean {
  const tests: ((v: unknown) => boolean)[] = [];
  if (p.exists !== undefined) tests.push((v) => (v !== undefined && v !== null) === p.exists);
  if (p.equals !== undefined) tests.push((v) => v === p.equals);
  if (p.in !== undefined) {
    const set = new Set<unknown>(p.in);
    tests.push((v) => set.has(v));
  }
  // A non-number (missing field, a string) never passes a comparison: no coercion surprises.
  const num = (cmp: (v: number) => boolean) => (v: unknown) => typeof v === 'number' && cmp(v);
  const { gt, gte, lt, lte } = p;
  if (gt !== undefined) tests.push(num((v) => v > gt));
  if (gte !== undefined) tests.push(num((v) => v >= gte));
  if (lt !== undefined) tests.push(num((v) => v < lt));
  if (lte !== undefined) tests.push(num((v) => v <= lte));
  const field = p.field;
  return (value) => {
    const v = readField(value, field);
    return tests.every((t) => t(v));
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function requireObject(value: unknown, op: string): Record<string, unknown> {
  if (!isObject(value)) {
    const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
    throw new InflowError('INVALID_ARGUMENT', `${op}: the record value is ${got}; expected a JSON object`);
  }
  return value;
}

/** Sets a dotted path in `target` (a fresh object), creating objects on the way; shares untouched parts. */
function setField(target: Record<string, unknown>, path: string, v: unknown): void {
  const parts = path.split('.');
  let cur = target;
  for (const part of parts.slice(0, -1)) {
    const next = cur[part];
    // Copy on write: the input record's nested objects are never mutated.
    const copy = isObject(next) ? { ...next } : {};
    cur[part] = copy;
    cur = copy;
  }
  cur[parts.at(-1) as string] = v;
}

/** Removes a dotted path from `target` (a fresh object), copying the objects on the way. */
function deleteField(target: Record<string, unknown>, path: string): void {
  const parts = path.split('.');
  let cur = target;
  for (const part of parts.slice(0, -1)) {
    const next = cur[part];
    if (!isObject(next)) return;
    const copy = { ...next };
    cur[part] = copy;
    cur = copy;
  }
  Reflect.deleteProperty(cur, parts.at(-1) as string);
}

/** `select`: a new object with only `fields` (dotted paths keep their nesting); missing fields are left out. */
export function compileSelect(fields: readonly string[]): (value: unknown) => Record<string, unknown> {
  return (value) => {
    const obj = requireObject(value, 'select');
    const out: Record<string, unknown> = {};
    for (const f of fields) {
      const v = readField(obj, f);
      if (v !== undefined) setField(out, f, v);
    }
    return out;
  };
}

/** `rename`: moves each `from` path to its `to` path (in the order given); other fields stay; missing ones are skipped. */
export function compileRename(fields: Readonly<Record<string, string>>): (value: unknown) => Record<string, unknown> {
  const moves = Object.entries(fields);
  return (value) => {
    const out = { ...requireObject(value, 'rename') };
    for (const [from, to] of moves) {
      const v = readField(out, from);
      if (v === undefined) continue;
      deleteField(out, from);
      setField(out, to, v);
    }
    return out;
  };
}

function isTensor(value: unknown): value is Tensor {
  return isObject(value) && typeof value.dtype === 'string' && Array.isArray(value.shape) && value.data !== undefined;
}

/**
 * Inputs of a predict on tensor values: the record value is one row of input `name` (no batch
 * dimension); `dtype` and `shape` (-1 = any size) are checked when given.
 */
export function tensorInputs(
  name: string,
  dtype: DType | undefined,
  shape: readonly number[] | undefined,
): (value: unknown) => Record<string, Tensor> {
  return (value) => {
    if (!isTensor(value)) throw new InflowError('INVALID_ARGUMENT', `input "${name}": the record value is not a tensor; expected a tensor`);
    if (dtype !== undefined && value.dtype !== dtype) {
      throw new InflowError('INVALID_ARGUMENT', `input "${name}": expected ${dtype}, got ${value.dtype} [${value.shape.join(', ')}]`);
    }
    if (shape !== undefined && (shape.length !== value.shape.length || shape.some((d, i) => d !== -1 && d !== value.shape[i]))) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `input "${name}": expected row shape [${shape.join(', ')}], got ${value.dtype} [${value.shape.join(', ')}]`,
      );
    }
    return { [name]: { dtype: value.dtype, shape: [1, ...value.shape], data: value.data } };
  };
}

/** The output value of a predict with `outputTensor`: that output's row, batch dimension dropped. */
export function tensorOutput(name: string): (outputs: Readonly<Record<string, Tensor>>) => Tensor {
  return (outputs) => {
    const t = outputs[name];
    if (!t) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `outputTensor: the model returned no tensor "${name}" (got ${Object.keys(outputs).join(', ')})`,
      );
    }
    return { dtype: t.dtype, shape: t.shape.slice(1), data: t.data };
  };
}
