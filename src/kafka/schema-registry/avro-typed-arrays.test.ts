import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { avroCodec } from './schema-codecs.ts';
import { JsonFloat32Array, JsonFloat64Array } from './avro-typed-arrays.ts';

const schema = (items: string) =>
  JSON.stringify({
    type: 'record',
    name: 'Row',
    fields: [
      { name: 'id', type: 'string' },
      { name: 'pixels', type: { type: 'array', items } },
    ],
  });
const codec = (items: string) => avroCodec({ schemaType: 'AVRO', schema: schema(items), references: [] }, []);

describe('Avro arrays of float and double as typed arrays', () => {
  it('decodes an array of float into a Float32Array with the same values, whose JSON is a list', () => {
    const c = codec('float');
    const bytes = c.encode({ id: 'a', pixels: [0.5, 1.5, -2.25] });
    // id "a", then a block of 3 floats (count 3 → zigzag 0x06), 12 bytes little-endian, end of array.
    assert.equal(bytes.toString('hex'), '0261060000003f0000c03f000010c000');
    const value = c.decode(bytes, 0) as { pixels: Float32Array };
    assert.ok(value.pixels instanceof Float32Array);
    assert.ok(value.pixels instanceof JsonFloat32Array);
    assert.deepEqual(Array.from(value.pixels), [0.5, 1.5, -2.25]);
    assert.equal(JSON.stringify(value), '{"id":"a","pixels":[0.5,1.5,-2.25]}');
  });

  it('reads several blocks, including one with a negative count and a byte size (Avro 1.11 binary encoding)', () => {
    const c = codec('float');
    const f = (v: number) => {
      const b = Buffer.alloc(4);
      b.writeFloatLE(v);
      return b;
    };
    // Block 1: count 2 (0x04); block 2: count -1 (zigzag 0x01) and size 4 (0x08); end 0x00.
    const payload = Buffer.concat([Buffer.from([0x02, 0x62, 0x04]), f(1), f(2), Buffer.from([0x01, 0x08]), f(3), Buffer.from([0x00])]);
    const value = c.decode(payload, 0) as { id: string; pixels: Float32Array };
    assert.equal(value.id, 'b');
    assert.deepEqual(Array.from(value.pixels), [1, 2, 3]);
  });

  it('decodes an array of double into a Float64Array, and an empty array into an empty one', () => {
    const c = codec('double');
    const value = c.decode(c.encode({ id: 'c', pixels: [0.1, 1e300] }), 0) as { pixels: Float64Array };
    assert.ok(value.pixels instanceof JsonFloat64Array);
    assert.deepEqual(Array.from(value.pixels), [0.1, 1e300]);
    const empty = c.decode(c.encode({ id: 'c', pixels: [] }), 0) as { pixels: Float64Array };
    assert.equal(empty.pixels.length, 0);
  });

  it('writes a typed array the same bytes as the list of its numbers', () => {
    const c = codec('float');
    assert.deepEqual(c.encode({ id: 'a', pixels: new Float32Array([0.5, 1.5]) }), c.encode({ id: 'a', pixels: [0.5, 1.5] }));
  });

  it('reports a payload cut inside the floats as truncated, not as a shorter array', () => {
    const c = codec('float');
    const bytes = c.encode({ id: 'a', pixels: [1, 2, 3] });
    assert.throws(() => c.decode(bytes.subarray(0, bytes.length - 3), 0), { code: 'SERIALIZATION', message: /truncated/ });
  });

  it('leaves arrays of other types as JS arrays', () => {
    const c = codec('int');
    const value = c.decode(c.encode({ id: 'a', pixels: [1, 2] }), 0) as { pixels: number[] };
    assert.ok(Array.isArray(value.pixels));
  });
});

describe('records read from Avro written in other formats', () => {
  it('writes an Avro-decoded record with a Float32Array field in Protobuf and JSON Schema', async () => {
    const { protobufCodec, jsonSchemaCodec } = await import('./schema-codecs.ts');
    const read = codec('float').decode(codec('float').encode({ id: 'a', pixels: [0.5, 1.5] }), 0);
    const proto = protobufCodec(
      { schemaType: 'PROTOBUF', schema: 'syntax = "proto3"; message Row { string id = 1; repeated float pixels = 2; }', references: [] },
      [],
    );
    assert.deepEqual(proto.encode(read), proto.encode({ id: 'a', pixels: [0.5, 1.5] }));
    const json = jsonSchemaCodec(
      {
        schemaType: 'JSON',
        schema: JSON.stringify({ type: 'object', properties: { pixels: { type: 'array', items: { type: 'number' } } } }),
        references: [],
      },
      [],
    );
    assert.equal(json.encode(read).toString(), '{"id":"a","pixels":[0.5,1.5]}');
  });
});
