import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { InflowError } from '../errors.ts';
import { createCallDeadline } from './call-deadline.ts';

describe('call deadline', () => {
  it('aborts after timeoutMs with a TimeoutError that maps to DEADLINE_EXCEEDED and names the call', async () => {
    const deadline = createCallDeadline(1, 'inference of digits');
    await once(deadline.signal, 'abort');
    const error = InflowError.from(deadline.signal.reason);
    assert.equal(error.code, 'DEADLINE_EXCEEDED');
    assert.equal(error.message, 'inference of digits took longer than its timeout (1 ms)');
  });

  it('aborts with the linked signal and its reason, also when that one aborted before', () => {
    const linked = new AbortController();
    const deadline = createCallDeadline(60_000, 'call', linked.signal);
    linked.abort('shutting down');
    assert.equal(deadline.signal.reason, 'shutting down');
    deadline.end();
    const early = createCallDeadline(60_000, 'call', linked.signal);
    assert.equal(early.signal.aborted, true);
    early.end();
  });

  it('after end(), neither the timer nor the linked signal reaches the call', () => {
    const linked = new AbortController();
    const deadline = createCallDeadline(60_000, 'call', linked.signal);
    deadline.end();
    linked.abort();
    assert.equal(deadline.signal.aborted, false);
    deadline.end();
  });
});
