import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createManualClock } from '../serving/clock.ts';
import { createCircuitBreaker } from './circuit-breaker.ts';

const MS = 1000;

function fail(breaker: ReturnType<typeof createCircuitBreaker>, times: number): void {
  for (let i = 0; i < times; i++) {
    const permit = breaker.tryAcquire();
    assert.ok(permit, `attempt ${i} gets a permit`);
    permit.failure();
  }
}

describe('circuit breaker', () => {
  it('opens after failureThreshold consecutive failures and then refuses permits', () => {
    const breaker = createCircuitBreaker({ failureThreshold: 3, resetTimeoutMs: 100 }, createManualClock());
    fail(breaker, 2);
    assert.equal(breaker.state, 'closed');
    fail(breaker, 1);
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.tryAcquire(), undefined);
    assert.equal(breaker.retryAfterMs(), 100);
  });

  it('counts only consecutive failures: a success in between starts over', () => {
    const breaker = createCircuitBreaker({ failureThreshold: 3 }, createManualClock());
    fail(breaker, 2);
    breaker.tryAcquire()?.success();
    fail(breaker, 2);
    assert.equal(breaker.state, 'closed');
    assert.equal(breaker.consecutiveFailures, 2);
  });

  it('goes half-open after resetTimeoutMs, lets halfOpenMaxCalls trials through, and closes when a trial succeeds', () => {
    const clock = createManualClock();
    const breaker = createCircuitBreaker({ failureThreshold: 1, resetTimeoutMs: 100, halfOpenMaxCalls: 1 }, clock);
    fail(breaker, 1);
    clock.advance(99 * MS);
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.retryAfterMs(), 1);
    clock.advance(1 * MS);
    assert.equal(breaker.state, 'half-open');
    const trial = breaker.tryAcquire();
    assert.ok(trial);
    assert.equal(breaker.tryAcquire(), undefined, 'a second call while the trial runs fails fast');
    trial.success();
    assert.equal(breaker.state, 'closed');
    assert.ok(breaker.tryAcquire());
  });

  it('opens again for a whole resetTimeoutMs when the trial fails', () => {
    const clock = createManualClock();
    const breaker = createCircuitBreaker({ failureThreshold: 1, resetTimeoutMs: 100 }, clock);
    fail(breaker, 1);
    clock.advance(150 * MS);
    breaker.tryAcquire()?.failure();
    assert.equal(breaker.state, 'open');
    clock.advance(99 * MS);
    assert.equal(breaker.state, 'open');
    clock.advance(1 * MS);
    assert.equal(breaker.state, 'half-open');
  });

  it('frees the trial slot when a trial is released (cancelled) without changing the state', () => {
    const clock = createManualClock();
    const breaker = createCircuitBreaker({ failureThreshold: 1, resetTimeoutMs: 10 }, clock);
    fail(breaker, 1);
    clock.advance(10 * MS);
    breaker.tryAcquire()?.release();
    assert.equal(breaker.state, 'half-open');
    assert.ok(breaker.tryAcquire(), 'the slot is free again');
  });

  it('ignores a second report on the same permit', () => {
    const breaker = createCircuitBreaker({ failureThreshold: 2 }, createManualClock());
    const permit = breaker.tryAcquire();
    permit?.failure();
    permit?.failure();
    assert.equal(breaker.consecutiveFailures, 1);
  });
});
