import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InflowError } from '../../errors.ts';
import type { ConsumedRecord } from '../../kafka/types.ts';
import { DeadLetterHeader, deadLetterRecord, recordBytes } from './dead-letter.ts';
import { Stage, StageError } from './stage-error.ts';

const input: ConsumedRecord = {
  topic: 'in',
  partition: 2,
  offset: 41n,
  key: Buffer.from('k'),
  value: Buffer.from('v'),
  headers: [['x-app', Buffer.from('kept')]],
  timestamp: 1_000,
};

function messageOf(message: string): string {
  const failure = new StageError('process', 'parse', new InflowError('INVALID_ARGUMENT', message));
  const record = deadLetterRecord('dlq', input, failure, Date.UTC(2026, 0, 2, 3, 4, 5, 6));
  const header = record.headers?.find(([k]) => k === 'inflow.error.message');
  assert.ok(header, 'the dead-letter record has an inflow.error.message header');
  return header[1].toString('utf8');
}

describe('dead-letter record', () => {
  it('keeps a message of up to 4096 characters whole', () => {
    const message = 'x'.repeat(4095) + 'y';
    assert.equal(messageOf(message), message);
  });

  it('truncates a longer message to at most 4096 characters, keeping its start and marking the cut', () => {
    const message = `field "amount" is not a number; ${'z'.repeat(100_000)}`;
    const kept = messageOf(message);
    assert.ok(kept.length <= 4096, `message header has ${kept.length} characters; the documented limit is 4096`);
    assert.ok(kept.length >= 4000, `message header has only ${kept.length} characters`);
    assert.ok(kept.startsWith('field "amount" is not a number; zzz'));
    assert.ok(kept.endsWith('…'), 'a cut message ends with an ellipsis');
  });

  it('stamps the failure time, not the record time, as ISO-8601', () => {
    const failure = new StageError('process', 'parse', new InflowError('INVALID_ARGUMENT', 'bad'));
    const record = deadLetterRecord('dlq', input, failure, Date.UTC(2026, 0, 2, 3, 4, 5, 6));
    const headers = Object.fromEntries((record.headers ?? []).map(([k, v]) => [k, v.toString()]));
    assert.equal(headers['inflow.error.time'], '2026-01-02T03:04:05.006Z');
    assert.equal(headers['x-app'], 'kept');
    assert.equal(record.timestamp, 1_000, 'the dead letter keeps the input record’s timestamp');
  });
});

const failure = new StageError(
  Stage.PREDICT,
  'predict-digit',
  new InflowError('INVALID_ARGUMENT', 'field "pixels" has 3 elements; expected 64'),
  'digits-mlp',
);

function inputOf(key: Buffer | null, value: Buffer | null, headers: Array<[string, Buffer]> = []): ConsumedRecord {
  return { topic: 'digits', partition: 3, offset: 1234n, key, value, headers, timestamp: 1_700_000_000_000 };
}

const header = (r: { headers?: readonly (readonly [string, Buffer])[] }, name: string): string | undefined =>
  r.headers?.find(([k]) => k === name)?.[1].toString();
const size = (r: { key?: Buffer | null; value?: Buffer | null; headers?: readonly (readonly [string, Buffer])[] }): number =>
  recordBytes(r.key ?? null, r.value ?? null, r.headers ?? []);

describe('dead-letter record size', () => {
  it('keeps a record that fits whole: original key, value and headers, no truncation header', () => {
    const r = deadLetterRecord(
      'dlq',
      inputOf(Buffer.from('k'), Buffer.from('{"pixels":[1,2,3]}'), [['trace', Buffer.from('t-1')]]),
      failure,
      0,
      1_000_000,
    );
    assert.deepEqual(r.value, Buffer.from('{"pixels":[1,2,3]}'));
    assert.equal(header(r, 'trace'), 't-1');
    assert.equal(header(r, DeadLetterHeader.TRUNCATED), undefined);
    assert.equal(header(r, DeadLetterHeader.CODE), 'INVALID_ARGUMENT');
  });

  it('cuts an oversized value to the limit, says so with the original size, and keeps the source position', () => {
    const value = Buffer.alloc(1_048_000, 0x31);
    const r = deadLetterRecord('dlq', inputOf(Buffer.from('key-1'), value, [['trace', Buffer.from('t-1')]]), failure, 0, 1_000_000);
    assert.ok(size(r) <= 1_000_000, `dead letter is ${size(r)} bytes`);
    assert.ok(size(r) > 1_000_000 - 100, 'the value keeps as much as fits');
    assert.equal(header(r, DeadLetterHeader.TRUNCATED), '1048000');
    assert.deepEqual(r.value, value.subarray(0, r.value?.length), 'the value is the original first bytes');
    assert.deepEqual(r.key, Buffer.from('key-1'));
    assert.equal(header(r, 'trace'), 't-1');
    assert.equal(header(r, DeadLetterHeader.TOPIC), 'digits');
    assert.equal(header(r, DeadLetterHeader.PARTITION), '3');
    assert.equal(header(r, DeadLetterHeader.OFFSET), '1234');
  });

  it('drops the original headers, then cuts the key, when the value alone does not make room', () => {
    const headers: Array<[string, Buffer]> = [
      ['big', Buffer.alloc(5000, 0x61)],
      ['trace', Buffer.from('t')],
    ];
    const r = deadLetterRecord('dlq', inputOf(Buffer.alloc(300, 0x6b), Buffer.alloc(100, 0x76), headers), failure, 0, 2000);
    assert.ok(size(r) <= 2000, `dead letter is ${size(r)} bytes`);
    assert.equal(header(r, DeadLetterHeader.HEADERS_DROPPED), '2');
    assert.equal(header(r, 'big'), undefined);
    assert.equal(header(r, DeadLetterHeader.TRUNCATED), undefined, 'with the headers gone the value fits whole');
    assert.equal(r.value?.length, 100);

    const k = deadLetterRecord('dlq', inputOf(Buffer.alloc(5000, 0x6b), Buffer.alloc(100, 0x76)), failure, 0, 2000);
    assert.ok(size(k) <= 2000, `dead letter is ${size(k)} bytes`);
    assert.equal(header(k, DeadLetterHeader.KEY_TRUNCATED), '5000');
    assert.equal(header(k, DeadLetterHeader.TRUNCATED), '100');
    assert.equal(header(k, DeadLetterHeader.OFFSET), '1234');
  });

  it('never exceeds the limit, whatever the sizes of key, value and headers', () => {
    fc.assert(
      fc.property(
        fc.nat(20_000),
        fc.nat(200_000),
        fc.array(fc.tuple(fc.string({ maxLength: 20 }), fc.nat(20_000)), { maxLength: 4 }),
        fc.integer({ min: 1024, max: 100_000 }),
        fc.string({ maxLength: 6000, unit: 'grapheme' }),
        (keyBytes, valueBytes, headerSizes, limit, message) => {
          const f = new StageError(Stage.DESERIALIZE, 'source', new InflowError('SERIALIZATION', message));
          const headers = headerSizes.map(([k, n]): [string, Buffer] => [k, Buffer.alloc(n)]);
          const r = deadLetterRecord('dlq', inputOf(Buffer.alloc(keyBytes), Buffer.alloc(valueBytes), headers), f, 0, limit);
          assert.ok(size(r) <= limit, `${size(r)} > ${limit}`);
          assert.equal(header(r, DeadLetterHeader.OFFSET), '1234');
        },
      ),
      { numRuns: 300 },
    );
  });
});
