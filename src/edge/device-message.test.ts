import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InflowError } from '../errors.ts';
import { createMessageDecoder, createPredictionBuilder, reasonOf } from './device-message.ts';
import { createEdgeOutputs, topicFor } from './edge-outputs.ts';
import { validateEdgeConfig } from './edge-config.ts';

const decode = createMessageDecoder({
  agentId: 'gw',
  device: { topicLevel: 1 },
  messageIdField: 'seq',
  inputs: { input: { field: 'reading.values', shape: [3] } },
});

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof InflowError);
    assert.equal(error.code, 'INVALID_ARGUMENT');
    return `${reasonOf(error)}: ${error.message}`;
  }
  assert.fail('expected a rejection');
}

describe('device messages', () => {
  it('decodes the device from the topic, the id from the payload, and the inputs as one batch row', () => {
    const m = decode('sensors/pump-4/raw', Buffer.from('{"seq": 17, "reading": {"values": [1, 2.5, 3]}}'), '99');
    assert.equal(m.device, 'pump-4');
    assert.equal(m.id, 'pump-4:17');
    assert.deepEqual(m.inputs.input?.shape, [1, 3]);
    assert.deepEqual(Array.from(m.inputs.input?.data as Float32Array), [1, 2.5, 3]);
  });

  it('makes an id from the agent and the sequence when no id field is configured, and reads the device from a field', () => {
    const d = createMessageDecoder({ agentId: 'gw', device: { field: 'meta.device' }, inputs: { x: { field: 'x' } } });
    const m = d('anything', Buffer.from('{"meta": {"device": 12}, "x": [0]}'), '5');
    assert.equal(m.device, '12');
    assert.equal(m.id, 'gw:5');
  });

  it('says why a message cannot be scored, with a fixed reason label', () => {
    const at = (payload: string, topic = 'sensors/pump-4/raw') => reason(() => decode(topic, Buffer.from(payload), '1'));
    assert.match(at('{"seq": 1, '), /^json: payload on "sensors\/pump-4\/raw" is not JSON .*; expected a JSON object$/);
    assert.match(at('"text"'), /^not-object: payload on .* is string; expected a JSON object$/);
    assert.match(at('null'), /^not-object: .* is null/);
    assert.match(at('{"reading": {"values": [1, 2, 3]}}'), /^message-id: field "seq" \(the message id\) is missing/);
    assert.match(at('{"seq": 1}'), /^inputs: input "input": field "reading\.values" is missing from the record/);
    assert.match(
      at('{"seq": 1, "reading": {"values": [1, 2]}}'),
      /^inputs: input "input": field "reading\.values" has 2 elements; expected 3/,
    );
    assert.match(
      at('{"seq": 1, "reading": {"values": [1, "a", 3]}}'),
      /^inputs: input "input": element 1 of field "reading\.values" is "a"; expected a finite number/,
    );
    const d = createMessageDecoder({ agentId: 'gw', device: { field: 'device' }, inputs: { x: { field: 'x' } } });
    assert.match(
      reason(() => d('t', Buffer.from('{"x": [1]}'), '1')),
      /^device: no device id in field "device"; expected a non-empty string or a number$/,
    );
  });

  it('builds a prediction whose ids and model cannot be overwritten by an output of the same name', () => {
    const build = createPredictionBuilder({ model: { tensor: 'label' } });
    const m = decode('sensors/pump-4/raw', Buffer.from('{"seq": 3, "reading": {"values": [1, 2, 3]}}'), '1');
    const p = build(m, 'digits-mlp', 2, { label: { dtype: 'INT64', shape: [1], data: BigInt64Array.from([7n]) } }, 1000);
    assert.deepEqual(p, { id: 'pump-4:3', device: 'pump-4', model: 'digits-mlp', version: 2, ts: 1000 });
    const all = createPredictionBuilder(undefined)(
      m,
      'digits-mlp',
      2,
      { label: { dtype: 'INT64', shape: [1], data: BigInt64Array.from([7n]) } },
      1,
    );
    assert.equal(all.label, 7);
  });
});

describe('edge outputs', () => {
  const config = validateEdgeConfig(
    {
      agentId: 'gw',
      mqtt: { url: 'mqtt://127.0.0.1:1883', subscriptions: [{ topic: 'sensors/+/raw' }] },
      model: { repository: 'm', name: 'digits-mlp', inputs: { input: { field: 'x' } } },
      publish: {
        predictions: { topic: 'predictions/{device}', qos: 0 },
        errors: { topic: 'errors/{device}' },
        alerts: [
          { name: 'seven', topic: 'alerts/{device}', when: { field: 'label', in: [7] } },
          { name: 'sure-seven', topic: 'alerts/{device}/sure', when: { field: 'probabilities.7', gt: 0.9 } },
        ],
      },
      kafka: { bootstrapServers: ['k:9092'] },
      forward: { readings: 'r', predictions: 'p', errors: 'e' },
    },
    'test',
  );
  const outputs = createEdgeOutputs(config);
  const prediction = {
    id: 'a/b:1',
    device: 'a/b',
    model: 'digits-mlp',
    version: 3,
    label: 7,
    probabilities: [0, 0, 0, 0, 0, 0, 0, 0.95],
    ts: 5,
  };

  it('publishes the prediction and every alert whose rule holds, on topics with the device made harmless', () => {
    assert.equal(topicFor('x/{device}/y', 'a/+#'), 'x/a___/y');
    const pubs = outputs.publications(prediction);
    assert.deepEqual(
      pubs.map((p) => [p.kind, p.topic, p.qos]),
      [
        ['prediction', 'predictions/a_b', 0],
        ['alert', 'alerts/a_b', 1],
        ['alert', 'alerts/a_b/sure', 1],
      ],
    );
    assert.equal((JSON.parse(pubs[1]?.payload ?? '{}') as { alert?: string }).alert, 'seven');
    assert.equal(outputs.publications({ ...prediction, label: 1, probabilities: [] }).length, 1);
  });

  it('forwards the reading as received and the prediction as JSON, keyed by device, with the message id header', () => {
    const m = { device: 'a/b', id: 'a/b:1', value: {}, inputs: {} };
    const [reading, pred] = outputs.records('sensors/x/raw', Buffer.from('{"x":1}'), m, prediction);
    assert.deepEqual(reading, {
      topic: 'r',
      key: Buffer.from('a/b'),
      value: Buffer.from('{"x":1}'),
      headers: [
        ['inflow-message-id', 'a/b:1'],
        ['inflow-device', 'a/b'],
        ['inflow-mqtt-topic', 'sensors/x/raw'],
      ],
    });
    assert.deepEqual(JSON.parse(pred?.value?.toString() ?? ''), prediction);
    assert.deepEqual(pred?.headers.slice(2), [
      ['inflow-model', 'digits-mlp'],
      ['inflow-model-version', '3'],
    ]);
    const report = { topic: 'sensors/x/raw', reason: 'json', code: 'INVALID_ARGUMENT', message: 'bad', payload: '{', receivedAt: 1 };
    const [error] = outputs.errorRecords('sensors/x/raw', Buffer.from('{'), report);
    assert.equal(error?.topic, 'e');
    assert.equal(error?.key, null);
    assert.deepEqual(error?.headers.slice(-2), [
      ['inflow.error.code', 'INVALID_ARGUMENT'],
      ['inflow.error.reason', 'json'],
    ]);
    assert.equal(outputs.errorPublication(report)?.topic, 'errors/unknown');
  });
});
