import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { InflowError } from '../errors.ts';
import { createMemoryClient } from '../kafka/memory/memory-client.ts';
import { createSchemaRegistryClient } from '../kafka/schema-registry/registry-client.ts';
import type { KafkaProducer, ProducerRecord } from '../kafka/types.ts';
import { createEdgeMetrics } from './edge-metrics.ts';
import { type EdgeStore, openEdgeStore, type OutboxRecord } from './edge-store.ts';
import { forwardEncoder } from './forward-encoder.ts';
import { startOutboxForwarder } from './outbox-forwarder.ts';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function store(): EdgeStore {
  const dir = mkdtempSync(join(tmpdir(), 'inflow-edge-fwd-'));
  const s = openEdgeStore({ dir, maxRecords: 10_000, maxBytes: 1 << 24, overflow: 'drop-oldest' });
  cleanups.push(() => {
    s.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return s;
}

const rec = (i: number, size = 8): OutboxRecord => ({
  topic: i % 2 ? 'predictions' : 'readings',
  key: Buffer.from(`dev-${i % 3}`),
  value: Buffer.alloc(size, i % 256),
  headers: [['inflow-message-id', `m-${i}`]],
});

/** Resolves once `count` records were forwarded in total. */
function forwardedCounter(): { onForwarded: (n: number) => void; reach(count: number): Promise<void> } {
  let total = 0;
  const waiters: { count: number; resolve: () => void }[] = [];
  return {
    onForwarded(n) {
      total += n;
      for (const w of [...waiters]) {
        if (total < w.count) continue;
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    },
    reach: (count) => (total >= count ? Promise.resolve() : new Promise((resolve) => waiters.push({ count, resolve }))),
  };
}

/** A producer that fails while `down` is true, recording every attempt. */
function switchableProducer(inner: KafkaProducer) {
  const state = { down: false, attempts: 0, tooLarge: new Set<string>() };
  const producer: KafkaProducer = {
    async send(records: ProducerRecord[]) {
      state.attempts++;
      if (state.down) throw new InflowError('KAFKA_UNREACHABLE', 'producing to readings: connect ECONNREFUSED 127.0.0.1:9');
      const big = records.find((r) => state.tooLarge.has(r.headers?.[0]?.[1].toString() ?? ''));
      if (big) throw new InflowError('KAFKA_RECORD_TOO_LARGE', 'MESSAGE_TOO_LARGE');
      return inner.send(records);
    },
    beginTransaction: () => inner.beginTransaction(),
    close: () => inner.close(),
  };
  return { state, producer };
}

function memory() {
  const client = createMemoryClient();
  client.log.createTopic({ topic: 'readings', partitions: 2 }, true);
  client.log.createTopic({ topic: 'predictions', partitions: 2 }, true);
  cleanups.push(() => client.close());
  const ids = (topic: string): string[] =>
    [0, 1].flatMap((p) => client.log.read(topic, p, 0n, 10_000, false).records.map((r) => r.headers[0]?.[1].toString() ?? ''));
  return { client, ids };
}

describe('outbox forwarder', () => {
  it('forwards every record once, keyed, with its message id header, and empties the outbox', async () => {
    const s = store();
    const { client, ids } = memory();
    for (let i = 0; i < 25; i++) s.complete([{ records: [rec(i)] }]);
    const counter = forwardedCounter();
    const metrics = createEdgeMetrics();
    const fwd = startOutboxForwarder({
      store: s,
      producer: client.producer(),
      batchRecords: 10,
      retryMinMs: 1,
      retryMaxMs: 2,
      metrics,
      ...counter,
    });
    cleanups.push(() => fwd.close());
    await counter.reach(25);
    s.complete([{ records: [rec(25)] }]);
    fwd.wake();
    await counter.reach(26);
    assert.equal(s.stats().records, 0);
    assert.equal(ids('readings').length + ids('predictions').length, 26);
    assert.deepEqual(new Set([...ids('readings'), ...ids('predictions')]).size, 26);
    assert.equal(fwd.connected, true);
    assert.equal(
      (await metrics.forwarded.get()).values.reduce((a, v) => a + v.value, 0),
      26,
    );
  });

  it('keeps records while Kafka is down, backs off, and drains them in order once it is back', async () => {
    const s = store();
    const { client, ids } = memory();
    const { state, producer } = switchableProducer(client.producer());
    state.down = true;
    const counter = forwardedCounter();
    const fwd = startOutboxForwarder({ store: s, producer, batchRecords: 4, retryMinMs: 1, retryMaxMs: 4, random: () => 1, ...counter });
    cleanups.push(() => fwd.close());
    for (let i = 0; i < 10; i++) {
      s.complete([{ records: [{ ...rec(0), headers: [['inflow-message-id', `m-${i}`]] }] }]);
      fwd.wake();
    }
    assert.equal(s.stats().records, 10);
    assert.equal(fwd.connected, false);
    state.down = false;
    await counter.reach(10);
    assert.ok(state.attempts > 1, 'it retried');
    // All records share a key, so one partition: Kafka order equals outbox order.
    assert.deepEqual(
      ids('readings'),
      Array.from({ length: 10 }, (_, i) => `m-${i}`),
    );
    assert.equal(s.stats().records, 0);
    assert.equal(fwd.connected, true);
  });

  it('retries an outage through the shared backoff (no zero delay, capped) and logs one line when Kafka goes away and one when it is back', async () => {
    const s = store();
    const { client, ids } = memory();
    const { state, producer } = switchableProducer(client.producer());
    const delays: number[] = [];
    // Down for 12 backoffs (or 50 tries, should the forwarder not back off at all).
    Object.defineProperty(state, 'down', { get: () => delays.length < 12 && state.attempts <= 50 });
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { level: number; msg: string }) });
    const counter = forwardedCounter();
    const fwd = startOutboxForwarder({
      store: s,
      producer,
      batchRecords: 4,
      retryMinMs: 100,
      retryMaxMs: 1600,
      // The unluckiest jitter: full jitter would retry at once, every time.
      random: () => 0,
      sleep: async (ms) => {
        delays.push(ms);
        await new Promise((resolve) => setImmediate(resolve));
      },
      logger,
      ...counter,
    });
    cleanups.push(() => fwd.close());
    s.complete([{ records: [{ ...rec(0), headers: [['inflow-message-id', 'm-0']] }] }]);
    fwd.wake();
    await counter.reach(1);
    assert.deepEqual(delays, [50, 100, 200, 400, 800, 800, 800, 800, 800, 800, 800, 800]);
    assert.deepEqual(ids('readings'), ['m-0']);
    assert.deepEqual(
      lines.filter((l) => /Kafka/.test(l.msg)).map((l) => [l.level, l.msg.replace(/after [\d.]+ s/, 'after N s')]),
      [
        [40, 'Kafka (edge outbox) unreachable; retrying with backoff until it is back'],
        [30, 'Kafka (edge outbox) reachable again after N s'],
      ],
    );
  });

  it('discards only the record Kafka refuses for good and forwards its neighbours', async () => {
    const s = store();
    const { client, ids } = memory();
    const { state, producer } = switchableProducer(client.producer());
    state.tooLarge.add('m-3');
    const metrics = createEdgeMetrics();
    const counter = forwardedCounter();
    for (let i = 0; i < 6; i++) s.complete([{ records: [{ ...rec(0), headers: [['inflow-message-id', `m-${i}`]] }] }]);
    const fwd = startOutboxForwarder({ store: s, producer, batchRecords: 10, retryMinMs: 1, retryMaxMs: 2, metrics, ...counter });
    cleanups.push(() => fwd.close());
    await counter.reach(6);
    assert.deepEqual(ids('readings'), ['m-0', 'm-1', 'm-2', 'm-4', 'm-5']);
    assert.equal((await metrics.forwardDiscarded.get()).values[0]?.value, 1);
    assert.equal(s.stats().records, 0);
  });

  it('closes while Kafka is down without waiting for the backoff', async () => {
    const s = store();
    const { client } = memory();
    const { state, producer } = switchableProducer(client.producer());
    state.down = true;
    s.complete([{ records: [rec(0)] }]);
    const fwd = startOutboxForwarder({ store: s, producer, batchRecords: 10, retryMinMs: 60_000, retryMaxMs: 60_000 });
    const started = performance.now();
    await fwd.close();
    assert.ok(performance.now() - started < 1000);
    assert.equal(s.stats().records, 1, 'the record stays for the next start');
  });

  it('says once why a reachable cluster refuses the records (a missing topic), reports it connected with the reason, and clears it when they go', async () => {
    const s = store();
    const { client, ids } = memory();
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    let missing = true;
    let attempts = 0;
    const inner = client.producer();
    const producer: KafkaProducer = {
      async send(records) {
        attempts++;
        if (missing) throw new InflowError('KAFKA_TOPIC_NOT_FOUND', 'producing to readings: UNKNOWN_TOPIC_OR_PARTITION');
        return inner.send(records);
      },
      beginTransaction: () => inner.beginTransaction(),
      close: () => inner.close(),
    };
    const counter = forwardedCounter();
    const metrics = createEdgeMetrics();
    const fwd = startOutboxForwarder({
      store: s,
      producer,
      batchRecords: 4,
      retryMinMs: 1,
      retryMaxMs: 2,
      random: () => 1,
      metrics,
      logger,
      ...counter,
    });
    cleanups.push(() => fwd.close());
    s.complete([{ records: [rec(0)] }]);
    fwd.wake();
    while (attempts < 5) await new Promise((resolve) => setImmediate(resolve));
    const warnings = lines.filter((l) => l.code === 'KAFKA_TOPIC_NOT_FOUND');
    assert.equal(warnings.length, 1, JSON.stringify(lines));
    assert.match(String(warnings[0]?.msg), /no such topic/);
    assert.equal(fwd.connected, true);
    assert.deepEqual(fwd.lastError, { code: 'KAFKA_TOPIC_NOT_FOUND', message: 'producing to readings: UNKNOWN_TOPIC_OR_PARTITION' });
    assert.equal((await metrics.kafkaConnected.get()).values[0]?.value, 1);
    missing = false;
    await counter.reach(1);
    assert.equal(fwd.lastError, undefined);
    assert.deepEqual(ids('readings'), ['m-0']);
    assert.ok(lines.some((l) => l.msg === 'Kafka reachable: draining the outbox'));
  });

  it('blames the Schema Registry, by its URL, not Kafka, when the registry is away while Kafka is up', async () => {
    const s = store();
    const { client, ids } = memory();
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    // A real registry client; nothing listens on port 1, so every call is refused (ECONNREFUSED).
    const away = 'http://127.0.0.1:1';
    const avro = forwardEncoder(
      {
        predictions: 'predictions',
        batchRecords: 4,
        retryMinMs: 1,
        retryMaxMs: 2,
        formats: { predictions: { format: 'avro', schema: '"string"' } },
      },
      createSchemaRegistryClient({ url: away, retry: { attempts: 1 } }),
    );
    let registryUp = false;
    let encodes = 0;
    const metrics = createEdgeMetrics();
    const counter = forwardedCounter();
    const fwd = startOutboxForwarder({
      store: s,
      producer: client.producer(),
      batchRecords: 4,
      retryMinMs: 1,
      retryMaxMs: 2,
      metrics,
      logger,
      registryUrl: away,
      // Once "up", the records go as stored (the registry's wire format is another test's).
      encode: (r) => (r.topic !== 'predictions' || registryUp ? r.value : (encodes++, avro(r))),
      ...counter,
    });
    cleanups.push(() => fwd.close());
    s.complete([{ records: [rec(0)] }]); // readings: no format, Kafka takes it
    fwd.wake();
    await counter.reach(1);
    s.complete([{ records: [{ ...rec(1), value: Buffer.from('"a prediction"') }] }]); // predictions: Avro, the registry is needed
    fwd.wake();
    while (encodes < 5) await new Promise((resolve) => setImmediate(resolve));

    const warnings = lines.filter((l) => l.level === 40);
    assert.equal(warnings.length, 1, JSON.stringify(lines));
    assert.match(
      String(warnings[0]?.msg),
      /^Schema Registry at http:\/\/127\.0\.0\.1:1 unreachable: records wait in the outbox .*schemaRegistry\.url/,
    );
    assert.equal(warnings[0]?.code, 'UNAVAILABLE');
    assert.match(String(warnings[0]?.err), /schema registry at http:\/\/127\.0\.0\.1:1 is unreachable/);
    assert.deepEqual(
      lines.filter((l) => /Kafka.*unreachable/.test(String(l.msg))),
      [],
      'Kafka answered every produce: nothing says it is unreachable',
    );
    assert.equal(fwd.connected, true, 'Kafka is still connected');
    assert.equal((await metrics.kafkaConnected.get()).values[0]?.value, 1);
    assert.equal(fwd.registryConnected, false);
    assert.equal((await metrics.registryConnected.get()).values[0]?.value, 0);
    assert.equal(fwd.lastError?.code, 'UNAVAILABLE');
    assert.equal(s.stats().records, 1, 'the prediction waits in the outbox');

    registryUp = true;
    await counter.reach(2);
    assert.deepEqual(ids('predictions'), ['m-1']);
    assert.equal(fwd.registryConnected, true);
    assert.equal((await metrics.registryConnected.get()).values[0]?.value, 1);
    assert.equal(fwd.lastError, undefined);
    assert.ok(
      lines.some((l) => /^Schema Registry at http:\/\/127\.0\.0\.1:1 reachable again after [\d.]+ s/.test(String(l.msg))),
      JSON.stringify(lines),
    );
  });
});
