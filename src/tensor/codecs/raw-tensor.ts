/**
 * Raw tensor bytes as the OIP binary extension, OIP gRPC `raw_*_contents` and TensorProto
 * `tensor_content` carry them: row-major, little-endian, no padding; BOOL one byte each; BYTES
 * elements each prefixed by a 4-byte little-endian uint32 length (OIP only).
 */
import { InflowError } from '../../errors.ts';
import { arrayTypeOf, type DType, type NumericArray } from '../dtype.ts';
import { elementCount, type Tensor } from '../tensor.ts';

/** Whether this host stores numbers little-endian (typed-array views are only valid then). */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function requireLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new InflowError('INTERNAL', 'raw tensor codecs need a little-endian host');
}

/**
 * A typed array over `bytes` holding `count` elements of fixed-size `dtype`: a zero-copy view
 * when `bytes.byteOffset` is a multiple of the element size, else one copy. A view keeps the
 * whole underlying buffer (e.g. the request body) alive as long as the tensor lives.
 */
export function numericFromBytes(dtype: Exclude<DType, 'BYTES'>, bytes: Uint8Array, count: number): NumericArray {
  requireLittleEndian();
  const Ctor = arrayTypeOf[dtype];
  if (bytes.byteOffset % Ctor.BYTES_PER_ELEMENT === 0) return new Ctor(bytes.buffer, bytes.byteOffset, count);
  const out = new Ctor(count);
  new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes.subarray(0, count * Ctor.BYTES_PER_ELEMENT));
  return out;
}

/** The bytes of a typed array (a view, no copy). */
export function numericBytes(data: NumericArray): Uint8Array {
  requireLittleEndian();
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Byte length of a tensor's raw encoding. */
export function rawByteLength(tensor: Tensor): number {
  if (tensor.dtype !== 'BYTES') return (tensor.data as NumericArray).byteLength;
  let size = 0;
  for (const element of tensor.data as Uint8Array[]) size += 4 + element.byteLength;
  return size;
}

/**
 * Decodes the raw bytes of tensor `name` (dtype and shape from the JSON header or proto).
 * Fixed-size dtypes: a view over `bytes` when aligned (see {@link numericFromBytes}). BYTES:
 * each element is a view into `bytes` (no copy). Throws INVALID_ARGUMENT when the byte size
 * does not match the shape.
 */
export function decodeRawTensor(name: string, dtype: DType, shape: readonly number[], bytes: Uint8Array): Tensor {
  const count = elementCount(shape);
  if (dtype !== 'BYTES') {
    const expected = count * arrayTypeOf[dtype].BYTES_PER_ELEMENT;
    if (bytes.byteLength !== expected) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `input "${name}": ${dtype} shape [${shape.join(', ')}] needs ${expected} bytes of raw data, got ${bytes.byteLength}`,
      );
    }
    return { dtype, shape: [...shape], data: numericFromBytes(dtype, bytes, count) };
  }
  const data: Uint8Array[] = new Array<Uint8Array>(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    if (offset + 4 > bytes.byteLength) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `input "${name}": BYTES raw data ends after ${i} of ${count} elements (no 4-byte length prefix at byte ${offset})`,
      );
    }
    const length = view.getUint32(offset, true);
    offset += 4;
    if (offset + length > bytes.byteLength) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `input "${name}": BYTES element ${i} claims ${length} bytes but only ${bytes.byteLength - offset} remain`,
      );
    }
    data[i] = bytes.subarray(offset, offset + length);
    offset += length;
  }
  if (offset !== bytes.byteLength) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      `input "${name}": BYTES shape [${shape.join(', ')}] holds ${count} elements in ${offset} bytes, but ${bytes.byteLength} bytes were given`,
    );
  }
  return { dtype, shape: [...shape], data };
}

/**
 * The raw bytes of a tensor: for fixed-size dtypes a view over the typed array (no copy); for
 * BYTES one new buffer holding every length prefix and element (one copy of the elements, so a
 * response is one write per tensor, not two per element).
 */
export function encodeRawTensor(tensor: Tensor): Uint8Array {
  if (tensor.dtype !== 'BYTES') return numericBytes(tensor.data as NumericArray);
  const out = new Uint8Array(rawByteLength(tensor));
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const element of tensor.data as Uint8Array[]) {
    view.setUint32(offset, element.byteLength, true);
    out.set(element, offset + 4);
    offset += 4 + element.byteLength;
  }
  return out;
}
