import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bytesSerde, jsonSerde, stringSerde, tensorSerde } from './serdes.ts';

describe('serdes', () => {
  it('passes bytes through and keeps null as Kafka null', () => {
    const b = Buffer.from([1, 2, 3]);
    assert.equal(bytesSerde.deserialize(bytesSerde.serialize(b)), b);
    assert.equal(stringSerde.serialize(null), null);
    assert.equal(jsonSerde().deserialize(null), null);
  });

  it('round-trips UTF-8 text and rejects invalid UTF-8', () => {
    assert.equal(stringSerde.deserialize(stringSerde.serialize('héllo ✓')), 'héllo ✓');
    assert.throws(() => stringSerde.deserialize(Buffer.from([0xff, 0xfe])), { code: 'SERIALIZATION', message: /not valid UTF-8/ });
  });

  it('round-trips JSON and says what is wrong with invalid JSON', () => {
    const serde = jsonSerde<{ a: number[] }>();
    assert.deepEqual(serde.deserialize(serde.serialize({ a: [1, 2] })), { a: [1, 2] });
    assert.throws(() => serde.deserialize(Buffer.from('{"a": [1, 2')), {
      code: 'SERIALIZATION',
      message: /not valid JSON: .*got "\{\\"a\\": \[1, 2"/,
    });
  });

  it('matches the golden binary tensor layout', () => {
    const bytes = tensorSerde.serialize({ dtype: 'FP32', shape: [1, 2], data: new Float32Array([1.5, -2]) });
    // "IT", version 1, FP32 (11), ndim 2, dims 1 and 2 (i64 LE), then 1.5f and -2.0f LE.
    assert.equal(bytes?.toString('hex'), '4954010b02000000' + '0100000000000000' + '0200000000000000' + '0000c03f' + '000000c0');
  });

  it('round-trips every fixed-size dtype, viewing aligned data without a copy', () => {
    const cases = [
      { dtype: 'BOOL', data: new Uint8Array([1, 0, 1]) },
      { dtype: 'INT8', data: new Int8Array([-1, 2, 3]) },
      { dtype: 'UINT16', data: new Uint16Array([1, 65535, 3]) },
      { dtype: 'INT32', data: new Int32Array([-7, 0, 7]) },
      { dtype: 'INT64', data: new BigInt64Array([-1n, 0n, 9007199254740993n]) },
      { dtype: 'UINT64', data: new BigUint64Array([0n, 1n, 18446744073709551615n]) },
      { dtype: 'FP16', data: new Uint16Array([0x3c00, 0, 0xc000]) },
      { dtype: 'FP64', data: new Float64Array([Math.PI, -0, 1e300]) },
    ] as const;
    for (const c of cases) {
      const wire = tensorSerde.serialize({ dtype: c.dtype, shape: [3], data: c.data }) as Buffer;
      const aligned = Buffer.from(new Uint8Array(wire).buffer);
      const back = tensorSerde.deserialize(aligned);
      assert.equal(back?.dtype, c.dtype);
      assert.deepEqual(back?.shape, [3]);
      assert.deepEqual([...(back?.data ?? [])], [...c.data], c.dtype);
      assert.equal(back?.data.buffer, aligned.buffer, `${c.dtype} is a view, not a copy`);
    }
  });

  it('copies when the record bytes are not aligned for the dtype', () => {
    const wire = tensorSerde.serialize({ dtype: 'FP32', shape: [2], data: new Float32Array([1, 2]) }) as Buffer;
    const shifted = Buffer.concat([Buffer.from([0]), wire]).subarray(1);
    assert.deepEqual([...(tensorSerde.deserialize(shifted)?.data ?? [])], [1, 2]);
  });

  it('rejects malformed tensors with what was expected', () => {
    const good = tensorSerde.serialize({ dtype: 'FP32', shape: [2, 2], data: new Float32Array(4) }) as Buffer;
    assert.throws(() => tensorSerde.deserialize(Buffer.from('{"x":1}')), { code: 'SERIALIZATION', message: /missing "IT" header/ });
    assert.throws(() => tensorSerde.deserialize(good.subarray(0, good.length - 1)), { message: /needs 16 data bytes, the record has 15/ });
    const negative = Buffer.from(good);
    negative.writeBigInt64LE(-1n, 8);
    assert.throws(() => tensorSerde.deserialize(negative), { message: /dimension 0 is -1/ });
    const huge = Buffer.from(good);
    huge.writeBigInt64LE(1n << 40n, 8);
    assert.throws(() => tensorSerde.deserialize(huge), { message: /dimension 0 is 1099511627776/ });
    const badType = Buffer.from(good);
    badType.writeUInt8(99, 3);
    assert.throws(() => tensorSerde.deserialize(badType), { message: /dtype code 99/ });
    assert.throws(() => tensorSerde.serialize({ dtype: 'FP32', shape: [3], data: new Float32Array(2) }), { code: 'INVALID_ARGUMENT' });
  });
});
