import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MultipleErrors, NetworkError, ProtocolError, UserError } from '@platformatic/kafka';
import { InflowError } from '../../errors.ts';
import { toInflowError } from './kafka-errors.ts';

describe('toInflowError', () => {
  it('finds the Kafka protocol error inside nested aggregate errors', () => {
    const nested = new MultipleErrors('Producing messages failed.', [
      new MultipleErrors('response', [new ProtocolError('MESSAGE_TOO_LARGE')]),
    ]);
    const error = toInflowError(nested, 'producing to big');
    assert.equal(error.code, 'KAFKA_RECORD_TOO_LARGE');
    assert.match(error.message, /^producing to big: MESSAGE_TOO_LARGE/);
    assert.match(error.message, /max\.message\.bytes/);
  });

  it('maps fencing, rebalances and missing topics', () => {
    assert.equal(toInflowError(new ProtocolError('PRODUCER_FENCED'), 'x').code, 'KAFKA_FENCED');
    assert.equal(toInflowError(new ProtocolError('INVALID_PRODUCER_EPOCH'), 'x').code, 'KAFKA_FENCED');
    assert.equal(toInflowError(new ProtocolError('REBALANCE_IN_PROGRESS'), 'x').code, 'KAFKA_REBALANCE');
    assert.equal(toInflowError(new ProtocolError('UNKNOWN_TOPIC_OR_PARTITION'), 'x').code, 'KAFKA_TOPIC_NOT_FOUND');
    assert.equal(toInflowError(new UserError('Unknown topic orders.'), 'x').code, 'KAFKA_TOPIC_NOT_FOUND');
  });

  it('maps network errors to KAFKA_UNREACHABLE (retriable) with the fix', () => {
    const error = toInflowError(new NetworkError('Connection refused'), 'connecting');
    assert.equal(error.code, 'KAFKA_UNREACHABLE');
    assert.equal(error.retriable, true);
    assert.match(error.message, /KAFKA_BOOTSTRAP_SERVERS/);
  });

  it('keeps InflowErrors and falls back to KAFKA_ERROR with the cause', () => {
    const own = new InflowError('NOT_FOUND', 'x');
    assert.equal(toInflowError(own, 'ctx'), own);
    const cause = new Error('weird');
    const wrapped = toInflowError(cause, 'ctx');
    assert.equal(wrapped.code, 'KAFKA_ERROR');
    assert.equal(wrapped.cause, cause);
  });
});
