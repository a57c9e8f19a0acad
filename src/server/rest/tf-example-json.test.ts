import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TfFeature } from '../tf-example.ts';
import { decodeTfExampleRequest, encodeTfClassifyResponse, encodeTfRegressResponse } from './tf-example-json.ts';

const features = (text: string): Record<string, TfFeature> => Object.fromEntries(decodeTfExampleRequest(text).examples[0] ?? []);
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('TF Serving REST tf.Example JSON', () => {
  it('turns JSON values into features as TF Serving does: 1.0 float, 1 int64, true int64, strings and b64 bytes', () => {
    assert.deepEqual(
      features(
        '{"examples": [{"f": 1.0, "e": 2e3, "i": 1, "b": true, "s": "héllo", "bin": {"b64": "AAE="}, "l": [1, 2.5], "bi": [1, false], "big": 9223372036854775807}]}',
      ),
      {
        f: { kind: 'float', values: [1] },
        e: { kind: 'float', values: [2000] },
        i: { kind: 'int64', values: [1n] },
        b: { kind: 'int64', values: [1n] },
        s: { kind: 'bytes', values: [utf8('héllo')] },
        bin: { kind: 'bytes', values: [Uint8Array.from([0, 1])] },
        l: { kind: 'float', values: [1, 2.5] },
        bi: { kind: 'int64', values: [1n, 0n] },
        big: { kind: 'int64', values: [9223372036854775807n] },
      },
    );
  });

  it('reads bare NaN and Infinity tokens as floats', () => {
    const f = features('{"examples": [{"x": [NaN, -Infinity, 3]}]}');
    assert.equal(f.x?.kind, 'float');
    assert.deepEqual(f.x?.values, [Number.NaN, Number.NEGATIVE_INFINITY, 3]);
  });

  it('merges the context into each example, the example’s own feature first', () => {
    const request = decodeTfExampleRequest(
      '{"signature_name": "serving_default", "context": {"c": 1, "x": 0}, "examples": [{"x": 2}, {}]}',
    );
    assert.equal(request.signatureName, 'serving_default');
    assert.deepEqual(
      request.examples.map((e) => [e.get('x')?.values[0], e.get('c')?.values[0]]),
      [
        [2n, 1n],
        [0n, 1n],
      ],
    );
  });

  const rejects: Array<[string, string, RegExp]> = [
    ['a body that is not an object', '[1]', /Request body is not a JSON object; expected \{"examples"/],
    ['broken JSON', '{"examples": [', /^JSON Parse error/],
    ['a missing examples key', '{"instances": [1]}', /Missing 'examples' key; expected "examples": a non-empty list/],
    ['an empty examples list', '{"examples": []}', /'examples' is an empty list; expected at least one example/],
    ['a non-string signature_name', '{"signature_name": 1, "examples": [{}]}', /'signature_name' key must be a string value/],
    ['an example that is not an object', '{"examples": [[1]]}', /examples\[0\] is not a JSON object/],
    ['a nested list', '{"examples": [{"x": [[1]]}]}', /Unexpected element type in feature: x expecting type: a number/],
    ['null', '{"examples": [{"x": null}]}', /Unexpected element type in feature: x/],
    ['strings mixed with numbers', '{"examples": [{"x": [1.5, "a"]}]}', /Unexpected element type in feature: x expecting type: float/],
    ['booleans mixed with floats', '{"examples": [{"x": [true, 1.5]}]}', /Unexpected element type in feature: x expecting type: int64/],
    ['an empty list', '{"examples": [{"x": []}]}', /feature "x" is an empty list; expected at least one value/],
    ['an integer beyond int64', '{"examples": [{"x": 9223372036854775808}]}', /is not an int64; expected an integer in \[-2\^63, 2\^63\)/],
    ['bad base64', '{"examples": [{"x": {"b64": "!!"}}]}', /invalid base64/],
  ];
  for (const [what, text, message] of rejects) {
    it(`rejects ${what} with INVALID_ARGUMENT`, () => {
      assert.throws(() => decodeTfExampleRequest(text), { code: 'INVALID_ARGUMENT', message });
    });
  }

  it('writes {"results"} with float32 scores and values the way TF Serving writes floats', () => {
    assert.equal(
      encodeTfClassifyResponse([
        [
          { label: '0', score: 0.1 },
          { label: 'a"b', score: 12 },
        ],
        [{ label: '', score: 1e-7 }],
      ]),
      '{\n  "results": [[["0", 0.1], ["a\\"b", 12.0]], [["", 1e-7]]]\n}',
    );
    assert.equal(encodeTfRegressResponse([42, 0.1, Number.NaN]), '{\n  "results": [42.0, 0.1, NaN]\n}');
    assert.deepEqual(JSON.parse(encodeTfRegressResponse([42, 2.5])), { results: [42, 2.5] });
  });
});
