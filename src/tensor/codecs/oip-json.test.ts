import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createTensor, stringTensor, tensorStrings } from '../tensor.ts';
import { parseJsonText } from './json-text.ts';
import { decodeOipRequest, decodeOipResponse, encodeOipRequest, encodeOipResponse, wantsBinaryOutput } from './oip-json.ts';
import { assertTensorEqual, tensorArbitrary } from './tensor-arbitrary.test.ts';

const fixture = JSON.parse(readFileSync(new URL('fixtures/oip-json.json', import.meta.url), 'utf8')) as {
  request: unknown;
  nestedRequest: unknown;
  response: string;
};

const input = (fields: Record<string, unknown>) => ({ inputs: [{ name: 'x', shape: [2], datatype: 'FP32', data: [1, 2], ...fields }] });

describe('Open Inference Protocol JSON codec', () => {
  it('decodes the reference request with its id, parameters and requested outputs', () => {
    const request = decodeOipRequest(fixture.request);
    assert.equal(request.id, '42');
    assert.deepEqual(request.parameters, { k: 'str' });
    assertTensorEqual(request.inputs.input0, createTensor('UINT32', [2, 2], Uint32Array.of(1, 2, 3, 4)));
    assert.deepEqual(request.inputParameters, { input0: { p: 1 } });
    assert.deepEqual(request.outputs, [{ name: 'output0', parameters: { q: true } }]);
  });

  it('reads nested data the same as flat data', () => {
    assertTensorEqual(decodeOipRequest(fixture.nestedRequest).inputs.input0, createTensor('UINT32', [2, 2], Uint32Array.of(1, 2, 3, 4)));
  });

  it('encodes the reference response exactly', () => {
    const output0 = createTensor('FP32', [3, 2], Float32Array.of(1.0, 1.1, 2.0, 2.1, 3.0, 3.1));
    assert.equal(encodeOipResponse({ modelName: 'mymodel', modelVersion: '1', id: '42', outputs: { output0 } }), fixture.response);
  });

  it('carries BYTES as UTF-8 strings and FP16 as numbers', () => {
    const request = decodeOipRequest({
      inputs: [
        { name: 's', shape: [2], datatype: 'BYTES', data: ['héllo', ''] },
        { name: 'h', shape: [1], datatype: 'FP16', data: [0.5] },
      ],
    });
    assert.deepEqual(tensorStrings(request.inputs.s!), ['héllo', '']);
    assertTensorEqual(request.inputs.h, createTensor('FP16', [1], Uint16Array.of(0x3800)));
    assert.equal(
      encodeOipResponse({ modelName: 'm', outputs: { s: stringTensor([1], ['a"é']) } }),
      '{"model_name":"m","outputs":[{"name":"s","datatype":"BYTES","shape":[1],"data":["a\\"é"]}]}',
    );
  });

  it('resolves binary output requests: per-output binary_data overrides binary_data_output', () => {
    const request = decodeOipRequest({
      parameters: { binary_data_output: true },
      inputs: [],
      outputs: [{ name: 'a', parameters: { binary_data: false } }, { name: 'b' }],
    });
    assert.equal(wantsBinaryOutput(request, 'a'), false);
    assert.equal(wantsBinaryOutput(request, 'b'), true);
    assert.equal(wantsBinaryOutput({ outputs: [{ name: 'a', parameters: { binary_data: true } }] }, 'a'), true);
    assert.equal(wantsBinaryOutput({}, 'a'), false);
  });

  it('rejects malformed requests naming the tensor and what was expected', () => {
    const cases: [unknown, RegExp][] = [
      [[], /request body must be a JSON object/],
      [{}, /request has no 'inputs'/],
      [input({ datatype: 'FLOAT32' }), /tensor "x": unknown datatype "FLOAT32"; expected one of BOOL, /],
      [input({ shape: [3] }), /tensor "x": shape \[3\] holds 3 elements but 'data' has 2/],
      [input({ shape: [-1] }), /tensor "x": shape \[-1\]: dimension 0 is -1/],
      [input({ shape: [65536, 65536] }), /tensor "x": shape \[65536, 65536\] has more than 2147483647 elements/],
      [input({ shape: '2' }), /'shape' must be a list of non-negative integers/],
      [input({ data: [1, 'a'] }), /input "x": JSON Value: "a" Type: String is not of expected type: FP32/],
      [input({ shape: [2, 2], data: [[1, 2], [3]] }), /Encountered list at unexpected size/],
      [input({ data: undefined }), /tensor "x": 'data' is missing/],
      [input({ datatype: 'INT32', data: [1, 2.5] }), /not of expected type: INT32/],
      [input({ parameters: { binary_data_size: 8 }, data: undefined }), /'binary_data_size' is set but the body has no binary part/],
      [{ inputs: [input({}).inputs[0], input({}).inputs[0]] }, /inputs: "x" appears twice/],
      [{ inputs: [{ ...input({}).inputs[0], name: '__proto__' }] }, /"__proto__" is not allowed/],
      [{ id: 7, inputs: [] }, /'id' must be a string/],
      [{ inputs: [], outputs: [{}] }, /outputs\[0\] must be an object with a non-empty 'name'/],
      [{ inputs: [], parameters: [] }, /'parameters' must be a JSON object/],
    ];
    for (const [body, message] of cases) {
      assert.throws(() => decodeOipRequest(body), { code: 'INVALID_ARGUMENT', message }, JSON.stringify(body));
    }
  });

  it('treats null in optional fields as absent, as KServe writes them (model_version, id, parameters, outputs)', () => {
    const request = decodeOipRequest({
      id: null,
      parameters: null,
      inputs: [{ ...input({}).inputs[0], parameters: null }],
      outputs: null,
    });
    assert.deepEqual(Object.keys(request), ['inputs']);
    assertTensorEqual(request.inputs.x, createTensor('FP32', [2], Float32Array.of(1, 2)));
    const withNullOutputParameters = decodeOipRequest({ inputs: [], outputs: [{ name: 'y', parameters: null }] });
    assert.deepEqual(withNullOutputParameters.outputs, [{ name: 'y' }]);
    // KServe 0.21's answer to a v2 infer call, as it writes it.
    const response = decodeOipResponse({
      model_name: 'm',
      model_version: null,
      id: 'a1',
      parameters: null,
      outputs: [{ name: 'y', shape: [1], datatype: 'INT64', parameters: null, data: [7] }],
    });
    assert.equal(response.modelVersion, undefined);
    assert.equal(response.parameters, undefined);
    assert.equal(response.outputParameters, undefined);
    assertTensorEqual(response.outputs.y, createTensor('INT64', [1], BigInt64Array.of(7n)));
  });

  it('round-trips random tensors through requests and responses', () => {
    fc.assert(
      fc.property(fc.array(tensorArbitrary({ safeInt64: true }), { minLength: 1, maxLength: 3 }), (tensors) => {
        const inputs = Object.fromEntries(tensors.map((t, i) => [`t${i}`, t]));
        const request = decodeOipRequest(parseJsonText(encodeOipRequest({ id: 'r', inputs, outputs: [{ name: 'o' }] })));
        assert.equal(request.id, 'r');
        assert.deepEqual(Object.keys(request.inputs), Object.keys(inputs));
        for (const [name, t] of Object.entries(inputs)) assertTensorEqual(request.inputs[name], t, name);
        const response = decodeOipResponse(parseJsonText(encodeOipResponse({ modelName: 'm', modelVersion: '2', outputs: inputs })));
        assert.equal(response.modelVersion, '2');
        for (const [name, t] of Object.entries(inputs)) assertTensorEqual(response.outputs[name], t, name);
      }),
      { numRuns: 100 },
    );
  });
});
