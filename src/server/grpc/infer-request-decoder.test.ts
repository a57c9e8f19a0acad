import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import protobuf from 'protobufjs';
import { GrpcServiceName, loadGrpcProtos, MalformedRequest, tolerantServiceDefinition } from './grpc-protos.ts';
import { createInferRequestDeserializer, type DecodedContents } from './infer-request-decoder.ts';
import { decodeInferInputs } from './oip-service.ts';
import type { ModelInferRequest__Output } from '../../protocol/generated/inference/ModelInferRequest.ts';

const plain = loadGrpcProtos().services[GrpcServiceName.INFERENCE].ModelInfer;
assert.ok(plain);
const decode = createInferRequestDeserializer();

/** The request as proto-loader decodes it, with the typed arrays of `ours` turned into plain arrays for comparison. */
function plainArrays(value: unknown): unknown {
  if (ArrayBuffer.isView(value) && !Buffer.isBuffer(value)) return Array.from(value as Float32Array);
  if (Array.isArray(value)) return value.map(plainArrays);
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plainArrays(v)]));
  }
  return value;
}

const fp32 = [0.5, -1.25, 3.4028234663852886e38, 1e-45, 0];
const request = {
  model_name: 'm',
  model_version: '2',
  id: 'req-1',
  parameters: { priority: { int64_param: '7' } },
  inputs: [
    {
      name: 'all',
      datatype: 'FP32',
      shape: ['1', '5'],
      parameters: { p: { string_param: 'x' } },
      contents: {
        bool_contents: [true, false, true],
        int_contents: [-2147483648, -1, 0, 300, 2147483647],
        int64_contents: ['-9223372036854775808', '9223372036854775807', '-1'],
        uint_contents: [0, 1, 4294967295],
        uint64_contents: ['18446744073709551615', '0'],
        fp32_contents: fp32,
        fp64_contents: [Math.PI, -0.1, Number.MAX_VALUE],
        bytes_contents: [Buffer.from('abc'), Buffer.alloc(0)],
      },
    },
    { name: 'empty', datatype: 'FP32', shape: ['0'] },
  ],
  outputs: [{ name: 'o', parameters: { classification: { int64_param: '3' } } }],
  raw_input_contents: [],
};

describe('the one-pass ModelInfer request decoder', () => {
  it('decodes every field as proto-loader does, numeric contents as typed arrays', () => {
    const bytes = plain.requestSerialize(request);
    const ours = decode(bytes) as ModelInferRequest__Output;
    const theirs = plain.requestDeserialize(bytes) as ModelInferRequest__Output;
    const contents = ours.inputs[0]?.contents as unknown as DecodedContents;
    assert.ok(contents.fp32_contents instanceof Float32Array);
    assert.ok(contents.fp64_contents instanceof Float64Array);
    assert.ok(contents.int_contents instanceof Int32Array);
    assert.ok(contents.uint_contents instanceof Uint32Array);
    // proto-loader reads floats as float32 and widens them: the same values.
    assert.deepEqual(plainArrays(ours), plainArrays(theirs));
    assert.deepEqual(Array.from(contents.fp32_contents), Array.from(new Float32Array(fp32)));
  });

  it('reads unpacked and split numeric fields (proto3 parsers must accept both) as one array', () => {
    // fp32_contents (6) unpacked: tag 6<<3|5 per value; then a packed chunk; int_contents (2) unpacked varints; fp64 (7) in two packed chunks.
    const w = protobuf.Writer.create();
    w.uint32((6 << 3) | 5).float(1.5);
    w.uint32((6 << 3) | 2)
      .fork()
      .float(2.5)
      .float(3.5)
      .ldelim();
    w.uint32((2 << 3) | 0).int32(-5);
    w.uint32((2 << 3) | 2)
      .fork()
      .int32(6)
      .int32(-7)
      .ldelim();
    w.uint32((7 << 3) | 2)
      .fork()
      .double(0.25)
      .ldelim();
    w.uint32((7 << 3) | 2)
      .fork()
      .double(0.75)
      .ldelim();
    w.uint32((99 << 3) | 0).uint32(1); // an unknown field is skipped
    const contentsBytes = w.finish();
    const outer = protobuf.Writer.create();
    outer.uint32((1 << 3) | 2).string('m');
    const input = protobuf.Writer.create();
    input.uint32((1 << 3) | 2).string('x');
    input.uint32((5 << 3) | 2).bytes(contentsBytes);
    outer.uint32((5 << 3) | 2).bytes(input.finish());
    const bytes = Buffer.from(outer.finish());
    const ours = decode(bytes) as ModelInferRequest__Output;
    const contents = ours.inputs[0]?.contents as unknown as DecodedContents;
    assert.deepEqual(Array.from(contents.fp32_contents), [1.5, 2.5, 3.5]);
    assert.deepEqual(Array.from(contents.int_contents), [-5, 6, -7]);
    assert.deepEqual(Array.from(contents.fp64_contents), [0.25, 0.75]);
    assert.deepEqual(plainArrays(ours), plainArrays(plain.requestDeserialize(bytes)));
  });

  it('rejects truncated contents and packed floats that are not whole values, and the server answers INVALID_ARGUMENT for them', () => {
    const good = plain.requestSerialize(request);
    assert.throws(() => decode(good.subarray(0, good.length - 20)));
    const w = protobuf.Writer.create();
    w.uint32((6 << 3) | 2).bytes(new Uint8Array([0, 0, 128])); // 3 bytes: not a float32
    const input = protobuf.Writer.create();
    input.uint32((5 << 3) | 2).bytes(w.finish());
    const outer = protobuf.Writer.create();
    outer.uint32((5 << 3) | 2).bytes(input.finish());
    const bad = Buffer.from(outer.finish());
    assert.throws(() => decode(bad), /not a whole number of values/);
    const server = tolerantServiceDefinition(GrpcServiceName.INFERENCE).ModelInfer;
    assert.ok(server?.requestDeserialize(bad) instanceof MalformedRequest);
  });

  it('gives tensors that adopt the decoded FP32 array and still check counts and ranges', () => {
    const bytes = plain.requestSerialize({
      model_name: 'm',
      inputs: [{ name: 'x', datatype: 'FP32', shape: ['2', '2'], contents: { fp32_contents: [1, 2, 3, 4] } }],
    });
    const parsed = decode(bytes) as ModelInferRequest__Output;
    const { inputs } = decodeInferInputs(parsed, 'm');
    assert.equal(inputs.x?.data, (parsed.inputs[0]?.contents as unknown as DecodedContents).fp32_contents);
    assert.deepEqual(Array.from(inputs.x?.data ?? []), [1, 2, 3, 4]);
    const short = decode(
      plain.requestSerialize({
        model_name: 'm',
        inputs: [{ name: 'x', datatype: 'FP32', shape: ['3'], contents: { fp32_contents: [1] } }],
      }),
    ) as ModelInferRequest__Output;
    assert.throws(() => decodeInferInputs(short, 'm'), { code: 'INVALID_ARGUMENT', message: /needs 3 values/ });
    const wide = decode(
      plain.requestSerialize({
        model_name: 'm',
        inputs: [{ name: 'x', datatype: 'INT8', shape: ['1'], contents: { int_contents: [300] } }],
      }),
    ) as ModelInferRequest__Output;
    assert.throws(() => decodeInferInputs(wide, 'm'), { code: 'INVALID_ARGUMENT', message: /out of range for INT8/ });
    const int8 = decode(
      plain.requestSerialize({
        model_name: 'm',
        inputs: [{ name: 'x', datatype: 'INT8', shape: ['2'], contents: { int_contents: [-3, 4] } }],
      }),
    ) as ModelInferRequest__Output;
    const tensor = decodeInferInputs(int8, 'm').inputs.x;
    assert.ok(tensor?.data instanceof Int8Array);
    assert.deepEqual(Array.from(tensor.data), [-3, 4]);
  });
});
