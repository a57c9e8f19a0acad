import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { PROTO_LOAD_OPTIONS } from '../../protocol/proto-files.ts';
import type { DType } from '../dtype.ts';
import { createTensor, stringTensor, tensorStrings, type Tensor } from '../tensor.ts';
import { assertTensorEqual, tensorArbitrary } from './tensor-arbitrary.test.ts';
import {
  decodeTensorProtoBytes,
  encodeTensorProtoBytes,
  getTensorProtoType,
  MAX_BROADCAST_ELEMENTS,
  type TensorProtoObject,
  tensorFromProto,
  tensorToProto,
} from './tensor-proto.ts';

interface Case {
  name: string;
  hex: string;
  dtype: DType;
  shape: number[];
  data?: number[];
  strings?: string[];
  encodedBy?: 'typed' | 'tensor_content';
}
const fixture = JSON.parse(readFileSync(new URL('fixtures/tensor-proto.json', import.meta.url), 'utf8')) as { cases: Case[] };

const bytesOf = (hex: string) => Uint8Array.from(Buffer.from(hex.replaceAll(' ', ''), 'hex'));
const expected = (c: Case): Tensor =>
  c.strings
    ? stringTensor(c.shape, c.strings)
    : createTensor(c.dtype, c.shape, c.dtype === 'FP32' ? Float32Array.from(c.data!) : Int32Array.from(c.data!));

/** What @grpc/proto-loader hands a service handler: toObject with the shared options. */
function asLoaderObject(bytes: Uint8Array): TensorProtoObject {
  const type = getTensorProtoType();
  const { longs, enums, bytes: bytesOption, defaults, arrays, oneofs } = PROTO_LOAD_OPTIONS;
  return type.toObject(type.decode(bytes), { longs, enums, bytes: bytesOption, defaults, arrays, oneofs });
}

describe('tensorflow.TensorProto codec', () => {
  it('decodes hand-derived wire bytes: packed, unpacked, tensor_content, broadcast, strings, scalars', () => {
    for (const c of fixture.cases) {
      assertTensorEqual(decodeTensorProtoBytes(bytesOf(c.hex)), expected(c), c.name);
      assertTensorEqual(tensorFromProto(asLoaderObject(bytesOf(c.hex))), expected(c), `${c.name} (loader object)`);
    }
  });

  it('encodes to exactly the hand-derived bytes', () => {
    for (const c of fixture.cases.filter((x) => x.encodedBy)) {
      const bytes = encodeTensorProtoBytes(expected(c), { content: c.encodedBy! });
      assert.equal(Buffer.from(bytes).toString('hex'), c.hex.replaceAll(' ', ''), c.name);
    }
  });

  it('writes message objects as @grpc/proto-loader expects them (enum names, int64 strings, Buffers)', () => {
    const proto = tensorToProto(createTensor('INT64', [2], BigInt64Array.of(-(2n ** 63n), 5n)));
    assert.deepEqual(proto, { dtype: 'DT_INT64', tensor_shape: { dim: [{ size: '2' }] }, int64_val: ['-9223372036854775808', '5'] });
    const half = tensorToProto(createTensor('FP16', [1], Uint16Array.of(0x3c00)));
    assert.deepEqual(half.half_val, [0x3c00]);
    const strings = tensorToProto(stringTensor([1], ['é']));
    assert.ok(Buffer.isBuffer(strings.string_val?.[0]));
    const content = tensorToProto(createTensor('FP32', [1], Float32Array.of(1)), { content: 'tensor_content' });
    assert.ok(Buffer.isBuffer(content.tensor_content));
  });

  it('reads the variants other option sets give: numeric enums, number/bigint/Long int64, base64 bytes', () => {
    const t = tensorFromProto({ dtype: 9, tensor_shape: { dim: [{ size: 3 }] }, int64_val: [1, 2n, { low: -1, high: -1 }] });
    assertTensorEqual(t, createTensor('INT64', [3], BigInt64Array.of(1n, 2n, -1n)));
    const u = tensorFromProto({
      dtype: 'DT_UINT64',
      tensor_shape: { dim: [{ size: '1' }] },
      uint64_val: [{ low: -1, high: -1, unsigned: true }],
    });
    assertTensorEqual(u, createTensor('UINT64', [1], BigUint64Array.of(2n ** 64n - 1n)));
    const c = tensorFromProto({ dtype: 'DT_INT16', tensor_shape: { dim: [{ size: '2' }] }, tensor_content: 'AQD//w==' });
    assertTensorEqual(c, createTensor('INT16', [2], Int16Array.of(1, -1)));
    const s = tensorFromProto({ dtype: 'DT_STRING', tensor_shape: { dim: [{ size: '1' }] }, string_val: ['aGk='] });
    assert.deepEqual(tensorStrings(s), ['hi']);
    const b = tensorFromProto({ dtype: 'DT_BOOL', tensor_shape: { dim: [{ size: '3' }] }, bool_val: [true] });
    assertTensorEqual(b, createTensor('BOOL', [3], Uint8Array.of(1, 1, 1)));
  });

  it('views aligned tensor_content in place and copies it otherwise', () => {
    const bytes = encodeTensorProtoBytes(createTensor('FP64', [64], new Float64Array(64).fill(0.5)), { content: 'tensor_content' });
    // dtype (2 bytes) + tensor_shape (6) + tag (1) + length 512 as a 2-byte varint: the content starts at byte 11.
    const at = (lead: number) => {
      const buffer = new Uint8Array(lead + bytes.byteLength);
      buffer.set(bytes, lead);
      const data = decodeTensorProtoBytes(buffer.subarray(lead)).data as Float64Array;
      assert.deepEqual([data.length, data[0], data[63]], [64, 0.5, 0.5]);
      return data.buffer === buffer.buffer;
    };
    assert.equal(at(5), true, 'content at byte 16 is viewed');
    assert.equal(at(0), false, 'content at byte 11 is copied');
  });

  it('rejects protos it cannot turn into a tensor, naming the tensor', () => {
    const shape = (...dims: number[]) => ({ dim: dims.map((size) => ({ size: String(size) })) });
    const cases: [TensorProtoObject, RegExp][] = [
      [
        { dtype: 'DT_FLOAT', tensor_shape: shape(3), float_val: [1, 2] },
        /tensor "t": DT_FLOAT shape \[3\] needs 3 values in float_val \(or 1 to broadcast\), got 2/,
      ],
      [{ dtype: 'DT_FLOAT', tensor_shape: shape(2), tensor_content: Buffer.alloc(4) }, /needs 8 bytes of tensor_content, got 4/],
      [{ dtype: 'DT_STRING', tensor_shape: shape(1), tensor_content: Buffer.alloc(4) }, /DT_STRING must use string_val/],
      [{ dtype: 'DT_COMPLEX64', tensor_shape: shape(1) }, /unsupported dtype "DT_COMPLEX64"; expected one of DT_BOOL/],
      [{ tensor_shape: shape(1) }, /unsupported dtype 0/],
      [{ dtype: 'DT_FLOAT', tensor_shape: { unknown_rank: true } }, /unknown rank/],
      [{ dtype: 'DT_FLOAT', tensor_shape: shape(-1), float_val: [] }, /dimension 0 is -1/],
      [{ dtype: 'DT_FLOAT', tensor_shape: shape(1 << 16, 1 << 16), float_val: [1] }, /more than 2147483647 elements/],
      [{ dtype: 'DT_FLOAT', tensor_shape: shape(MAX_BROADCAST_ELEMENTS + 1), float_val: [1] }, /exceeds the limit/],
      [{ dtype: 'DT_INT8', tensor_shape: shape(1), int_val: [300] }, /int_val\[0\] = 300 is out of range for DT_INT8/],
    ];
    for (const [proto, message] of cases) {
      assert.throws(() => tensorFromProto(proto, 't'), { code: 'INVALID_ARGUMENT', message }, String(message));
    }
    assert.throws(() => decodeTensorProtoBytes(Uint8Array.of(0x0a, 0x05, 0x01)), {
      code: 'INVALID_ARGUMENT',
      message: /malformed TensorProto/,
    });
  });

  it('round-trips random tensors through wire bytes and loader objects, typed and tensor_content', () => {
    fc.assert(
      fc.property(tensorArbitrary({ bytes: 'binary' }), fc.boolean(), (t, raw) => {
        const content = raw && t.dtype !== 'BYTES' ? 'tensor_content' : 'typed';
        const bytes = encodeTensorProtoBytes(t, { content });
        assertTensorEqual(decodeTensorProtoBytes(bytes), t, 'bytes');
        assertTensorEqual(tensorFromProto(asLoaderObject(bytes)), t, 'loader object');
      }),
      { numRuns: 100 },
    );
  });
});
