/**
 * The edge forwarder writing Avro under the Schema Registry (`forward.formats`), on the real
 * broker and registry: while the registry is unreachable the records wait in the outbox (an
 * outage, not their fault); once it answers, every prediction reaches Kafka framed with the
 * registered schema, and one the schema cannot hold is discarded (counted) so the rest can go.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { createEdgeMetrics } from '../../src/edge/edge-metrics.ts';
import { openEdgeStore } from '../../src/edge/edge-store.ts';
import { forwardEncoder } from '../../src/edge/forward-encoder.ts';
import { startOutboxForwarder } from '../../src/edge/outbox-forwarder.ts';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { createSchemaRegistryClient } from '../../src/kafka/schema-registry/registry-client.ts';
import { createRegistrySerde } from '../../src/kafka/schema-registry/registry-serde.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import { registryOrSkip } from '../setup/schema-registry.ts';
import { createTopics, readToEnd, uniqueName, waitFor } from '../streams/fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const url = registryOrSkip();
const skip = !bootstrap ? 'no Kafka broker' : !url ? 'no Schema Registry' : false;

const PREDICTION = JSON.stringify({
  type: 'record',
  name: 'EdgePrediction',
  namespace: 'inflow.it',
  fields: [
    { name: 'device', type: 'string' },
    { name: 'label', type: 'long' },
    { name: 'probabilities', type: { type: 'array', items: 'float' } },
  ],
});

describe('the edge forwarder on Schema Registry formats', { skip }, () => {
  let client: KafkaClient;
  let dir: string;
  before(() => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'registry-edge-it' });
    dir = mkdtempSync(join(tmpdir(), 'inflow-edge-avro-'));
  });
  after(async () => {
    await client?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps predictions in the outbox while the registry is away, then forwards them in Avro and discards one the schema cannot hold', async () => {
    const topic = uniqueName('edge-predictions');
    await createTopics(client, [topic], 2);
    const store = openEdgeStore({ dir, maxRecords: 10_000, maxBytes: 1 << 24, overflow: 'drop-oldest' });
    const values = Array.from({ length: 20 }, (_, i) => ({ device: `dev-${i % 3}`, label: i % 10, probabilities: [0.25, 0.75] }));
    const json = values.map((v) => JSON.stringify(v));
    json.splice(7, 0, JSON.stringify({ device: 'dev-x', label: 'not a number', probabilities: [] }));
    store.complete([
      {
        records: json.map((v, i) => ({
          topic,
          key: Buffer.from(`k${i}`),
          value: Buffer.from(v),
          headers: [['inflow-message-id', `m-${i}`]],
        })),
      },
    ]);
    const forward = {
      predictions: topic,
      batchRecords: 8,
      retryMinMs: 5,
      retryMaxMs: 20,
      formats: { predictions: { format: 'avro' as const, schema: PREDICTION } },
    };
    const producer = client.producer({ idempotent: true, acks: 'all' });
    try {
      // The registry unreachable (nothing listens on port 1): an outage, the records stay; the
      // log blames the registry, by its URL, not Kafka (which is up).
      const lines: Array<{ level: number; msg: string }> = [];
      const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { level: number; msg: string }) });
      const away = startOutboxForwarder({
        store,
        producer,
        logger,
        registryUrl: 'http://127.0.0.1:1',
        batchRecords: 8,
        retryMinMs: 5,
        retryMaxMs: 20,
        encode: forwardEncoder(forward, createSchemaRegistryClient({ url: 'http://127.0.0.1:1', retry: { attempts: 1 } })),
      });
      const error = await waitFor('the forwarder to meet the unreachable registry', () => away.lastError);
      await away.close();
      assert.equal(error.code, 'UNAVAILABLE');
      const warnings = lines.filter((l) => l.level >= 40).map((l) => l.msg);
      assert.equal(warnings.length, 1, JSON.stringify(warnings));
      assert.match(warnings[0] ?? '', /^Schema Registry at http:\/\/127\.0\.0\.1:1 unreachable/);
      assert.equal(away.registryConnected, false);
      assert.equal(store.stats().records, json.length, 'nothing was dropped while the registry was away');

      const registry = createSchemaRegistryClient({ url: url as string });
      const metrics = createEdgeMetrics();
      let forwarded = 0;
      const fwd = startOutboxForwarder({
        store,
        producer,
        batchRecords: 8,
        retryMinMs: 5,
        retryMaxMs: 20,
        metrics,
        onForwarded: (n) => (forwarded += n),
        encode: forwardEncoder(forward, registry),
      });
      await waitFor('the outbox to drain', () => (store.stats().records === 0 ? true : undefined));
      await fwd.close();
      assert.equal(forwarded, json.length, 'every record left the outbox (one of them discarded)');
      const discarded = (await metrics.forwardDiscarded.get()).values.find((v) => v.labels.code === 'SERIALIZATION')?.value;
      assert.equal(discarded, 1, 'the record the schema cannot hold was discarded, counted');

      const out = await readToEnd(client, topic);
      assert.equal(out.length, values.length);
      const id = (await registry.latest(`${topic}-value`)).id;
      const reader = createRegistrySerde({ client: registry, format: 'avro', topic });
      const got = [];
      for (const r of out) {
        assert.equal((r.value as Buffer).readUInt32BE(1), id, 'framed with the registered schema id');
        const v = (await reader.deserialize(r.value)) as { device: string; label: number; probabilities: number[] };
        got.push({ device: v.device, label: v.label, probabilities: [...v.probabilities] });
      }
      const byKey = (a: { device: string; label: number }) => `${a.device}/${a.label}`;
      assert.deepEqual(got.map(byKey).sort(), values.map(byKey).sort());
    } finally {
      await producer.close();
      store.close();
    }
  });
});
