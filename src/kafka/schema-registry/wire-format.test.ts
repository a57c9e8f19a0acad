import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeMessageIndexes, encodeMessageIndexes, frameHeader, readFrame } from './wire-format.ts';

describe('Confluent wire format', () => {
  it('frames a schema id as magic byte 0 and a big-endian u32', () => {
    assert.equal(frameHeader(0x01020304).toString('hex'), '0001020304');
    assert.deepEqual(readFrame(Buffer.from('00000000ffaa', 'hex')), { schemaId: 255, offset: 5 });
  });

  it('refuses a record without the magic byte, or shorter than the header, and shows its first bytes', () => {
    assert.throws(() => readFrame(Buffer.from('{"a":1}')), {
      code: 'SERIALIZATION',
      message: /expected magic byte 0.*7 bytes starting 0x7b2261/,
    });
    assert.throws(() => readFrame(Buffer.from('0000', 'hex')), { code: 'SERIALIZATION', message: /got 2 bytes/ });
    assert.throws(() => readFrame(Buffer.alloc(0)), { code: 'SERIALIZATION', message: /starting \(empty\)/ });
  });

  it('writes Protobuf message indexes as Confluent does: [0] is 00, others zigzag count then zigzag indexes', () => {
    // Golden bytes from Confluent's MessageIndexes.toByteArray / the Python serializer.
    assert.equal(encodeMessageIndexes([0]).toString('hex'), '00');
    assert.equal(encodeMessageIndexes([1]).toString('hex'), '0202');
    assert.equal(encodeMessageIndexes([2]).toString('hex'), '0204');
    assert.equal(encodeMessageIndexes([0, 1]).toString('hex'), '040002');
    assert.equal(encodeMessageIndexes([70]).toString('hex'), '028c01');
    assert.equal(frameHeader(7, [1]).toString('hex'), '00000000070202');
  });

  it('reads message indexes back, including the long form of [0] and multi-byte varints', () => {
    for (const path of [[0], [1], [3, 0, 2], [70], [300, 5]]) {
      const bytes = Buffer.concat([encodeMessageIndexes(path), Buffer.from([0xaa])]);
      assert.deepEqual(decodeMessageIndexes(bytes, 0), { indexes: path, offset: bytes.length - 1 });
    }
    assert.deepEqual(decodeMessageIndexes(Buffer.from('0200', 'hex'), 0), { indexes: [0], offset: 2 });
  });

  it('refuses message indexes that are truncated, negative or absurdly many', () => {
    assert.throws(() => decodeMessageIndexes(Buffer.from('0480', 'hex'), 0), { code: 'SERIALIZATION', message: /truncated/ });
    assert.throws(() => decodeMessageIndexes(Buffer.from('0201', 'hex'), 0), { code: 'SERIALIZATION', message: /negative/ });
    assert.throws(() => decodeMessageIndexes(Buffer.from('01', 'hex'), 0), { code: 'SERIALIZATION', message: /count -1/ });
    assert.throws(() => decodeMessageIndexes(Buffer.from('f403', 'hex'), 0), { code: 'SERIALIZATION', message: /count 250/ });
  });
});
