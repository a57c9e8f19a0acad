import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { InflowError } from '../errors.ts';
import { backoffDelay, createConnectionMonitor, isTransient, reportTo, retryTransient } from './connection.ts';

describe('riding out broker outages', () => {
  it('backs off exponentially from 100 ms, capped at 5 s, with jitter that never collapses to zero', () => {
    const low = (a: number) => backoffDelay(a, { random: () => 0 });
    const high = (a: number) => backoffDelay(a, { random: () => 0.999999 });
    assert.deepEqual([0, 1, 2, 3].map(low), [50, 100, 200, 400]);
    assert.deepEqual([0, 1, 2, 3].map(high), [100, 200, 400, 800]);
    assert.equal(low(40), 2500);
    assert.equal(high(40), 5000);
    assert.equal(backoffDelay(3, { initialMs: 10, maxMs: 50, random: () => 0.5 }), 38);
  });

  it('retries what the broker being away explains, never a refused login, fencing or bad configuration', () => {
    for (const code of ['KAFKA_UNREACHABLE', 'DEADLINE_EXCEEDED', 'UNAVAILABLE', 'KAFKA_ERROR'] as const) {
      assert.equal(isTransient(new InflowError(code, 'x')), true, code);
    }
    for (const code of ['UNAUTHENTICATED', 'PERMISSION_DENIED', 'KAFKA_FENCED', 'INVALID_CONFIG', 'KAFKA_TOPIC_NOT_FOUND'] as const) {
      assert.equal(isTransient(new InflowError(code, 'x')), false, code);
    }
  });

  it('keeps retrying through any number of failures and logs one line per state change, not per retry', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => lines.push((JSON.parse(l) as { msg: string }).msg) });
    const monitor = createConnectionMonitor({ logger, name: 'Kafka at test' });
    const states: string[] = [];
    monitor.onChange((c) => states.push(c.state));
    const waits: number[] = [];
    let calls = 0;
    const value = await retryTransient(
      async () => {
        calls++;
        if (calls <= 50) throw new InflowError('KAFKA_UNREACHABLE', 'Connection refused');
        return 'done';
      },
      { monitor, random: () => 0, sleep: async (ms) => void waits.push(ms) },
    );
    assert.equal(value, 'done');
    assert.equal(calls, 51);
    assert.equal(Math.max(...waits), 2500);
    assert.deepEqual(states, ['disconnected', 'connected']);
    assert.equal(lines.length, 2);
    assert.match(lines[0] ?? '', /Kafka at test unreachable; retrying with backoff/);
    assert.match(lines[1] ?? '', /Kafka at test reachable again after/);
  });

  it('passes an error retrying cannot fix straight through, without touching the state', async () => {
    const monitor = createConnectionMonitor();
    let calls = 0;
    await assert.rejects(
      retryTransient(
        async () => {
          calls++;
          throw new InflowError('UNAUTHENTICATED', 'SASL authentication failed');
        },
        { monitor },
      ),
      { code: 'UNAUTHENTICATED' },
    );
    assert.equal(calls, 1);
    assert.equal(monitor.state, 'connected');
  });

  it('stops retrying when its signal aborts, with CANCELLED', async () => {
    const stop = new AbortController();
    await assert.rejects(
      retryTransient(
        async () => {
          stop.abort();
          throw new InflowError('KAFKA_UNREACHABLE', 'Connection refused');
        },
        { signal: stop.signal },
      ),
      { code: 'CANCELLED' },
    );
  });

  it('gives up after maxWaitMs with the last transient error, measured on an injected clock', async () => {
    let clock = 0;
    let calls = 0;
    await assert.rejects(
      retryTransient(
        async () => {
          calls++;
          throw new InflowError('KAFKA_UNREACHABLE', `Connection refused (try ${calls})`);
        },
        { maxWaitMs: 3000, random: () => 0, now: () => clock, sleep: async (ms) => void (clock += ms) },
      ),
      { code: 'KAFKA_UNREACHABLE' },
    );
    // Delays 50, 100, 200, 400, 800, 1600 (equal jitter at 0): 1550 ms slept before the 6th try; the next wait passes 3000.
    assert.equal(calls, 6);
    assert.ok(clock <= 3000, `slept ${clock} ms`);
  });

  it('tells onRetry of each retry with its delay, and reports every outcome to each monitor of reportTo', async () => {
    const own = createConnectionMonitor();
    const shared = createConnectionMonitor();
    const retries: Array<[string, number, number]> = [];
    let calls = 0;
    await retryTransient(
      async () => {
        if (++calls <= 3) throw new InflowError('KAFKA_UNREACHABLE', 'Connection refused');
        assert.deepEqual([own.state, shared.state], ['disconnected', 'disconnected']);
        return calls;
      },
      {
        monitor: reportTo(own, undefined, shared),
        random: () => 0,
        sleep: async () => undefined,
        onRetry: (e, delay, attempt) => void retries.push([e.code, delay, attempt]),
      },
    );
    assert.deepEqual(retries, [
      ['KAFKA_UNREACHABLE', 50, 0],
      ['KAFKA_UNREACHABLE', 100, 1],
      ['KAFKA_UNREACHABLE', 200, 2],
    ]);
    assert.deepEqual([own.state, shared.state], ['connected', 'connected']);
  });
});
