/**
 * The message protocol between an onnx servable (main thread) and its session worker, and the
 * packing of tensors for postMessage.
 *
 * Copies: a numeric input is copied once into a fresh, exactly sized buffer that is then
 * transferred (a plain postMessage would clone the view's whole backing ArrayBuffer, which for a
 * tensor decoded from a wire buffer is the whole request; transferring the caller's buffer would
 * detach a tensor the caller or the batcher may still share). Numeric outputs are not copied: the
 * buffer onnxruntime allocated in the worker is transferred back. BYTES tensors travel as one
 * packed buffer plus offsets (one copy each way) instead of one clone per element.
 */
import type { DType, NumericArray } from '../tensor/dtype.ts';
import type { Tensor } from '../tensor/tensor.ts';

/** onnxruntime's tensor type names for each dtype (BOOL and FP16 use Uint8Array / Uint16Array on both sides). */
export const ortTypeOf = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
} as const satisfies Record<DType, string>;
export type OrtType = (typeof ortTypeOf)[DType];

const dtypeByOrt = new Map<string, DType>(Object.entries(ortTypeOf).map(([dtype, ort]) => [ort, dtype as DType]));

/** The dtype of an onnxruntime tensor type, or undefined for types inflow does not carry (int4, …). */
export function dtypeOfOrt(type: string): DType | undefined {
  return dtypeByOrt.get(type);
}

/** A tensor as it crosses the thread boundary. */
export type WireTensor =
  | { dtype: Exclude<DType, 'BYTES'>; shape: number[]; data: NumericArray }
  | { dtype: 'BYTES'; shape: number[]; bytes: Uint8Array; offsets: Uint32Array };

/** Session settings the worker needs. */
export interface WorkerInit {
  /** Absolute path of the model file. */
  path: string;
  /** Tried in order; a provider whose library cannot be loaded is skipped (logged by the main thread). */
  executionProviders: string[];
  intraOpThreads?: number;
  interOpThreads?: number;
  graphOptimizationLevel: 'disabled' | 'basic' | 'extended' | 'all';
}

/** One input or output as the worker reports it: dims already mapped (symbolic / unknown → -1). */
export interface WireSpec {
  name: string;
  dtype: DType;
  shape: number[];
}

export type ToWorker = { type: 'run'; id: number; feeds: Record<string, WireTensor>; fetches: string[] } | { type: 'close' };

export type FromWorker =
  | {
      type: 'ready';
      inputs: WireSpec[];
      outputs: WireSpec[];
      /** The execution provider the session got and the ones skipped (with why). */
      provider: string;
      skipped: { provider: string; reason: string }[];
      /** Class labels of outputs turned from ZipMap (sequence of maps) into FP32 [N, classes]. */
      classLabels: Record<string, (string | number)[]>;
    }
  | { type: 'load-error'; code: 'INVALID_CONFIG' | 'FAILED_PRECONDITION'; message: string }
  | { type: 'result'; id: number; outputs: Record<string, WireTensor> }
  | { type: 'run-error'; id: number; message: string };

/**
 * Packs a tensor for postMessage and adds what to transfer to `transfer`. With `copy`, numeric
 * data is copied into its own buffer first (inputs); without, the buffer is transferred as is
 * when the view covers all of it (outputs the worker owns), else copied.
 */
export function toWire(tensor: Tensor, transfer: ArrayBuffer[], copy: boolean): WireTensor {
  const shape = [...tensor.shape];
  if (tensor.dtype === 'BYTES') {
    const items = tensor.data as Uint8Array[];
    const offsets = new Uint32Array(items.length + 1);
    let size = 0;
    for (const [i, item] of items.entries()) {
      size += item.byteLength;
      offsets[i + 1] = size;
    }
    const bytes = new Uint8Array(size);
    for (const [i, item] of items.entries()) bytes.set(item, offsets[i]);
    transfer.push(bytes.buffer, offsets.buffer);
    return { dtype: 'BYTES', shape, bytes, offsets };
  }
  let data = tensor.data as NumericArray;
  const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer;
  if (copy || !whole || transfer.includes(data.buffer as ArrayBuffer)) data = data.slice();
  transfer.push(data.buffer as ArrayBuffer);
  return { dtype: tensor.dtype, shape, data };
}

/** Unpacks a tensor received over postMessage (BYTES elements are views into the one packed buffer). */
export function fromWire(wire: WireTensor): Tensor {
  if (wire.dtype !== 'BYTES') return { dtype: wire.dtype, shape: wire.shape, data: wire.data };
  const items: Uint8Array[] = [];
  for (let i = 0; i + 1 < wire.offsets.length; i++) items.push(wire.bytes.subarray(wire.offsets[i], wire.offsets[i + 1]));
  return { dtype: 'BYTES', shape: wire.shape, data: items };
}
