/**
 * The protocol clients over fake transports: the exact bytes they send (golden bodies), and how
 * they read answers that inflow's server does not give but TF Serving, Triton or MLServer do.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createManualClock } from '../serving/clock.ts';
import { encodeOipBinaryResponse, type TensorProtoObject } from '../tensor/codecs/index.ts';
import { createTensor, stringTensor, tensorStrings } from '../tensor/tensor.ts';
import type { GrpcTransport } from './grpc-transport.ts';
import type { HttpRequest, HttpResponse, HttpTransport } from './http-transport.ts';
import { createOipGrpcClient } from './oip-grpc-client.ts';
import { createOipRestClient } from './oip-rest-client.ts';
import type { RemoteEndpoint } from './remote-errors.ts';
import { createTfServingGrpcClient } from './tfserving-grpc-client.ts';
import { createTfServingRestClient } from './tfserving-rest-client.ts';

const MS = 1000;

/** A fake HTTP transport answering by path; records every request. */
function fakeHttp(protocol: RemoteEndpoint['protocol'], answer: (request: HttpRequest) => HttpResponse) {
  const sent: HttpRequest[] = [];
  const transport: HttpTransport = {
    endpoint: { protocol, url: 'http://fake:1' },
    async request(request) {
      sent.push(request);
      return answer(request);
    },
    async call(request) {
      return transport.request(request);
    },
    close() {},
  };
  return { transport, sent };
}

const json = (value: unknown, status = 200): HttpResponse => ({
  status,
  headers: {},
  body: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
});

const bodyText = (request: HttpRequest | undefined): string => Buffer.concat(request?.body ?? []).toString('utf8');

const TF_METADATA = {
  model_spec: { name: 'm', signature_name: '', version: '3' },
  metadata: {
    signature_def: {
      signature_def: {
        serving_default: {
          inputs: { x: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: '-1' }, { size: '2' }] } } },
          outputs: {
            y: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: '-1' }] } },
            k: { dtype: 'DT_INT64', tensor_shape: { dim: [{ size: '-1' }] } },
          },
          method_name: 'tensorflow/serving/predict',
        },
      },
    },
  },
};

describe('TF Serving REST client', () => {
  function tfServer() {
    return fakeHttp('tfserving-rest', (request) =>
      request.path.endsWith('/metadata') ? json(TF_METADATA) : json('{"outputs":{"y":[2.5,NaN],"k":[7,8]}}'),
    );
  }

  it('posts columnar inputs (batch dim kept, BYTES as b64) to the version or label URL', async () => {
    const { transport, sent } = fakeHttp('tfserving-rest', (request) =>
      request.path.endsWith('/metadata') ? json(TF_METADATA) : json({ outputs: { y: [1], k: [1] } }),
    );
    const client = createTfServingRestClient(transport, { clock: createManualClock(), metadataTtlMs: 1000 });
    await client.infer({
      model: 'my model',
      label: 'can ary',
      inputs: { x: createTensor('FP32', [1, 2], Float32Array.of(1, 0.5)), s: stringTensor([1], ['hi']) },
    });
    const predict = sent.find((r) => r.method === 'POST');
    assert.equal(predict?.path, '/v1/models/my%20model/labels/can%20ary:predict');
    assert.equal(bodyText(predict), '{"inputs":{"x":[[1.0,0.5]],"s":[{"b64":"aGk="}]}}');
    assert.equal(predict?.headers?.['content-type'], 'application/json');
    assert.ok(sent.some((r) => r.method === 'GET' && r.path === '/v1/models/my%20model/labels/can%20ary/metadata'));
  });

  it('types the JSON answer with the signature (NaN tokens accepted) and reports the version metadata named', async () => {
    const { transport } = tfServer();
    const client = createTfServingRestClient(transport, { clock: createManualClock(), metadataTtlMs: 1000 });
    const response = await client.infer({ model: 'm', id: 'a', inputs: { x: createTensor('FP32', [2, 2], new Float32Array(4)) } });
    assert.equal(response.version, 3);
    assert.equal(response.id, 'a');
    assert.deepEqual(Array.from(response.outputs.y?.data as Float32Array), [2.5, Number.NaN]);
    assert.deepEqual(response.outputs.k?.data, BigInt64Array.of(7n, 8n));
  });

  it('fetches a signature once per TTL, and again when the TTL has passed', async () => {
    const { transport, sent } = tfServer();
    const clock = createManualClock();
    const client = createTfServingRestClient(transport, { clock, metadataTtlMs: 1000 });
    const request = { model: 'm', inputs: { x: createTensor('FP32', [1, 2], new Float32Array(2)) } };
    await client.infer(request);
    await client.infer(request);
    const metadataCalls = (): number => sent.filter((r) => r.path.endsWith('/metadata')).length;
    assert.equal(metadataCalls(), 1);
    clock.advance(1000 * MS);
    await client.infer(request);
    assert.equal(metadataCalls(), 2);
  });

  it('refetches a stale signature once when the answer does not fit it', async () => {
    let metadata: unknown = { ...TF_METADATA, model_spec: { name: 'm', version: '3' } };
    const { transport, sent } = fakeHttp('tfserving-rest', (request) =>
      request.path.endsWith('/metadata') ? json(metadata) : json('{"outputs":{"z":[true]}}'),
    );
    const client = createTfServingRestClient(transport, { clock: createManualClock(), metadataTtlMs: 60_000 });
    const request = { model: 'm', inputs: { x: createTensor('FP32', [1, 2], new Float32Array(2)) } };
    await assert.rejects(client.infer(request), { code: 'INTERNAL', message: /cannot read the server's answer/ });
    metadata = {
      model_spec: { name: 'm', version: '4' },
      metadata: {
        signature_def: {
          signature_def: { serving_default: { inputs: {}, outputs: { z: { dtype: 'DT_BOOL', tensor_shape: { dim: [] } } } } },
        },
      },
    };
    const response = await client.infer(request);
    assert.equal(response.version, 4);
    assert.deepEqual(response.outputs.z?.data, Uint8Array.of(1));
    assert.equal(sent.filter((r) => r.path.endsWith('/metadata')).length, 3, 'first call: 1 + 1 refetch; second: 1 refetch');
  });
});

describe('OIP REST client', () => {
  it('sends binary inputs as views of their typed arrays after the JSON header, and reads binary outputs', async () => {
    const input = createTensor('FP32', [1, 2], Float32Array.of(1, 2));
    const { transport, sent } = fakeHttp('oip-rest', (request) => {
      // The first call checks the server once: binary_tensor_data announced, version 2 listed.
      if (request.path === '/v2') return json({ name: 'triton', version: '2.51.0', extensions: ['binary_tensor_data'] });
      if (request.path === '/v2/models/m') return json({ name: 'm', versions: ['1', '2'], inputs: [], outputs: [] });
      const encoded = encodeOipBinaryResponse(
        { modelName: 'm', modelVersion: '2', id: 'q', outputs: { y: createTensor('INT32', [2], Int32Array.of(5, 6)) } },
        () => true,
      );
      return {
        status: 200,
        headers: { 'inference-header-content-length': String(encoded.headerLength) },
        body: Buffer.concat(encoded.chunks),
      };
    });
    const client = createOipRestClient(transport, { binary: true });
    const response = await client.infer({ model: 'm', version: 2, id: 'q', inputs: { x: input }, outputs: ['y'] });
    assert.deepEqual(
      sent.map((r) => r.path),
      ['/v2', '/v2/models/m', '/v2/models/m/versions/2/infer'],
    );
    const request = sent[2];
    assert.equal(request?.path, '/v2/models/m/versions/2/infer');
    const [header, raw] = request?.body ?? [];
    const headerText = Buffer.from(header as Uint8Array).toString('utf8');
    assert.equal(
      headerText,
      '{"id":"q","parameters":{"binary_data_output":true},"inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"parameters":{"binary_data_size":8}}],"outputs":[{"name":"y"}]}',
    );
    assert.equal(request?.headers?.['inference-header-content-length'], String(Buffer.byteLength(headerText)));
    assert.equal(raw?.buffer, (input.data as Float32Array).buffer, 'the input bytes are the typed array itself, not a copy');
    assert.equal(response.version, 2);
    assert.equal(response.id, 'q');
    assert.deepEqual(response.outputs.y?.data, Int32Array.of(5, 6));
  });

  it('says what the config must change when the server cannot serve it: a pinned version it does not have, oipBinary without the extension', async () => {
    // MLServer 1.7.1 as it answers: no binary_tensor_data extension, an unversioned model.
    const { transport, sent } = fakeHttp('oip-rest', (request) => {
      if (request.path === '/v2') return json({ name: 'mlserver', version: '1.7.1', extensions: [] });
      if (request.path === '/v2/models/m') return json({ name: 'm', versions: [], platform: '', inputs: [], outputs: [] });
      return json({ model_name: 'm', model_version: null, outputs: [] });
    });
    const input = { x: createTensor('FP32', [1], Float32Array.of(1)) };
    const binary = createOipRestClient(transport, { binary: true });
    const noBinary =
      /remote oip-rest http:\/\/fake:1 \(mlserver 1\.7\.1\) does not announce the binary_tensor_data extension \(its extensions: none\); set oipBinary: false/;
    await assert.rejects(binary.infer({ model: 'm', inputs: input }), { code: 'FAILED_PRECONDITION', message: noBinary });
    const plain = createOipRestClient(transport, { binary: false });
    const unversioned = /model "m" has no versions on this server \(MLServer and KServe models are unversioned\); remove "version: 1"/;
    await assert.rejects(plain.infer({ model: 'm', version: 1, inputs: input }), { code: 'FAILED_PRECONDITION', message: unversioned });
    // Remembered: the second call fails the same way without asking the server again.
    const before = sent.length;
    await assert.rejects(plain.infer({ model: 'm', version: 1, inputs: input }), { code: 'FAILED_PRECONDITION' });
    assert.equal(sent.length, before);
    // Without a pinned version and with JSON, nothing is checked and the call goes through.
    assert.equal((await plain.infer({ model: 'm', inputs: input })).version, 0);
    assert.equal(sent.at(-1)?.path, '/v2/models/m/infer');
  });

  it('sends JSON without the header, except for FP16 inputs, which have no JSON form', async () => {
    const { transport, sent } = fakeHttp('oip-rest', () => json({ model_name: 'm', outputs: [] }));
    const client = createOipRestClient(transport, { binary: false });
    const response = await client.infer({
      model: 'm',
      inputs: { a: createTensor('INT32', [2], Int32Array.of(1, 2)), h: createTensor('FP16', [1], Uint16Array.of(0x3c00)) },
    });
    assert.equal(response.version, 0, 'an unversioned answer to an unversioned request');
    const body = sent[0]?.body ?? [];
    assert.match(Buffer.from(body[0] as Uint8Array).toString('utf8'), /"name":"a","datatype":"INT32","shape":\[2\],"data":\[1,2\]/);
    assert.equal(body.length, 2, 'h went binary');
    assert.equal(sent[0]?.headers?.['content-type'], 'application/octet-stream');
  });

  it('reads readiness from the status: 200 ready, anything else not', async () => {
    const { transport, sent } = fakeHttp('oip-rest', (request) => json({}, request.path.includes('/models/up/') ? 200 : 400));
    const client = createOipRestClient(transport, { binary: false });
    assert.equal(await client.ready('up'), true);
    assert.equal(await client.ready('down'), false);
    assert.deepEqual(
      sent.map((r) => r.path),
      ['/v2/models/up/ready', '/v2/models/down/ready'],
    );
  });
});

function fakeGrpc(protocol: RemoteEndpoint['protocol'], answer: (method: string, request: Record<string, unknown>) => unknown) {
  const sent: { method: string; request: Record<string, unknown> }[] = [];
  const transport: GrpcTransport = {
    endpoint: { protocol, url: 'fake:1' },
    timeoutMs: 1000,
    async unary<T>(_service: string, method: string, request: object) {
      sent.push({ method, request: request as Record<string, unknown> });
      return answer(method, request as Record<string, unknown>) as T;
    },
    async waitForReady() {
      return true;
    },
    close() {},
  };
  return { transport, sent };
}

describe('OIP gRPC client', () => {
  it('sends raw_input_contents viewing the typed arrays and reads typed contents from servers that answer so (MLServer)', async () => {
    const input = createTensor('FP32', [1, 2], Float32Array.of(1, 2));
    const { transport, sent } = fakeGrpc('oip-grpc', () => ({
      model_name: 'm',
      model_version: '',
      id: '',
      outputs: [
        { name: 'p', datatype: 'FP32', shape: ['1', '2'], contents: { fp32_contents: [0.25, 0.75] } },
        { name: 'k', datatype: 'INT64', shape: ['1'], contents: { int64_contents: ['9007199254740993'] } },
        { name: 's', datatype: 'BYTES', shape: ['1'], contents: { bytes_contents: [Buffer.from('ok')] } },
      ],
      raw_output_contents: [],
    }));
    const response = await createOipGrpcClient(transport).infer({ model: 'm', inputs: { x: input } });
    const message = sent[0]?.request as { raw_input_contents: Buffer[]; model_version: string; inputs: unknown[] };
    assert.equal(message.raw_input_contents[0]?.buffer, (input.data as Float32Array).buffer, 'no copy of the input');
    assert.equal(message.model_version, '');
    assert.deepEqual(message.inputs, [{ name: 'x', datatype: 'FP32', shape: [1, 2] }]);
    assert.deepEqual(response.outputs.p?.data, Float32Array.of(0.25, 0.75));
    assert.deepEqual(response.outputs.k?.data, BigInt64Array.of(9007199254740993n));
    assert.deepEqual(tensorStrings(response.outputs.s!), ['ok']);
    assert.equal(response.version, 0);
  });

  it('fails with INTERNAL when the answer does not fit its shape', async () => {
    const { transport } = fakeGrpc('oip-grpc', () => ({
      model_name: 'm',
      outputs: [{ name: 'p', datatype: 'FP32', shape: ['3'], contents: { fp32_contents: [1] } }],
    }));
    await assert.rejects(createOipGrpcClient(transport).infer({ model: 'm', inputs: {} }), {
      code: 'INTERNAL',
      message: /shape \[3\] needs 3 values, contents hold 1/,
    });
  });
});

describe('TF Serving gRPC client', () => {
  it('sends numeric inputs as tensor_content views and BYTES as string_val, and reads typed *_val outputs', async () => {
    const input = createTensor('FP32', [1, 2], Float32Array.of(1, 2));
    const { transport, sent } = fakeGrpc('tfserving-grpc', () => ({
      model_spec: { name: 'm', version: { value: '5' } },
      outputs: { y: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: '2' }] }, float_val: [0.5, 1.5] } satisfies TensorProtoObject },
    }));
    const response = await createTfServingGrpcClient(transport).infer({
      model: 'm',
      version: 5,
      inputs: { x: input, s: stringTensor([1], ['a']) },
      outputs: ['y'],
    });
    const message = sent[0]?.request as {
      model_spec: unknown;
      inputs: Record<string, TensorProtoObject>;
      output_filter: string[];
    };
    assert.deepEqual(message.model_spec, { name: 'm', signature_name: '', version: { value: '5' } });
    assert.equal((message.inputs.x?.tensor_content as Buffer).buffer, (input.data as Float32Array).buffer);
    assert.equal(message.inputs.x?.float_val, undefined);
    assert.equal(message.inputs.s?.string_val?.length, 1);
    assert.deepEqual(message.output_filter, ['y']);
    assert.equal(response.version, 5);
    assert.deepEqual(response.outputs.y?.data, Float32Array.of(0.5, 1.5));
  });
});
