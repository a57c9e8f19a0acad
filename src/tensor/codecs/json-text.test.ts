import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatFloat32, formatFloat64, parseJsonText } from './json-text.ts';

describe('JSON text', () => {
  it('parses standard JSON from text and from UTF-8 bytes', () => {
    assert.deepEqual(parseJsonText('{"a":[1,2.5,"x"]}'), { a: [1, 2.5, 'x'] });
    assert.deepEqual(parseJsonText(new TextEncoder().encode('{"é":true}')), { é: true });
  });

  it('accepts bare NaN and Infinity tokens but leaves them alone inside strings', () => {
    const value = parseJsonText('{"v":[NaN, Infinity, -Infinity, 1], "s":"NaN \\"Infinity\\""}') as { v: number[]; s: string };
    assert.ok(Number.isNaN(value.v[0]));
    assert.deepEqual(value.v.slice(1), [Infinity, -Infinity, 1]);
    assert.equal(value.s, 'NaN "Infinity"');
    assert.deepEqual(parseJsonText('[Infinity]'), [Infinity]);
  });

  it('reports malformed JSON as INVALID_ARGUMENT with the parser message', () => {
    assert.throws(() => parseJsonText('{"a":'), { code: 'INVALID_ARGUMENT', message: /^JSON Parse error: / });
    assert.throws(() => parseJsonText('[NaNa]'), { code: 'INVALID_ARGUMENT', message: /^JSON Parse error: / });
  });

  it('writes floats as TF Serving does: .0 on whole numbers, bare non-finite tokens', () => {
    assert.deepEqual([2.5, 3, -0, 1e21, 1e-7].map(formatFloat64), ['2.5', '3.0', '-0.0', '1e+21', '1e-7']);
    assert.deepEqual([Number.NaN, Infinity, -Infinity].map(formatFloat32), ['NaN', 'Infinity', '-Infinity']);
    assert.equal(formatFloat32(Math.fround(0.1)), '0.1');
    assert.equal(formatFloat32(Math.fround(123456789)), '123456792.0');
    assert.equal(formatFloat32(Math.fround(1 / 3)), '0.333333343');
    assert.equal(formatFloat32(Math.fround(2.5e-5)), '0.000025');
  });

  it('float text reads back as the same float32 / float64 value', () => {
    fc.assert(
      fc.property(fc.float({ noNaN: true }), (v) => Object.is(Math.fround(Number(formatFloat32(v).replace('Infinity', '1e999'))), v)),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(fc.double({ noNaN: true }), (v) => Object.is(Number(formatFloat64(v).replace('Infinity', '1e999')), v)),
      { numRuns: 200 },
    );
  });
});
