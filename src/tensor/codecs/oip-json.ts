/**
 * Open Inference Protocol (KServe v2) REST JSON ↔ tensors: inference requests and responses on
 * both sides, with flat or nested `data`, BYTES as UTF-8 strings. The binary tensor data
 * extension (oip-binary.ts) builds on this module: an input with `binary_data_size` takes its
 * bytes from the binary part of the body, in the order inputs appear in the JSON.
 *
 * Copies: JSON data is written once into a pre-sized typed array; binary data is viewed in place
 * where aligned (see raw-tensor.ts); responses are written as text straight from typed arrays.
 */
import { InflowError } from '../../errors.ts';
import { DType, isDType } from '../dtype.ts';
import { elementCount, type Tensor, type TensorGate } from '../tensor.ts';
import { createJsonSink, elementWriter, fillFromJson, jsonSnippet, type JsonDialect, writeNestedJson } from './json-tensor.ts';
import { decodeRawTensor, encodeRawTensor, rawByteLength } from './raw-tensor.ts';

/** `parameters` of a request, response, input or output (values are strings, numbers or booleans). */
export type OipParameters = Record<string, unknown>;

/** An entry of a request's `outputs` list. */
export interface OipRequestedOutput {
  name: string;
  parameters?: OipParameters;
}

/** A decoded inference request. */
export interface OipRequest {
  id?: string;
  parameters?: OipParameters;
  /** Tensors keyed by input name, in request order. */
  inputs: Record<string, Tensor>;
  /** Parameters of the inputs that had any (including `binary_data_size`). */
  inputParameters?: Record<string, OipParameters>;
  /** Requested outputs in request order; absent means all outputs. */
  outputs?: OipRequestedOutput[];
}

/** An inference response to encode (server) or a decoded one (client). */
export interface OipResponse {
  modelName: string;
  modelVersion?: string;
  id?: string;
  parameters?: OipParameters;
  /** Tensors keyed by output name, in response order. */
  outputs: Record<string, Tensor>;
  /** Extra parameters per output (e.g. what the server wants echoed); `binary_data_size` is added by the codec. */
  outputParameters?: Record<string, OipParameters>;
}

/** OIP's JSON dialect: datatype names in errors, no `{"b64"}` objects. */
export const oipDialect: JsonDialect = { typeName: (dtype) => dtype, b64: false };

const DATATYPES = Object.keys(DType).join(', ');

/** Binary part of a body being consumed in JSON order (the binary extension). */
export interface BinaryCursor {
  readonly bytes: Uint8Array;
  offset: number;
}

function invalid(message: string): InflowError {
  return new InflowError('INVALID_ARGUMENT', message);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The protocol's optional fields may be absent or `null` (KServe writes `"model_version": null,
 * "parameters": null`): both mean "not given".
 */
function optionalParameters(value: unknown, where: string): OipParameters | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isPlainObject(value)) throw invalid(`${where}: 'parameters' must be a JSON object, got ${jsonSnippet(value)}`);
  return value;
}

function optionalString(value: unknown, where: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalid(`${where} must be a string, got ${jsonSnippet(value)}`);
  return value;
}

/** The dtype named by an OIP `datatype`, or INVALID_ARGUMENT naming the tensor. */
export function oipDatatype(value: unknown, name: string): DType {
  if (isDType(value)) return value;
  throw invalid(`tensor "${name}": unknown datatype ${jsonSnippet(value)}; expected one of ${DATATYPES}`);
}

function parseShape(value: unknown, name: string): number[] {
  if (!Array.isArray(value) || !value.every((d) => typeof d === 'number')) {
    throw invalid(`tensor "${name}": 'shape' must be a list of non-negative integers, got ${jsonSnippet(value)}`);
  }
  const shape = value;
  try {
    elementCount(shape);
  } catch (error) {
    throw new InflowError('INVALID_ARGUMENT', `tensor "${name}": ${(error as Error).message}`, { cause: error });
  }
  return shape;
}

/**
 * Decodes one entry of an `inputs` (request) or `outputs` (response) list into a tensor. Its bytes
 * come from `binary` when its parameters hold `binary_data_size`, else from `data`; `gate` sees
 * its name, dtype and shape before any element is decoded.
 */
export function decodeOipTensor(
  entry: unknown,
  index: number,
  list: string,
  binary?: BinaryCursor,
  gate?: TensorGate,
): { name: string; tensor: Tensor; parameters?: OipParameters } {
  if (!isPlainObject(entry)) throw invalid(`${list}[${index}] must be a JSON object, got ${jsonSnippet(entry)}`);
  const { name } = entry;
  if (typeof name !== 'string' || name === '')
    throw invalid(`${list}[${index}]: 'name' must be a non-empty string, got ${jsonSnippet(name)}`);
  const dtype = oipDatatype(entry.datatype, name);
  const shape = parseShape(entry.shape, name);
  const parameters = optionalParameters(entry.parameters, `tensor "${name}"`);
  gate?.(name, dtype, shape);
  const size = parameters?.binary_data_size;
  if (size !== undefined) {
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw invalid(`tensor "${name}": 'binary_data_size' must be a non-negative integer, got ${jsonSnippet(size)}`);
    }
    if (entry.data !== undefined) throw invalid(`tensor "${name}": has both 'data' and 'binary_data_size'; expected one`);
    if (!binary) {
      throw invalid(
        `tensor "${name}": 'binary_data_size' is set but the body has no binary part (Inference-Header-Content-Length missing)`,
      );
    }
    if (binary.offset + size > binary.bytes.byteLength) {
      throw invalid(
        `tensor "${name}": 'binary_data_size' is ${size} but only ${binary.bytes.byteLength - binary.offset} bytes of binary data remain`,
      );
    }
    const bytes = binary.bytes.subarray(binary.offset, binary.offset + size);
    binary.offset += size;
    const tensor = decodeRawTensor(name, dtype, shape, bytes);
    return parameters ? { name, tensor, parameters } : { name, tensor };
  }
  if (entry.data === undefined) throw invalid(`tensor "${name}": 'data' is missing; expected a list of ${elementCount(shape)} elements`);
  const tensor = tensorFromData(entry.data, dtype, shape, name);
  return parameters ? { name, tensor, parameters } : { name, tensor };
}

/** `data` flat (row-major) or nested as the shape; a bare value for a one-element tensor. */
function tensorFromData(data: unknown, dtype: DType, shape: number[], name: string): Tensor {
  const count = elementCount(shape);
  const sink = createJsonSink(dtype, count, name, oipDialect);
  if (!Array.isArray(data)) {
    if (count !== 1) throw invalid(`tensor "${name}": 'data' must be a list of ${count} elements for shape [${shape.join(', ')}]`);
    sink.put(data, 0);
  } else if (data.length > 0 && Array.isArray(data[0])) {
    fillFromJson(data, shape, 0, 0, sink.put, name);
  } else {
    if (data.length !== count) {
      throw invalid(`tensor "${name}": shape [${shape.join(', ')}] holds ${count} elements but 'data' has ${data.length}`);
    }
    for (let i = 0; i < count; i++) sink.put(data[i], i);
  }
  return { dtype, shape, data: sink.data };
}

function checkName(seen: Record<string, unknown>, name: string, list: string): void {
  // "__proto__" would set the prototype of the plain object that holds the tensors.
  if (name === '__proto__') throw invalid(`${list}: the name "__proto__" is not allowed`);
  if (Object.hasOwn(seen, name)) throw invalid(`${list}: "${name}" appears twice; expected unique names`);
}

function decodeTensorList(
  value: unknown,
  list: string,
  binary?: BinaryCursor,
  gate?: TensorGate,
): { tensors: Record<string, Tensor>; parameters?: Record<string, OipParameters> } {
  if (!Array.isArray(value)) throw invalid(`'${list}' must be a JSON list, got ${jsonSnippet(value)}`);
  const tensors: Record<string, Tensor> = {};
  let parameters: Record<string, OipParameters> | undefined;
  for (const [i, entry] of value.entries()) {
    const decoded = decodeOipTensor(entry, i, list, binary, gate);
    checkName(tensors, decoded.name, list);
    tensors[decoded.name] = decoded.tensor;
    if (decoded.parameters) (parameters ??= {})[decoded.name] = decoded.parameters;
  }
  if (binary && binary.offset !== binary.bytes.byteLength) {
    throw invalid(
      `'${list}' used ${binary.offset} bytes of binary data but the body has ${binary.bytes.byteLength}; expected them to match`,
    );
  }
  return parameters ? { tensors, parameters } : { tensors };
}

/**
 * Decodes a parsed inference request body. `binary` is the binary part of the body (binary
 * extension; see oip-binary.ts), consumed by inputs with `binary_data_size` in JSON order. `gate`
 * (a server's signature and limit check) sees each input's name, dtype and shape before any of
 * its elements is decoded.
 */
export function decodeOipRequest(body: unknown, binary?: BinaryCursor, gate?: TensorGate): OipRequest {
  if (!isPlainObject(body)) throw invalid(`request body must be a JSON object, got ${jsonSnippet(body)}`);
  const request: OipRequest = { inputs: {} };
  const id = optionalString(body.id, "'id'");
  if (id !== undefined) request.id = id;
  const parameters = optionalParameters(body.parameters, 'request');
  if (parameters) request.parameters = parameters;
  if (body.inputs === undefined) throw invalid("request has no 'inputs'; expected a list of input tensors");
  const inputs = decodeTensorList(body.inputs, 'inputs', binary, gate);
  request.inputs = inputs.tensors;
  if (inputs.parameters) request.inputParameters = inputs.parameters;
  if (body.outputs !== undefined && body.outputs !== null) {
    if (!Array.isArray(body.outputs)) throw invalid(`'outputs' must be a JSON list, got ${jsonSnippet(body.outputs)}`);
    const seen: Record<string, true> = {};
    request.outputs = body.outputs.map((entry: unknown, i) => {
      if (!isPlainObject(entry) || typeof entry.name !== 'string' || entry.name === '') {
        throw invalid(`outputs[${i}] must be an object with a non-empty 'name', got ${jsonSnippet(entry)}`);
      }
      checkName(seen, entry.name, 'outputs');
      seen[entry.name] = true;
      const outputParameters = optionalParameters(entry.parameters, `output "${entry.name}"`);
      return outputParameters ? { name: entry.name, parameters: outputParameters } : { name: entry.name };
    });
  }
  return request;
}

/**
 * Whether output `name` is to be returned in binary: its own `binary_data` parameter when set,
 * else the request's `binary_data_output` (binary extension).
 */
export function wantsBinaryOutput(request: Pick<OipRequest, 'parameters' | 'outputs'>, name: string): boolean {
  const own = request.outputs?.find((o) => o.name === name)?.parameters?.binary_data;
  if (typeof own === 'boolean') return own;
  return request.parameters?.binary_data_output === true;
}

/** The JSON text of a body and the binary chunks that follow it, in order. */
export interface OipBodyParts {
  json: string;
  chunks: Uint8Array[];
}

function writeTensorEntries(
  out: string[],
  tensors: Readonly<Record<string, Tensor>>,
  extra: Readonly<Record<string, OipParameters>> | undefined,
  binary: (name: string) => boolean,
  chunks: Uint8Array[],
): void {
  out.push('[');
  for (const [i, [name, tensor]] of Object.entries(tensors).entries()) {
    const count = elementCount(tensor.shape);
    out.push(`${i > 0 ? ',' : ''}{"name":${JSON.stringify(name)},"datatype":"${tensor.dtype}","shape":[${tensor.shape.join(',')}]`);
    let parameters = extra?.[name];
    const asBinary = binary(name);
    if (asBinary) parameters = { ...parameters, binary_data_size: rawByteLength(tensor) };
    if (parameters && Object.keys(parameters).length > 0) out.push(`,"parameters":${JSON.stringify(parameters)}`);
    if (asBinary) {
      chunks.push(encodeRawTensor(tensor));
    } else {
      out.push(',"data":');
      writeNestedJson(out, elementWriter(tensor), [count], 0, 0);
    }
    out.push('}');
  }
  out.push(']');
}

/**
 * Encodes a response as JSON text plus binary chunks: outputs for which `binary(name)` holds go
 * to the chunks (no `data`, `binary_data_size` set). `data` is always flat. BYTES in JSON are
 * strings (invalid UTF-8 is replaced: use binary for raw bytes). FP32 is written as its shortest
 * round-tripping text; NaN/Infinity as bare tokens, as TF Serving and Triton's Python client accept.
 */
export function encodeOipResponseParts(response: OipResponse, binary: (name: string) => boolean = () => false): OipBodyParts {
  const out: string[] = [`{"model_name":${JSON.stringify(response.modelName)}`];
  if (response.modelVersion !== undefined) out.push(`,"model_version":${JSON.stringify(response.modelVersion)}`);
  if (response.id !== undefined) out.push(`,"id":${JSON.stringify(response.id)}`);
  if (response.parameters !== undefined) out.push(`,"parameters":${JSON.stringify(response.parameters)}`);
  out.push(',"outputs":');
  const chunks: Uint8Array[] = [];
  writeTensorEntries(out, response.outputs, response.outputParameters, binary, chunks);
  out.push('}');
  return { json: out.join(''), chunks };
}

/** Encodes a response as JSON text (every output as `data`). */
export function encodeOipResponse(response: OipResponse): string {
  return encodeOipResponseParts(response).json;
}

/** Client side: an inference request to encode. */
export interface OipRequestToEncode {
  id?: string;
  parameters?: OipParameters;
  inputs: Readonly<Record<string, Tensor>>;
  inputParameters?: Record<string, OipParameters>;
  outputs?: OipRequestedOutput[];
}

/** Client side: encodes a request as JSON text plus binary chunks for inputs where `binary(name)` holds. */
export function encodeOipRequestParts(request: OipRequestToEncode, binary: (name: string) => boolean = () => false): OipBodyParts {
  const out: string[] = ['{'];
  if (request.id !== undefined) out.push(`"id":${JSON.stringify(request.id)},`);
  if (request.parameters !== undefined) out.push(`"parameters":${JSON.stringify(request.parameters)},`);
  out.push('"inputs":');
  const chunks: Uint8Array[] = [];
  writeTensorEntries(out, request.inputs, request.inputParameters, binary, chunks);
  if (request.outputs !== undefined) out.push(`,"outputs":${JSON.stringify(request.outputs)}`);
  out.push('}');
  return { json: out.join(''), chunks };
}

/** Client side: encodes a request as JSON text. */
export function encodeOipRequest(request: OipRequestToEncode): string {
  return encodeOipRequestParts(request).json;
}

/** Client side: decodes a parsed response body (binary outputs from `binary`, in JSON order). */
export function decodeOipResponse(body: unknown, binary?: BinaryCursor): OipResponse {
  if (!isPlainObject(body)) throw invalid(`response body must be a JSON object, got ${jsonSnippet(body)}`);
  const modelName = optionalString(body.model_name, "'model_name'");
  if (modelName === undefined) throw invalid("response has no 'model_name'");
  const outputs = decodeTensorList(body.outputs ?? [], 'outputs', binary);
  const response: OipResponse = { modelName, outputs: outputs.tensors };
  const version = optionalString(body.model_version, "'model_version'");
  if (version !== undefined) response.modelVersion = version;
  const id = optionalString(body.id, "'id'");
  if (id !== undefined) response.id = id;
  const parameters = optionalParameters(body.parameters, 'response');
  if (parameters) response.parameters = parameters;
  if (outputs.parameters) response.outputParameters = outputs.parameters;
  return response;
}
