import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { DType } from '../dtype.ts';
import { createTensor, stringTensor, tensorStrings, type Tensor } from '../tensor.ts';
import { parseJsonText } from './json-text.ts';
import { assertTensorEqual, tensorArbitrary } from './tensor-arbitrary.test.ts';
import { decodeTfPredict, decodeTfPredictResponse, encodeTfPredict, encodeTfPredictRequest, type TfSignature } from './tf-json.ts';

interface Fixture {
  signature: TfSignature;
  cases: { request: unknown; format: 'row' | 'columnar'; input: { shape: number[]; data: number[] }; response: string }[];
}
const fixture = JSON.parse(readFileSync(new URL('fixtures/tf-serving-rest.json', import.meta.url), 'utf8')) as Fixture;

const sig = (inputs: Record<string, DType>): TfSignature => ({ inputs: Object.entries(inputs).map(([name, dtype]) => ({ name, dtype })) });
const fp32 = (shape: number[], data: number[]): Tensor => createTensor('FP32', shape, Float32Array.from(data));
const decode = (text: string, signature: TfSignature) => decodeTfPredict(parseJsonText(text), signature);

describe('TF Serving REST JSON codec', () => {
  it('decodes and answers the worked examples of the reference exactly', () => {
    for (const c of fixture.cases) {
      const request = decodeTfPredict(c.request, fixture.signature);
      assert.equal(request.format, c.format);
      assert.equal(request.signatureName, 'serving_default');
      const x = request.inputs.x;
      assertTensorEqual(x, fp32(c.input.shape, c.input.data));
      const y = fp32(
        [...(x?.shape ?? [])],
        [...(x?.data as Float32Array)].map((v) => 0.5 * v + 2),
      );
      assert.equal(encodeTfPredict({ y }, request.format), c.response.replaceAll(' ', ''));
    }
  });

  it('decodes row objects of several inputs and writes per-row objects for several outputs', () => {
    const request = decode('{"instances":[{"a":[1,2],"b":"x"},{"a":[3,4],"b":"y"}]}', sig({ a: 'INT32', b: 'BYTES' }));
    assertTensorEqual(request.inputs.a, createTensor('INT32', [2, 2], Int32Array.of(1, 2, 3, 4)));
    assert.deepEqual(tensorStrings(request.inputs.b!), ['x', 'y']);
    const text = encodeTfPredict({ score: fp32([2], [0.5, 1]), label: stringTensor([2], ['cat', 'dog']) }, 'row');
    assert.equal(text, '{"predictions":[{"score":0.5,"label":"cat"},{"score":1.0,"label":"dog"}]}');
  });

  it('decodes columnar named inputs with independent shapes and a scalar', () => {
    const request = decode('{"inputs":{"a":[[1],[2],[3]],"k":7}}', sig({ a: 'FP64', k: 'INT64' }));
    assertTensorEqual(request.inputs.a, createTensor('FP64', [3, 1], Float64Array.of(1, 2, 3)));
    assertTensorEqual(request.inputs.k, createTensor('INT64', [], BigInt64Array.of(7n)));
    assert.equal(
      encodeTfPredict({ a: request.inputs.a!, k: request.inputs.k! }, 'columnar'),
      '{"outputs":{"a":[[1.0],[2.0],[3.0]],"k":7}}',
    );
  });

  it('reads {"b64": …} values as bytes and writes BYTES outputs named *_bytes as b64', () => {
    const request = decode('{"instances":[{"b64":"aGVsbG8="},"plain"]}', sig({ image_bytes: 'BYTES' }));
    assert.deepEqual(tensorStrings(request.inputs.image_bytes!), ['hello', 'plain']);
    const out = createTensor('BYTES', [1], [Uint8Array.of(0xff, 0x00)]);
    assert.equal(encodeTfPredict({ out_bytes: out }, 'row'), '{"predictions":[{"b64":"/wA="}]}');
    assert.equal(encodeTfPredict({ text: stringTensor([1], ['a"b']) }, 'row'), '{"predictions":["a\\"b"]}');
  });

  it('takes NaN and Infinity tokens for floats and writes them back bare', () => {
    const request = decode('{"inputs":[NaN,-Infinity]}', sig({ x: 'FP32' }));
    assert.equal(encodeTfPredict({ y: request.inputs.x! }, 'columnar'), '{"outputs":[NaN,-Infinity]}');
  });

  it('picks the signature by signature_name through a resolver', () => {
    const seen: string[] = [];
    decodeTfPredict({ signature_name: 'classify', inputs: [1] }, (name) => {
      seen.push(name);
      return sig({ x: 'FP32' });
    });
    assert.deepEqual(seen, ['classify']);
  });

  it('rejects malformed requests with TF Serving messages', () => {
    const one = sig({ x: 'FP32' });
    const two = sig({ a: 'FP32', b: 'FP32' });
    const cases: [string, TfSignature, RegExp][] = [
      ['{"instances":[1],"inputs":[1]}', one, /expecting only one of 'inputs' or 'instances'/],
      ['{"signature_name":"s"}', one, /Missing 'inputs' or 'instances' key/],
      ['{"instances":[]}', one, /'instances' must be a non-empty JSON list/],
      ['{"instances":[[1,2],[3]]}', one, /input "x": Encountered list at unexpected size/],
      ['{"instances":[[1,2],3]}', one, /Encountered list at unexpected size/],
      ['{"instances":[1,[2]]}', one, /Encountered list at unexpected size/],
      ['{"inputs":["1.5"]}', one, /input "x": JSON Value: "1.5" Type: String is not of expected type: float/],
      ['{"inputs":{"a":[1]}}', two, /Missing named input: b in 'inputs' object\./],
      ['{"inputs":{"a":[1],"b":[1],"c":[1]}}', two, /Unexpected named input: c/],
      ['{"inputs":[1,2]}', two, /single value but the signature has 2 inputs/],
      ['{"instances":[{"a":1}]}', two, /keys must be equal to: a,b/],
      ['{"instances":[{"a":1,"b":2},{"a":1}]}', two, /element: 1 of 'instances' list.*keys must be equal to: a,b/],
      ['{"signature_name":3,"inputs":[1]}', one, /'signature_name' must be a string/],
      ['[1]', one, /request body must be a JSON object/],
    ];
    for (const [text, signature, message] of cases) {
      assert.throws(() => decode(text, signature), { code: 'INVALID_ARGUMENT', message }, text);
    }
  });

  it('coerces values by the signature dtype and rejects what does not fit', () => {
    const ok = (dtype: DType, text: string) => decode(`{"inputs":${text}}`, sig({ x: dtype })).inputs.x!;
    const bad = (dtype: DType, text: string, message: RegExp) =>
      assert.throws(() => ok(dtype, text), { code: 'INVALID_ARGUMENT', message }, `${dtype} ${text}`);
    assertTensorEqual(ok('UINT8', '[0,255]'), createTensor('UINT8', [2], Uint8Array.of(0, 255)));
    assertTensorEqual(ok('BOOL', '[true,false]'), createTensor('BOOL', [2], Uint8Array.of(1, 0)));
    assertTensorEqual(ok('UINT64', '[9007199254740991]'), createTensor('UINT64', [1], BigUint64Array.of(9007199254740991n)));
    bad('INT32', '[1.5]', /JSON Value: 1\.5 Type: Number is not of expected type: int32/);
    bad('INT8', '[128]', /out of range -128\.\.127/);
    bad('UINT32', '[-1]', /not of expected type: uint32 \(out of range/);
    bad('UINT64', '[-1]', /uint64 \(out of range\)/);
    bad('BOOL', '[1]', /Type: Number is not of expected type: bool/);
    bad('BYTES', '[1]', /Type: Number is not of expected type: string/);
    bad('FP32', '[null]', /Type: Null is not of expected type: float/);
    bad('BYTES', '[{"b64":"not base64!"}]', /invalid base64/);
    bad('FP64', '[{"b64":"AAAA"}]', /Type: Object is not of expected type: double/);
    assert.throws(() => ok('FP16', '[1]'), { code: 'UNIMPLEMENTED', message: /half/ });
  });

  it('refuses to write rows from outputs without a shared batch dimension', () => {
    assert.throws(() => encodeTfPredict({ a: fp32([2], [1, 2]), b: fp32([3], [1, 2, 3]) }, 'row'), {
      code: 'INVALID_ARGUMENT',
      message: /Tensor name: b has inconsistent batch size: 3 expecting: 2/,
    });
    assert.throws(() => encodeTfPredict({ s: fp32([], [1]) }, 'row'), { message: /Tensor name: s has no shape information/ });
  });

  it('round-trips random tensors through requests and responses in both formats', () => {
    const dtypes: DType[] = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP32', 'FP64', 'BYTES'];
    const tensors = tensorArbitrary({ dtypes, minDim: 1, safeInt64: true });
    fc.assert(
      fc.property(tensors, tensors, fc.boolean(), (a, b, row) => {
        const format = row && a.shape.length > 0 ? 'row' : 'columnar';
        const signature = sig({ a: a.dtype });
        const request = decodeTfPredict(parseJsonText(encodeTfPredictRequest({ a }, format, { signatureName: 's' })), signature);
        assert.equal(request.signatureName, 's');
        assertTensorEqual(request.inputs.a, a, 'request');
        // Two outputs with independent shapes travel in the columnar response; b64 for a *_bytes name.
        const outputs = { a, b_bytes: b };
        const specs = [
          { name: 'a', dtype: a.dtype },
          { name: 'b_bytes', dtype: b.dtype },
        ];
        const decoded = decodeTfPredictResponse(parseJsonText(encodeTfPredict(outputs, 'columnar')), specs);
        assertTensorEqual(decoded.a, a, 'output a');
        assertTensorEqual(decoded.b_bytes, b, 'output b_bytes');
      }),
      { numRuns: 100 },
    );
  });

  it('round-trips raw bytes through {"b64"} for *_bytes names', () => {
    fc.assert(
      fc.property(tensorArbitrary({ dtypes: ['BYTES'], minDim: 1, minRank: 1, bytes: 'binary' }), (t) => {
        const text = encodeTfPredict({ raw_bytes: t }, 'row');
        assertTensorEqual(decodeTfPredictResponse(parseJsonText(text), [{ name: 'raw_bytes', dtype: 'BYTES' }]).raw_bytes, t);
      }),
      { numRuns: 100 },
    );
  });
});
