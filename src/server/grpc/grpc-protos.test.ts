import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { directSerializer, GrpcServiceName, loadGrpcProtos, tolerantServiceDefinition } from './grpc-protos.ts';
import { tensorToContents } from './oip-contents.ts';
import type { Tensor } from '../../tensor/tensor.ts';

const { INFERENCE, PREDICTION } = GrpcServiceName;

/** A ModelInferResponse with an output of every typed contents field, extreme values included, and raw outputs. */
function everyDtypeResponse(id: string): object {
  return {
    model_name: 'm',
    model_version: '3',
    id,
    outputs: [
      { name: 'b', datatype: 'BOOL', shape: [2], contents: { bool_contents: [true, false] } },
      { name: 'i32', datatype: 'INT32', shape: [3], contents: { int_contents: [-2147483648, 0, 2147483647] } },
      { name: 'i64', datatype: 'INT64', shape: [3], contents: { int64_contents: ['-9223372036854775808', '0', '9223372036854775807'] } },
      { name: 'u32', datatype: 'UINT32', shape: [2], contents: { uint_contents: [0, 4294967295] } },
      { name: 'u64', datatype: 'UINT64', shape: [2], contents: { uint64_contents: ['0', '18446744073709551615'] } },
      { name: 'f32', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [0, -1.5, 3.4028234663852886e38, Number.NaN] } },
      { name: 'f64', datatype: 'FP64', shape: [2], contents: { fp64_contents: [Number.MIN_VALUE, -0] } },
      { name: 's', datatype: 'BYTES', shape: [2], contents: { bytes_contents: [Buffer.from('héllo'), Buffer.alloc(0)] } },
      { name: 'scalar', datatype: 'FP32', shape: [], contents: { fp32_contents: [7] } },
    ],
  };
}

function rawResponse(): object {
  return {
    model_name: 'm',
    model_version: '1',
    id: 'req-7',
    outputs: [
      { name: 'h', datatype: 'FP16', shape: [1, 2] },
      { name: 'p', datatype: 'FP32', shape: [1, 2] },
    ],
    raw_output_contents: [Buffer.from([0, 60, 0, 64]), Buffer.from(Float32Array.of(0.25, 0.75).buffer)],
  };
}

describe('gRPC response serializers', () => {
  const protos = loadGrpcProtos();
  const modelInfer = protos.services[INFERENCE].ModelInfer;
  assert.ok(modelInfer);
  const direct = directSerializer(protos.root, INFERENCE, 'ModelInfer');
  assert.ok(direct);

  it('ModelInfer responses serialize in one pass to the same bytes as proto-loader when no field holds its default', () => {
    for (const response of [everyDtypeResponse('req-1'), rawResponse()]) {
      assert.deepEqual(direct(response), modelInfer.responseSerialize(response));
    }
  });

  it('an empty id is left off the wire, and the message reads back the same otherwise', () => {
    const bytes = direct(everyDtypeResponse(''));
    const expected = modelInfer.responseDeserialize(modelInfer.responseSerialize(everyDtypeResponse(''))) as Record<string, unknown>;
    const actual = modelInfer.responseDeserialize(bytes) as Record<string, unknown>;
    assert.equal(actual.id, undefined);
    assert.deepEqual({ ...actual, id: '' }, expected);
  });

  it('responses with enum fields keep proto-loader, which turns enum names into numbers', () => {
    assert.equal(directSerializer(protos.root, PREDICTION, 'Predict'), undefined);
    const predict = tolerantServiceDefinition(PREDICTION).Predict;
    assert.equal(predict?.responseSerialize, protos.services[PREDICTION].Predict?.responseSerialize);
  });

  it("the server's ModelInfer definition uses the one-pass serializer and the management methods do not", () => {
    const served = tolerantServiceDefinition(INFERENCE);
    assert.notEqual(served.ModelInfer?.responseSerialize, modelInfer.responseSerialize);
    assert.deepEqual(served.ModelInfer?.responseSerialize(rawResponse()), modelInfer.responseSerialize(rawResponse()));
    // ServerReady's `ready: false` stays on the wire for clients that decode without defaults.
    const ready = served.ServerReady;
    assert.ok(ready);
    assert.deepEqual(ready.responseDeserialize(ready.responseSerialize({ ready: false })), { ready: false });
  });

  it("tensors' typed arrays and 64-bit integers go to the one-pass serializer as they are, to the same bytes as the arrays proto-loader takes", () => {
    const tensors: Tensor[] = [
      { dtype: 'FP32', shape: [1, 4], data: Float32Array.of(0, -1.5, 3.4028234663852886e38, Number.NaN) },
      { dtype: 'FP64', shape: [2], data: Float64Array.of(Number.MIN_VALUE, -0) },
      { dtype: 'INT8', shape: [2], data: Int8Array.of(-128, 127) },
      { dtype: 'UINT16', shape: [1], data: Uint16Array.of(65535) },
      { dtype: 'INT32', shape: [2], data: Int32Array.of(-2147483648, 2147483647) },
      { dtype: 'UINT32', shape: [1], data: Uint32Array.of(4294967295) },
      { dtype: 'INT64', shape: [4], data: BigInt64Array.of(-9223372036854775808n, -1n, 4n, 9007199254740993n) },
      { dtype: 'UINT64', shape: [2], data: BigUint64Array.of(18446744073709551615n, 4n) },
      { dtype: 'BOOL', shape: [2], data: Uint8Array.of(1, 0) },
    ];
    const response = (contents: (t: Tensor) => unknown): object => ({
      model_name: 'm',
      model_version: '1',
      id: 'r',
      outputs: tensors.map((t, i) => ({ name: `o${i}`, datatype: t.dtype, shape: t.shape, contents: contents(t) })),
    });
    const asArrays = (t: Tensor): unknown => {
      const values = Array.from(t.data as ArrayLike<unknown>, (v) =>
        typeof v === 'bigint' ? String(v) : t.dtype === 'BOOL' ? v !== 0 : v,
      );
      const field = Object.keys(tensorToContents(t) ?? {})[0] as string;
      return { [field]: values };
    };
    assert.deepEqual(direct(response(tensorToContents)), modelInfer.responseSerialize(response(asArrays)));
    // No copy: the FP32 output's own array goes to the encoder.
    assert.equal(tensorToContents(tensors[0] as Tensor)?.fp32_contents, tensors[0]?.data);
  });
});
