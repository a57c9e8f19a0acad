/**
 * TF Serving REST `:predict` JSON ↔ tensors: row format (`instances`) and columnar format
 * (`inputs`), on both sides (server: decode request / encode response; client: encode request /
 * decode response). Element dtypes come from the model signature because JSON has none.
 *
 * Copies: decoding writes every element once into a pre-sized typed array (strings are UTF-8
 * encoded, `{"b64"}` decoded); encoding writes JSON text straight from the typed arrays.
 */
import { InflowError } from '../../errors.ts';
import type { DType } from '../dtype.ts';
import { elementCount, type Tensor, type TensorGate } from '../tensor.ts';
import {
  createJsonSink,
  elementWriter,
  fillFromJson,
  inferJsonShape,
  isB64Object,
  jsonSnippet,
  type JsonDialect,
  tensorFromNestedJson,
  writeNestedJson,
} from './json-tensor.ts';

/**
 * What the codec needs of a tensor spec: its name and dtype. Structurally a subset of runtime's
 * `TensorSpec` (declared here because tensor/ sits below runtime/ and may not import it).
 */
export interface TfTensorSpec {
  readonly name: string;
  readonly dtype: DType;
}

/** What the codec needs of a signature (a subset of runtime's `Signature`): the inputs in order. */
export interface TfSignature {
  readonly inputs: readonly TfTensorSpec[];
}

/** `instances` (row) or `inputs` (columnar): the response mirrors the request's format. */
export type TfJsonFormat = 'row' | 'columnar';

/** A decoded `:predict` request. */
export interface TfPredictRequest {
  /** `signature_name`, `serving_default` when absent. */
  signatureName: string;
  format: TfJsonFormat;
  /** One tensor per signature input, keyed by input alias, in signature order. */
  inputs: Record<string, Tensor>;
}

/** TF Serving's default signature key. */
export const DEFAULT_SIGNATURE_NAME = 'serving_default';

const tfTypeNames: Record<DType, string> = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'half',
  FP32: 'float',
  FP64: 'double',
  BYTES: 'string',
};

/** TF Serving's JSON dialect: TF type names in errors, `{"b64": …}` byte strings. */
export const tfDialect: JsonDialect = { typeName: (dtype) => tfTypeNames[dtype], b64: true };

function invalid(message: string): InflowError {
  return new InflowError('INVALID_ARGUMENT', message);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An object keyed by input names (a `{"b64"}` object is a value, not a named-input object). */
function isNamedObject(value: unknown): value is Record<string, unknown> {
  return isPlainObject(value) && !isB64Object(value);
}

function checkDtype(spec: TfTensorSpec): void {
  // TF Serving's JSON reader has no DT_HALF/DT_BFLOAT16 branch: it answers 501 Unimplemented.
  if (spec.dtype === 'FP16') {
    throw new InflowError('UNIMPLEMENTED', `input "${spec.name}": dtype half (FP16) has no TF Serving JSON encoding; use gRPC`);
  }
}

/**
 * `signature_name` of a `:predict` body (default `serving_default`), to pick the signature before
 * decoding. Throws INVALID_ARGUMENT when the body is not an object or the name not a string.
 */
export function tfSignatureName(body: unknown): string {
  if (!isPlainObject(body)) throw invalid(`request body must be a JSON object, got ${jsonSnippet(body)}`);
  const name = body.signature_name;
  if (name === undefined) return DEFAULT_SIGNATURE_NAME;
  if (typeof name !== 'string') throw invalid(`'signature_name' must be a string, got ${jsonSnippet(name)}`);
  return name;
}

/**
 * Decodes a parsed `:predict` body. `signature` is the model's signature, or a function that picks
 * it by `signature_name` (and throws NOT_FOUND/INVALID_ARGUMENT for an unknown one).
 * Errors are INVALID_ARGUMENT with TF Serving's messages where it has one; FP16 inputs are
 * UNIMPLEMENTED (TF Serving answers 501 too). `gate` sees each input's name, dtype and shape
 * (from the nesting) before any element is converted.
 */
export function decodeTfPredict(
  body: unknown,
  signature: TfSignature | ((signatureName: string) => TfSignature),
  gate?: TensorGate,
): TfPredictRequest {
  const signatureName = tfSignatureName(body);
  const request = body as Record<string, unknown>;
  const sig = typeof signature === 'function' ? signature(signatureName) : signature;
  const hasInstances = request.instances !== undefined;
  const hasInputs = request.inputs !== undefined;
  if (hasInstances && hasInputs) throw invalid("Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist");
  if (!hasInstances && !hasInputs) throw invalid("Missing 'inputs' or 'instances' key");
  for (const spec of sig.inputs) checkDtype(spec);
  if (hasInstances) return { signatureName, format: 'row', inputs: decodeRows(request.instances, sig.inputs, 'instances', gate) };
  return { signatureName, format: 'columnar', inputs: decodeColumns(request.inputs, sig.inputs, 'inputs', gate) };
}

function sortedNames(specs: readonly TfTensorSpec[]): string {
  return specs
    .map((s) => s.name)
    .sort()
    .join(',');
}

/** Row format: a list of instances, each a value (one input) or an object with every input's value. */
function decodeRows(instances: unknown, specs: readonly TfTensorSpec[], key: string, gate: TensorGate | undefined): Record<string, Tensor> {
  if (!Array.isArray(instances) || instances.length === 0) {
    throw invalid(`'${key}' must be a non-empty JSON list, got ${jsonSnippet(instances)}`);
  }
  const [only] = specs;
  if (specs.length === 1 && only && !isNamedObject(instances[0])) {
    return { [only.name]: tensorFromNestedJson(instances, only.dtype, only.name, tfDialect, gate) };
  }
  const names = new Set(specs.map((s) => s.name));
  for (const [i, instance] of instances.entries()) {
    const keys = isNamedObject(instance) ? Object.keys(instance) : undefined;
    if (!keys || keys.length !== names.size || !keys.every((k) => names.has(k))) {
      throw invalid(
        `Failed to process element: ${i} of '${key}' list. JSON object: ${jsonSnippet(instance)} keys must be equal to: ${sortedNames(specs)}`,
      );
    }
  }
  const rows = instances as Record<string, unknown>[];
  const inputs: Record<string, Tensor> = {};
  for (const spec of specs) {
    const elementShape = inferJsonShape(rows[0]?.[spec.name], spec.name);
    const shape = [rows.length, ...elementShape];
    gate?.(spec.name, spec.dtype, shape);
    const { data, put } = createJsonSink(spec.dtype, elementCount(shape), spec.name, tfDialect);
    let offset = 0;
    for (const row of rows) offset = fillFromJson(row[spec.name], elementShape, 0, offset, put, spec.name);
    inputs[spec.name] = { dtype: spec.dtype, shape, data };
  }
  return inputs;
}

/** Columnar format: one value/list (one input) or an object keyed by input name; shapes independent. */
function decodeColumns(value: unknown, specs: readonly TfTensorSpec[], key: string, gate: TensorGate | undefined): Record<string, Tensor> {
  const [only] = specs;
  if (!isNamedObject(value)) {
    if (specs.length !== 1 || !only) {
      throw invalid(
        `'${key}' holds a single value but the signature has ${specs.length} inputs (${sortedNames(specs)}); use an object keyed by input name`,
      );
    }
    return { [only.name]: tensorFromNestedJson(value, only.dtype, only.name, tfDialect, gate) };
  }
  const names = new Set(specs.map((s) => s.name));
  for (const name of Object.keys(value)) {
    if (!names.has(name)) throw invalid(`Unexpected named input: ${name} in '${key}' object; expected only: ${sortedNames(specs)}`);
  }
  const inputs: Record<string, Tensor> = {};
  for (const spec of specs) {
    if (!Object.hasOwn(value, spec.name)) throw invalid(`Missing named input: ${spec.name} in '${key}' object.`);
    inputs[spec.name] = tensorFromNestedJson(value[spec.name], spec.dtype, spec.name, tfDialect, gate);
  }
  return inputs;
}

/** Options of {@link encodeTfPredict}. */
export interface TfEncodeOptions {
  /** Whether BYTES tensor `name` is written as `{"b64": …}`. Default: TF's rule, names ending in `_bytes`. */
  bytesAsB64?: (name: string) => boolean;
}

const tfBytesRule = (name: string): boolean => name.endsWith('_bytes');

function writer(name: string, tensor: Tensor, options: TfEncodeOptions): ReturnType<typeof elementWriter> {
  return elementWriter(tensor, tensor.dtype === 'BYTES' && (options.bytesAsB64 ?? tfBytesRule)(name));
}

/**
 * Encodes outputs as the JSON text of a `:predict` response: `{"predictions": …}` for a row
 * request (batch dim split into instances; per-instance objects when several outputs),
 * `{"outputs": …}` for a columnar one. Floats as TF writes them (bare NaN/Infinity tokens, `.0`
 * on whole numbers). Returns text, ready to send: no JSON.stringify pass over a copy.
 */
export function encodeTfPredict(outputs: Readonly<Record<string, Tensor>>, format: TfJsonFormat, options: TfEncodeOptions = {}): string {
  return encodeTfBody(outputs, format, format === 'row' ? 'predictions' : 'outputs', options);
}

function encodeTfBody(tensors: Readonly<Record<string, Tensor>>, format: TfJsonFormat, key: string, options: TfEncodeOptions): string {
  const entries = Object.entries(tensors);
  const out: string[] = [`{${JSON.stringify(key)}:`];
  if (format === 'columnar') {
    const [first] = entries;
    if (entries.length === 1 && first) {
      writeNestedJson(out, writer(first[0], first[1], options), first[1].shape, 0, 0);
    } else {
      out.push('{');
      for (const [i, [name, tensor]] of entries.entries()) {
        out.push(`${i > 0 ? ',' : ''}${JSON.stringify(name)}:`);
        writeNestedJson(out, writer(name, tensor, options), tensor.shape, 0, 0);
      }
      out.push('}');
    }
    out.push('}');
    return out.join('');
  }
  let batch = -1;
  let batchOf = '';
  for (const [name, tensor] of entries) {
    if (tensor.shape.length === 0) throw invalid(`Tensor name: ${name} has no shape information `);
    const rows = tensor.shape[0] as number;
    if (batch >= 0 && rows !== batch) {
      throw invalid(`Tensor name: ${name} has inconsistent batch size: ${rows} expecting: ${batch} (from ${batchOf})`);
    }
    batch = rows;
    batchOf = name;
  }
  const [first] = entries;
  if (entries.length === 1 && first) {
    // One output: the batch dimension becomes the list of instances, i.e. the tensor as a nested list.
    writeNestedJson(out, writer(first[0], first[1], options), first[1].shape, 0, 0);
  } else {
    const columns = entries.map(([name, tensor]) => ({
      prefix: JSON.stringify(name),
      write: writer(name, tensor, options),
      rowShape: tensor.shape.slice(1),
      rowSize: elementCount(tensor.shape.slice(1)),
    }));
    out.push('[');
    for (let row = 0; row < Math.max(batch, 0); row++) {
      out.push(row > 0 ? ',{' : '{');
      for (const [i, c] of columns.entries()) {
        out.push(`${i > 0 ? ',' : ''}${c.prefix}:`);
        writeNestedJson(out, c.write, c.rowShape, 0, row * c.rowSize);
      }
      out.push('}');
    }
    out.push(']');
  }
  out.push('}');
  return out.join('');
}

/**
 * Client side: encodes inputs as the JSON text of a `:predict` request in `format`
 * (`{"instances": …}` or `{"inputs": …}`), with `signature_name` when given. Row format needs
 * every input to share dim 0.
 */
export function encodeTfPredictRequest(
  inputs: Readonly<Record<string, Tensor>>,
  format: TfJsonFormat,
  options: TfEncodeOptions & { signatureName?: string } = {},
): string {
  const body = encodeTfBody(inputs, format, format === 'row' ? 'instances' : 'inputs', options);
  if (options.signatureName === undefined) return body;
  return `{"signature_name":${JSON.stringify(options.signatureName)},${body.slice(1)}`;
}

/**
 * Client side: decodes a parsed `:predict` response (`predictions` or `outputs`) into tensors,
 * with dtypes from `outputs` (the signature's outputs, or those of an output filter). When the
 * response holds objects keyed by output name, only the named outputs present are decoded; a
 * bare value/list needs exactly one spec. A `{"error": …}` body is the caller's to handle first.
 */
export function decodeTfPredictResponse(body: unknown, outputs: readonly TfTensorSpec[]): Record<string, Tensor> {
  if (!isPlainObject(body)) throw invalid(`response body must be a JSON object, got ${jsonSnippet(body)}`);
  const present = (named: unknown): readonly TfTensorSpec[] =>
    isNamedObject(named) && outputs.length > 1 ? outputs.filter((s) => Object.hasOwn(named, s.name)) : outputs;
  if (body.predictions !== undefined) {
    const specs = Array.isArray(body.predictions) ? present(body.predictions[0]) : outputs;
    for (const spec of specs) checkDtype(spec);
    return decodeRows(body.predictions, specs, 'predictions', undefined);
  }
  if (body.outputs !== undefined) {
    const specs = present(body.outputs);
    for (const spec of specs) checkDtype(spec);
    return decodeColumns(body.outputs, specs, 'outputs', undefined);
  }
  throw invalid("response has neither 'predictions' nor 'outputs'");
}
