import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { LocalInference } from '../../serving/local-inference.ts';
import { decodeOipBinaryResponse, encodeOipBinaryRequest } from '../../tensor/codecs/index.ts';
import { createTensor, tensorStrings } from '../../tensor/tensor.ts';
import {
  assertClose,
  type ExampleServer,
  loadExampleInference,
  rows,
  type Sample,
  sample,
  startExampleServer,
} from './fixtures/example-server.ts';

interface OipOutput {
  name: string;
  datatype: string;
  shape: number[];
  data?: unknown[];
  parameters?: Record<string, unknown>;
}

describe('Open Inference Protocol v2 REST', () => {
  let inference: LocalInference;
  let api: ExampleServer;
  let digits: Sample;
  before(async () => {
    inference = await loadExampleInference();
    api = await startExampleServer(inference);
    digits = await sample('digits-mlp');
  });
  after(async () => {
    await api.server.close(1000);
    await inference.close();
  });

  async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const response = await fetch(api.url + path, {
      method,
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    assert.equal(response.headers.get('content-type'), 'application/json');
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  }
  const digitsRequest = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    inputs: [{ name: 'input', datatype: 'FP32', shape: [8, 64], data: digits.inputs.input!.data }],
    ...extra,
  });

  it('answers server metadata, liveness and readiness', async () => {
    assert.deepEqual(await call('GET', '/v2'), {
      status: 200,
      json: { name: 'inflow', version: '0.1.0', extensions: ['binary_tensor_data'] },
    });
    assert.deepEqual(await call('GET', '/v2/health/live'), { status: 200, json: { live: true } });
    assert.deepEqual(await call('GET', '/v2/health/ready'), { status: 200, json: { ready: true } });
  });

  it('answers model metadata with string versions, the platform and the signature', async () => {
    const golden: unknown = JSON.parse(await readFile(join(import.meta.dirname, 'fixtures', 'oip-metadata-digits-mlp.json'), 'utf8'));
    assert.deepEqual(await call('GET', '/v2/models/digits-mlp'), { status: 200, json: golden });
    assert.equal((await call('GET', '/v2/models/digits-mlp/versions/1')).status, 200);
  });

  it('answers model readiness for a model and a version, and 404 for an unknown model', async () => {
    assert.deepEqual(await call('GET', '/v2/models/digits-mlp/ready'), { status: 200, json: { name: 'digits-mlp', ready: true } });
    assert.deepEqual(await call('GET', '/v2/models/digits-mlp/versions/2/ready'), {
      status: 200,
      json: { name: 'digits-mlp', ready: true },
    });
    assert.deepEqual(await call('GET', '/v2/models/digits-mlp/versions/5/ready'), {
      status: 503,
      json: { name: 'digits-mlp', ready: false },
    });
    assert.equal((await call('GET', '/v2/models/nope/ready')).status, 404);
  });

  it('infers with JSON, echoes the id and matches Python onnxruntime', async () => {
    const { status, json } = await call('POST', '/v2/models/digits-mlp/infer', digitsRequest({ id: 'req-42' }));
    assert.equal(status, 200);
    assert.deepEqual([json.model_name, json.model_version, json.id], ['digits-mlp', '2', 'req-42']);
    const [label, probabilities] = json.outputs as OipOutput[];
    assert.deepEqual({ ...label, data: undefined }, { name: 'label', datatype: 'INT64', shape: [8], data: undefined });
    assert.deepEqual(label!.data, digits.outputs.label!.data);
    assert.deepEqual([probabilities!.name, probabilities!.datatype, probabilities!.shape], ['probabilities', 'FP32', [8, 10]]);
    assertClose(probabilities!.data!, digits.outputs.probabilities!.data, 'probabilities');
  });

  it('infers on a named version, with nested data, and returns only the requested outputs', async () => {
    const body = {
      inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 64], data: rows(digits.inputs.input!, 0, 2) }],
      outputs: [{ name: 'label' }],
    };
    const { status, json } = await call('POST', '/v2/models/digits-mlp/versions/1/infer', body);
    assert.equal(status, 200);
    assert.equal(json.model_version, '1');
    assert.equal(json.id, undefined);
    assert.deepEqual(json.outputs, [{ name: 'label', datatype: 'INT64', shape: [2], data: digits.outputs.label!.data.slice(0, 2) }]);
  });

  it('answers BYTES outputs as JSON strings', async () => {
    const cancer = await sample('breast-cancer-gbt-pipeline');
    const body = {
      inputs: [{ name: 'input', datatype: 'FP32', shape: [8, 30], data: cancer.inputs.input!.data }],
      outputs: [{ name: 'class' }],
    };
    const { status, json } = await call('POST', '/v2/models/breast-cancer-pipeline/infer', body);
    assert.equal(status, 200);
    const [cls] = json.outputs as OipOutput[];
    assert.deepEqual(
      cls!.data,
      cancer.outputs.label!.data.map((l) => (Number(l) === 0 ? 'malignant' : 'benign')),
    );
  });

  it('round-trips the binary tensor extension: binary input, binary outputs, Inference-Header-Content-Length', async () => {
    const input = createTensor('FP32', [8, 64], Float32Array.from(digits.inputs.input!.data as number[]));
    const encoded = encodeOipBinaryRequest({ id: 'bin', inputs: { input }, parameters: { binary_data_output: true } });
    const response = await fetch(`${api.url}/v2/models/digits-mlp/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(encoded.headerLength) },
      body: Buffer.concat(encoded.chunks),
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/octet-stream');
    const header = response.headers.get('inference-header-content-length') ?? undefined;
    assert.ok(header !== undefined);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const head = JSON.parse(new TextDecoder().decode(bytes.subarray(0, Number(header)))) as { outputs: OipOutput[] };
    assert.deepEqual(
      head.outputs.map((o) => [o.name, o.data, o.parameters]),
      [
        ['label', undefined, { binary_data_size: 64 }],
        ['probabilities', undefined, { binary_data_size: 320 }],
      ],
    );
    const decoded = decodeOipBinaryResponse(bytes, header);
    assert.equal(decoded.id, 'bin');
    assert.deepEqual(Array.from(decoded.outputs.label!.data as BigInt64Array, Number), digits.outputs.label!.data);
    assertClose(Array.from(decoded.outputs.probabilities!.data as Float32Array), digits.outputs.probabilities!.data, 'probabilities');
  });

  it('answers a binary request with JSON outputs unless binary output is asked for, per output', async () => {
    const input = createTensor('FP32', [1, 64], Float32Array.from(digits.inputs.input!.data.slice(0, 64) as number[]));
    const encoded = encodeOipBinaryRequest({
      inputs: { input },
      outputs: [{ name: 'label' }, { name: 'probabilities', parameters: { binary_data: true } }],
    });
    const response = await fetch(`${api.url}/v2/models/digits-mlp/infer`, {
      method: 'POST',
      headers: { 'inference-header-content-length': String(encoded.headerLength) },
      body: Buffer.concat(encoded.chunks),
    });
    assert.equal(response.status, 200);
    const decoded = decodeOipBinaryResponse(
      new Uint8Array(await response.arrayBuffer()),
      response.headers.get('inference-header-content-length') ?? undefined,
    );
    assert.equal(Number((decoded.outputs.label!.data as BigInt64Array)[0]), digits.outputs.label!.data[0]);
    assertClose(
      Array.from(decoded.outputs.probabilities!.data as Float32Array),
      digits.outputs.probabilities!.data.slice(0, 10),
      'probabilities',
    );
  });

  it('answers a raw binary request (Inference-Header-Content-Length: 0) as batch 1 with binary outputs', async () => {
    const row = Float32Array.from(digits.inputs.input!.data.slice(64, 128) as number[]);
    const response = await fetch(`${api.url}/v2/models/digits-mlp/infer`, {
      method: 'POST',
      headers: { 'inference-header-content-length': '0' },
      body: Buffer.from(row.buffer),
    });
    assert.equal(response.status, 200);
    const decoded = decodeOipBinaryResponse(
      new Uint8Array(await response.arrayBuffer()),
      response.headers.get('inference-header-content-length') ?? undefined,
    );
    assert.deepEqual(decoded.outputs.label!.shape, [1]);
    assert.equal(Number((decoded.outputs.label!.data as BigInt64Array)[0]), digits.outputs.label!.data[1]);
  });

  it('keeps BYTES outputs intact in binary (length-prefixed)', async () => {
    const cancer = await sample('breast-cancer-gbt-pipeline');
    const body = JSON.stringify({
      inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 30], data: cancer.inputs.input!.data.slice(0, 60) }],
      outputs: [{ name: 'class', parameters: { binary_data: true } }],
    });
    const response = await fetch(`${api.url}/v2/models/breast-cancer-pipeline/infer`, { method: 'POST', body });
    const decoded = decodeOipBinaryResponse(
      new Uint8Array(await response.arrayBuffer()),
      response.headers.get('inference-header-content-length') ?? undefined,
    );
    assert.deepEqual(
      tensorStrings(decoded.outputs.class!),
      cancer.outputs.label!.data.slice(0, 2).map((l) => (Number(l) === 0 ? 'malignant' : 'benign')),
    );
  });

  const input = (name = 'input', shape = [1, 64]): unknown => ({
    inputs: [{ name, datatype: 'FP32', shape, data: new Array(shape[0]! * shape[1]!).fill(0) }],
  });
  const errors: Array<[string, string, string, unknown, number, string | RegExp]> = [
    ['an unknown model', 'POST', '/v2/models/nope/infer', input(), 404, 'Servable not found for request: Latest(nope)'],
    [
      'an unknown version',
      'POST',
      '/v2/models/digits-mlp/versions/3/infer',
      input(),
      404,
      'Servable not found for request: Specific(digits-mlp, 3)',
    ],
    [
      'a version that is not a number',
      'POST',
      '/v2/models/digits-mlp/versions/latest/infer',
      input(),
      400,
      /version "latest" of model digits-mlp is not valid/,
    ],
    ['a wrong input name', 'POST', '/v2/models/digits-mlp/infer', input('pixels'), 400, /has no input "pixels"; its inputs are: input/],
    ['a wrong shape', 'POST', '/v2/models/digits-mlp/infer', input('input', [1, 63]), 400, /input "input".*64/],
    [
      'missing inputs',
      'POST',
      '/v2/models/digits-mlp/infer',
      { id: 'x' },
      400,
      "request has no 'inputs'; expected a list of input tensors",
    ],
    [
      'data that does not fit the shape',
      'POST',
      '/v2/models/digits-mlp/infer',
      { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], data: [1, 2] }] },
      400,
      /input/,
    ],
    ['bad JSON', 'POST', '/v2/models/digits-mlp/infer', '{"inputs": [', 400, /^JSON Parse error: /],
    ['an unknown model (metadata)', 'GET', '/v2/models/nope', undefined, 404, 'Could not find any versions of model nope'],
    [
      'an unknown version (metadata)',
      'GET',
      '/v2/models/digits-mlp/versions/4',
      undefined,
      404,
      'Could not find version 4 of model digits-mlp',
    ],
    ['GET on infer', 'GET', '/v2/models/digits-mlp/infer', undefined, 404, /no route for GET \/v2\/models\/digits-mlp\/infer/],
    ['an unknown path', 'GET', '/v2/repository/index', undefined, 404, /no route/],
  ];
  for (const [what, method, path, body, status, message] of errors) {
    it(`answers ${status} with {"error"} for ${what}`, async () => {
      const answer = await call(method, path, body);
      assert.equal(answer.status, status);
      assert.deepEqual(Object.keys(answer.json), ['error']);
      if (typeof message === 'string') assert.equal(answer.json.error, message);
      else assert.match(answer.json.error as string, message);
    });
  }

  it('checks model, dtype and shape against the signature before decoding any element (JSON and binary)', async () => {
    // Numbers where BYTES strings belong: decoding first would answer a type error instead.
    const json = await call('POST', '/v2/models/digits-mlp/infer', {
      inputs: [{ name: 'input', datatype: 'BYTES', shape: [3], data: [1, 2, 3] }],
    });
    assert.equal(json.status, 400);
    assert.match(json.json.error as string, /input "input" of model "digits-mlp": expected FP32 with shape \[-1, 64\], got BYTES \[3\]/);
    // Binary extension: 1 byte cannot hold 3 length prefixes, but the dtype is refused first.
    const header = JSON.stringify({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [3], parameters: { binary_data_size: 1 } }] });
    const res = await fetch(`${api.url}/v2/models/digits-mlp/infer`, {
      method: 'POST',
      body: Buffer.concat([Buffer.from(header), Buffer.from([7])]),
      headers: { 'inference-header-content-length': String(Buffer.byteLength(header)) },
    });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { error: string }).error, /expected FP32 with shape \[-1, 64\], got BYTES \[3\]/);
  });

  it('answers 413 beyond maxRequestElements or maxRequestBytesElements, before decoding', async () => {
    const limited = await startExampleServer(inference, { maxRequestElements: 64 * 4, maxRequestBytesElements: 10 });
    try {
      const post = async (body: unknown): Promise<{ status: number; error: string }> => {
        const res = await fetch(`${limited.url}/v2/models/digits-mlp/infer`, { method: 'POST', body: JSON.stringify(body) });
        return { status: res.status, error: ((await res.json()) as { error: string }).error };
      };
      // 5 rows of 64: over 256 elements, refused before the (missing) data is looked at.
      const big = await post({ inputs: [{ name: 'input', datatype: 'FP32', shape: [5, 64], data: [] }] });
      assert.deepEqual([big.status, /more than 256 tensor elements/.test(big.error)], [413, true], big.error);
      const ok = await post({ inputs: [{ name: 'input', datatype: 'FP32', shape: [4, 64], data: Array.from({ length: 256 }, () => 0) }] });
      assert.equal(ok.status, 200, ok.error);
      const tf = await fetch(`${limited.url}/v1/models/digits-mlp:predict`, {
        method: 'POST',
        body: JSON.stringify({ instances: Array.from({ length: 5 }, () => Array.from({ length: 64 }, () => 0)) }),
      });
      assert.equal(tf.status, 413);
    } finally {
      await limited.server.close(1000);
    }
  });

  it('answers 400, not 500, to lists nested 100 000 deep', async () => {
    const deep = `${'['.repeat(100_000)}1${']'.repeat(100_000)}`;
    const inputs = await call('POST', '/v2/models/digits-mlp/infer', `{"inputs": ${deep}}`);
    assert.equal(inputs.status, 400);
    assert.equal(inputs.json.error, 'inputs[0] must be a JSON object, got (Array nested too deeply to print)');
    const data = await call(
      'POST',
      '/v2/models/digits-mlp/infer',
      `{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 64], "data": [${deep}]}]}`,
    );
    assert.equal(data.status, 400);
    assert.match(data.json.error as string, /input "input": Encountered list at unexpected size: got a list of 1 at dimension 1/);
  });
});
