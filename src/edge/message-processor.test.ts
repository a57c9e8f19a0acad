import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { InflowError } from '../errors.ts';
import type { InferResponse } from '../serving/types.ts';
import type { DeviceMessage } from './device-message.ts';
import { createEdgeMetrics } from './edge-metrics.ts';
import { type EdgeStore, openEdgeStore } from './edge-store.ts';
import { createMessageProcessor, type MessageHandlers, type Publication } from './message-processor.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function store(): EdgeStore {
  const dir = mkdtempSync(join(tmpdir(), 'inflow-edge-proc-'));
  const s = openEdgeStore({ dir, maxRecords: 1000, maxBytes: 1 << 20, overflow: 'drop-oldest' });
  cleanups.push(() => (s.close(), rmSync(dir, { recursive: true, force: true })));
  return s;
}

/** A deferred value the test settles by hand. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** Handlers whose inference the test answers per message, by payload text. */
function handlers(): { h: MessageHandlers; answer: (payload: string, r: InferResponse | Error) => void } {
  const pending = new Map<string, ReturnType<typeof deferred<InferResponse>>>();
  const get = (p: string) => {
    let d = pending.get(p);
    if (!d) pending.set(p, (d = deferred<InferResponse>()));
    return d;
  };
  return {
    answer: (p, r) => (r instanceof Error ? get(p).reject(r) : get(p).resolve(r)),
    h: {
      decode: (topic, payload, seq): DeviceMessage => ({ device: topic, id: `${payload.toString()}:${seq}`, value: {}, inputs: {} }),
      infer: (m) => get(m.id.split(':')[0] ?? '').promise,
      predict: (m, r, ts) => ({ id: m.id, device: m.device, model: r.model, version: r.version, ts }),
      publications: (p) => [{ kind: 'prediction', topic: `out/${p.id.split(':')[0]}`, payload: '{}', qos: 1, retain: false }],
      errorPublication: (e) => ({ kind: 'error', topic: `err/${e.payload}`, payload: e.reason, qos: 1, retain: false }),
      records: (_t, payload) => [{ topic: 'readings', key: null, value: payload, headers: [] }],
      errorRecords: (_t, payload) => [{ topic: 'errors', key: null, value: payload, headers: [] }],
    },
  };
}

const response: InferResponse = { model: 'm', version: 1, outputs: {} };

/** Resolves after pending promise callbacks ran (no timers involved). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('message processor', () => {
  it('publishes and stores in arrival order even when inferences finish out of order', async () => {
    const s = store();
    const { h, answer } = handlers();
    const published: string[] = [];
    const p = createMessageProcessor({ handlers: h, store: s, maxInFlight: 10, publish: async (x) => void published.push(x.topic) });
    for (const name of ['a', 'b', 'c']) await p.admit('dev', Buffer.from(name), s.journal('dev', Buffer.from(name)), 0);
    answer('c', response);
    answer('b', response);
    await settle();
    assert.deepEqual(published, [], 'nothing leaves before the first message is done');
    answer('a', response);
    await settle();
    await settle();
    assert.deepEqual(published, ['out/a', 'out/b', 'out/c']);
    assert.deepEqual(
      s.peek(10).map((r) => r.value?.toString()),
      ['a', 'b', 'c'],
    );
    assert.equal(s.stats().journal, 0);
    assert.equal(p.inFlight, 0);
  });

  it('makes the next message wait while maxInFlight messages are in flight', async () => {
    const s = store();
    const { h, answer } = handlers();
    const p = createMessageProcessor({ handlers: h, store: s, maxInFlight: 2, publish: async () => undefined });
    await p.admit('dev', Buffer.from('a'), undefined, 0);
    await p.admit('dev', Buffer.from('b'), undefined, 0);
    let admitted = false;
    const third = p.admit('dev', Buffer.from('c'), undefined, 0).then(() => (admitted = true));
    await settle();
    assert.equal(admitted, false);
    answer('a', response);
    await third;
    assert.equal(p.inFlight, 2);
  });

  it('reports an inference failure on the error topic and as an error record, counted by reason', async () => {
    const s = store();
    const { h, answer } = handlers();
    const published: Publication[] = [];
    const metrics = createEdgeMetrics();
    const p = createMessageProcessor({ handlers: h, store: s, maxInFlight: 5, metrics, publish: async (x) => void published.push(x) });
    await p.admit('dev', Buffer.from('bad'), s.journal('dev', Buffer.from('bad')), 0);
    answer('bad', new InflowError('INVALID_ARGUMENT', 'input "x": expected FP32 with shape [-1, 64], got INT32 [1, 3]'));
    await settle();
    await settle();
    assert.deepEqual(
      published.map((x) => [x.kind, x.topic, x.payload]),
      [['error', 'err/bad', 'model']],
    );
    assert.deepEqual(
      s.peek(5).map((r) => r.topic),
      ['errors'],
    );
    assert.deepEqual(
      (await metrics.rejected.get()).values.map((v) => [v.labels.reason, v.value]),
      [['model', 1]],
    );
  });

  it('leaves a message journaled when its publish fails because the agent is closing', async () => {
    const s = store();
    const { h, answer } = handlers();
    const gate = deferred<undefined>();
    const p = createMessageProcessor({ handlers: h, store: s, maxInFlight: 5, publish: () => gate.promise });
    const id = s.journal('dev', Buffer.from('a'));
    await p.admit('dev', Buffer.from('a'), id, 0);
    answer('a', response);
    await settle();
    const closed = p.close(1000);
    gate.reject(new Error('client disconnecting'));
    await closed;
    assert.deepEqual(
      s.pendingJournal().map((j) => j.id),
      [id],
    );
    assert.equal(s.stats().records, 0);
    await assert.rejects(p.admit('dev', Buffer.from('b'), undefined, 0), { code: 'UNAVAILABLE' });
  });
});
