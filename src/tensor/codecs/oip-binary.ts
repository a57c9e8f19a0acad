/**
 * The OIP binary tensor data extension (Triton; KServe and tritonclient speak it): the HTTP body is
 * a JSON header of `Inference-Header-Content-Length` bytes, followed by the raw bytes of every
 * tensor whose parameters hold `binary_data_size`, in the order the tensors appear in the JSON.
 * Raw bytes are row-major little-endian; BYTES elements carry a 4-byte little-endian length.
 *
 * Copies: decoding views numeric tensors in place over the body when aligned (the tensor then
 * keeps the body alive) and copies otherwise; BYTES elements are always views. Encoding returns
 * chunks to write in order: numeric outputs are views over their typed arrays (no copy).
 */
import { InflowError } from '../../errors.ts';
import type { DType } from '../dtype.ts';
import type { TensorGate } from '../tensor.ts';
import { parseJsonText } from './json-text.ts';
import {
  type BinaryCursor,
  decodeOipRequest,
  decodeOipResponse,
  encodeOipRequestParts,
  encodeOipResponseParts,
  type OipBodyParts,
  type OipRequest,
  type OipRequestToEncode,
  type OipResponse,
  wantsBinaryOutput,
} from './oip-json.ts';
import { decodeRawTensor } from './raw-tensor.ts';

/** The header that gives the JSON part's byte length (lower case, as node:http presents headers). */
export const INFERENCE_HEADER_CONTENT_LENGTH = 'inference-header-content-length';

const utf8 = new TextEncoder();

/** The single input of a model, for raw binary requests (`Inference-Header-Content-Length: 0`). */
export interface RawInputSpec {
  name: string;
  dtype: DType;
  /** Model input shape; a `-1` first dim is the batch and becomes 1. Other dims must be known. */
  shape: readonly number[];
}

/** Reads the header value (a string as node:http gives it, a number, or absent). */
function headerLength(value: string | number | undefined, bodyLength: number): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'number' ? value : /^\d+$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 0 || n > bodyLength) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      `Inference-Header-Content-Length is ${JSON.stringify(value)}; expected an integer from 0 to the body length ${bodyLength}`,
    );
  }
  return n;
}

/** Splits a body into its parsed JSON part and the cursor over its binary part (none when no header). */
function splitBody(body: Uint8Array, header: string | number | undefined): { json: unknown; binary?: BinaryCursor } {
  const length = headerLength(header, body.byteLength);
  if (length === undefined) return { json: parseJsonText(body) };
  return { json: parseJsonText(body.subarray(0, length)), binary: { bytes: body.subarray(length), offset: 0 } };
}

/**
 * Decodes an inference request body with or without binary data. `header` is the
 * `Inference-Header-Content-Length` value (absent: the whole body is JSON). A header of `0` is a
 * raw binary request: the body is the bytes of `rawInput` (batch 1) and every output is asked for
 * in binary (`binary_data_output: true`); it needs `rawInput`, else INVALID_ARGUMENT. `gate` sees
 * each input's name, dtype and shape before any element is decoded.
 */
export function decodeOipBinaryRequest(
  body: Uint8Array,
  header: string | number | undefined,
  rawInput?: RawInputSpec,
  gate?: TensorGate,
): OipRequest {
  if (header !== undefined && headerLength(header, body.byteLength) === 0) return decodeRawRequest(body, rawInput, gate);
  const { json, binary } = splitBody(body, header);
  return decodeOipRequest(json, binary, gate);
}

function decodeRawRequest(body: Uint8Array, spec: RawInputSpec | undefined, gate: TensorGate | undefined): OipRequest {
  if (!spec) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      'raw binary request (Inference-Header-Content-Length: 0) needs a model with exactly one input',
    );
  }
  const shape = spec.shape.map((d, i) => (i === 0 && d === -1 ? 1 : d));
  if (shape.some((d) => d < 0)) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      `raw binary request: input "${spec.name}" has shape [${spec.shape.join(', ')}] with unknown dims; send a JSON header with the shape`,
    );
  }
  gate?.(spec.name, spec.dtype, shape);
  const tensor = decodeRawTensor(spec.name, spec.dtype, shape, body);
  return { inputs: { [spec.name]: tensor }, parameters: { binary_data_output: true } };
}

/** An encoded body: chunks to write in order (the JSON header first), and the header to send. */
export interface OipBinaryBody {
  chunks: Uint8Array[];
  /** Total byte length (Content-Length). */
  byteLength: number;
  /** `Inference-Header-Content-Length` value; absent when nothing binary follows the JSON. */
  headerLength?: number;
}

function toBody(parts: OipBodyParts): OipBinaryBody {
  const json = utf8.encode(parts.json);
  let byteLength = json.byteLength;
  for (const chunk of parts.chunks) byteLength += chunk.byteLength;
  if (parts.chunks.length === 0) return { chunks: [json], byteLength };
  return { chunks: [json, ...parts.chunks], byteLength, headerLength: json.byteLength };
}

/**
 * Encodes a response with the outputs the request asked for in binary (`binary_data` per output,
 * `binary_data_output` for all) as raw chunks after the JSON header. Pass a function to decide
 * per output name instead of a request.
 */
export function encodeOipBinaryResponse(
  response: OipResponse,
  binary: Pick<OipRequest, 'parameters' | 'outputs'> | ((name: string) => boolean),
): OipBinaryBody {
  const wants = typeof binary === 'function' ? binary : (name: string) => wantsBinaryOutput(binary, name);
  return toBody(encodeOipResponseParts(response, wants));
}

/** Client side: encodes a request with the inputs for which `binary(name)` holds (default: all) in binary. */
export function encodeOipBinaryRequest(request: OipRequestToEncode, binary: (name: string) => boolean = () => true): OipBinaryBody {
  return toBody(encodeOipRequestParts(request, binary));
}

/** Client side: decodes a response body; `header` is its `Inference-Header-Content-Length` (absent: all JSON). */
export function decodeOipBinaryResponse(body: Uint8Array, header: string | number | undefined): OipResponse {
  const { json, binary } = splitBody(body, header);
  return decodeOipResponse(json, binary);
}
