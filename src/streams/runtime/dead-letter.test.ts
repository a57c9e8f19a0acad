import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InflowError } from '../../errors.ts';
import type { ConsumedRecord } from '../../kafka/types.ts';
import { deadLetterRecord } from './dead-letter.ts';
import { StageError } from './record-processor.ts';

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
