import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errorCodes, GrpcStatus, InflowError } from './errors.ts';

describe('InflowError', () => {
  it('maps every code to an HTTP status, a gRPC status and a retriable flag', () => {
    for (const [code, spec] of Object.entries(errorCodes)) {
      assert.ok(spec.http >= 400 && spec.http < 600, `${code} has an error HTTP status`);
      assert.ok(Object.values(GrpcStatus).includes(spec.grpc), `${code} has a known gRPC status`);
      assert.notEqual(spec.grpc, GrpcStatus.OK, `${code} is not OK`);
      assert.equal(typeof spec.retriable, 'boolean');
    }
  });

  it('reads status and retriability from its code', () => {
    const error = new InflowError('RESOURCE_EXHAUSTED', 'queue full: 1024 requests waiting, limit 1024');
    assert.equal(error.httpStatus, 429);
    assert.equal(error.grpcStatus, GrpcStatus.RESOURCE_EXHAUSTED);
    assert.equal(error.retriable, true);
    assert.equal(new InflowError('INVALID_ARGUMENT', 'x').retriable, false);
  });

  it('returns an InflowError unchanged from from()', () => {
    const error = new InflowError('NOT_FOUND', 'model "m" not found');
    assert.equal(InflowError.from(error), error);
  });

  it('turns aborts and timeouts into CANCELLED and DEADLINE_EXCEEDED', () => {
    const controller = new AbortController();
    controller.abort();
    assert.equal(InflowError.from(controller.signal.reason).code, 'CANCELLED');
    assert.equal(InflowError.from(new DOMException('took too long', 'TimeoutError')).code, 'DEADLINE_EXCEEDED');
  });

  it('wraps unknown errors as INTERNAL (or a given fallback) and keeps the cause', () => {
    const cause = new Error('boom');
    const wrapped = InflowError.from(cause);
    assert.equal(wrapped.code, 'INTERNAL');
    assert.equal(wrapped.cause, cause);
    assert.equal(InflowError.from('text', 'KAFKA_ERROR').code, 'KAFKA_ERROR');
    assert.match(InflowError.from(42).message, /42/);
  });

  it('recognises codes of the closed table only', () => {
    assert.equal(InflowError.isCode('NOT_FOUND'), true);
    assert.equal(InflowError.isCode('NOPE'), false);
    assert.equal(InflowError.isCode(3), false);
  });
});
