import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeWithNumericArrays, JsonFloat32Array, JsonFloat64Array, jsonSerdeWithNumericArrays } from './json-numeric.ts';

const fields = new Map([['pixels', 'FP64' as const]]);
const decode = (text: string): Record<string, unknown> | undefined => decodeWithNumericArrays(Buffer.from(text), fields);

describe('JSON records with numeric arrays decoded into typed arrays', () => {
  it('gives each number exactly the double JSON.parse gives, and the rest of the record as JSON.parse does', () => {
    const numbers = [
      '0.0',
      '0.016203703',
      '-0.0',
      '0',
      '-12',
      '1.7976931348623157e308',
      '5e-324',
      '0.1',
      '0.30000000000000004',
      '123456789012345678',
      '9007199254740993',
      '1E+2',
      '2.5e-3',
      '0.000000000000000000000001',
      '-7.0e0',
      '3.141592653589793',
      '0.9166667',
    ];
    const text = `{"id":7, "name":"a \\"b\\" [1,2]", "nested": {"pixels": "x", "l": [1, {"a": "]"}]}, "pixels": [ ${numbers.join(' ,\n')} ] , "z": null }`;
    const got = decode(text);
    const want = JSON.parse(text) as Record<string, unknown>;
    assert.ok(got?.pixels instanceof JsonFloat64Array);
    assert.deepEqual(Array.from(got.pixels), want.pixels);
    for (const [i, v] of (want.pixels as number[]).entries()) assert.ok(Object.is(got.pixels[i], v), `element ${i}: ${numbers[i]}`);
    assert.deepEqual({ ...got, pixels: want.pixels }, want);
  });

  it('matches JSON.parse on a million random decimals of the kind models are fed', () => {
    let seed = 42;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const literals = Array.from({ length: 1_000_000 }, (_, i) => {
      const x = (rand() - 0.5) * 10 ** Math.floor(rand() * 8 - 4);
      return i % 3 === 0 ? String(Math.fround(x)) : i % 3 === 1 ? x.toFixed(Math.floor(rand() * 12)) : String(x);
    });
    const text = `{"pixels":[${literals.join(',')}]}`;
    const got = decode(text)?.pixels as Float64Array;
    const want = (JSON.parse(text) as { pixels: number[] }).pixels;
    let wrong = 0;
    for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) wrong++;
    assert.equal(wrong, 0);
  });

  it('rounds to float32 for an FP32 field as the predict step would, and writes either back as JSON.parse + JSON.stringify would', () => {
    const text = '{"id":1,"pixels":[0.5, 0.016203703,-3, 1e-3, 0.1234567890123456789]}';
    const f32 = decodeWithNumericArrays(Buffer.from(text), new Map([['pixels', 'FP32' as const]]));
    assert.ok(f32?.pixels instanceof JsonFloat32Array);
    assert.deepEqual(Array.from(f32.pixels), Array.from(Float32Array.from((JSON.parse(text) as { pixels: number[] }).pixels)));
    assert.equal(JSON.stringify(f32), JSON.stringify(JSON.parse(text)));
    assert.equal(JSON.stringify(decode(text)), JSON.stringify(f32));
    assert.equal(JSON.stringify({ a: new JsonFloat64Array([1, 2.5]) }), '{"a":[1,2.5]}');
  });

  it('leaves records outside the fast path to JSON.parse: nested or non-numeric arrays, repeated or escaped keys, no such field', () => {
    for (const text of [
      '{"pixels":[[1,2],[3,4]]}',
      '{"pixels":[1,"2"]}',
      '{"pixels":[1,null]}',
      '{"pixels":[1,2],"pixels":[3]}',
      '{"pix\\u0065ls":[1,2]}',
      '{"other":[1,2]}',
      '[1,2]',
      '{"pixels":[01]}',
      '{"pixels":[1.]}',
      '{"pixels":[-]}',
      '{"pixels":[1,2]} x',
    ]) {
      assert.equal(decode(text), undefined, text);
    }
  });

  it('the serde falls back to the JSON serde: same values for other shapes, same error for bad JSON and bad UTF-8', () => {
    const serde = jsonSerdeWithNumericArrays(new Map([['pixels', 'FP32' as const]]));
    assert.deepEqual(serde.deserialize(Buffer.from('{"pixels":[[1,2]]}')), { pixels: [[1, 2]] });
    assert.equal(serde.deserialize(null), null);
    assert.throws(() => serde.deserialize(Buffer.from('{"pixels":[1,2],')), { code: 'SERIALIZATION', message: /not valid JSON/ });
    assert.throws(() => serde.deserialize(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), {
      code: 'SERIALIZATION',
      message: /not valid UTF-8/,
    });
    assert.equal(serde.serialize(serde.deserialize(Buffer.from('{"pixels":[1,2.50]}')))?.toString(), '{"pixels":[1,2.5]}');
  });
});
