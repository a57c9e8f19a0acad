import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { InflowError } from '../errors.ts';
import { loadEdgeConfig, parseEdgeConfig, validateEdgeConfig } from './edge-config.ts';

const EXAMPLE = `
agentId: gateway-7
mqtt:
  url: mqtt://127.0.0.1:1883
  subscriptions: [{ topic: sensors/+/digits }]
device: { topicLevel: 1 }
messageIdField: seq
model:
  repository: models
  name: digits-mlp
  modelsTopic: inflow-models
  inputs: { input: { field: pixels, shape: [64] } }
  outputs: { label: { tensor: label }, probabilities: { tensor: probabilities } }
publish:
  predictions: { topic: "predictions/{device}" }
  errors: { topic: edge/errors }
  alerts:
    - { name: seven, topic: "alerts/{device}", when: { field: label, in: [7] } }
kafka: { bootstrapServers: [kafka.site:9092] }
forward: { readings: edge-readings, predictions: edge-predictions }
outbox: { path: data, maxRecords: 5000, overflow: stop-accepting }
metrics: { port: 9464 }
`;

function example(): Record<string, Record<string, unknown>> {
  return parse(EXAMPLE) as Record<string, Record<string, unknown>>;
}

function rejects(value: unknown, pattern: RegExp): void {
  assert.throws(
    () => validateEdgeConfig(value, 'edge/agent.yaml'),
    (e: unknown) => {
      assert.ok(e instanceof InflowError);
      assert.equal(e.code, 'INVALID_CONFIG');
      assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
      assert.match(e.message, /^invalid configuration in edge\/agent\.yaml: /);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

describe('edge agent config', () => {
  it('accepts the documented example, fills defaults, and resolves paths against the file folder', () => {
    const c = parseEdgeConfig(EXAMPLE, '/etc/inflow/agent.yaml', '/etc/inflow');
    assert.equal(c.model.repository, '/etc/inflow/models');
    assert.equal(c.outbox.path, '/etc/inflow/data');
    assert.deepEqual(c.mqtt.subscriptions, [{ topic: 'sensors/+/digits', qos: 1 }]);
    assert.equal(c.mqtt.cleanSession, false);
    assert.equal(c.outbox.overflow, 'stop-accepting');
    assert.equal(c.outbox.maxBytes, 256 * 1024 * 1024);
    assert.equal(c.outbox.sync, 'normal');
    assert.equal(c.publish.predictions.qos, 1);
    assert.equal(c.forward.batchRecords, 500);
    assert.equal(c.limits.maxInFlight, 256);
    assert.equal(c.metrics?.host, '127.0.0.1');
  });

  it('takes the MQTT password from one of password, passwordFile, passwordEnv, and TLS files only for a TLS broker', () => {
    const mqtt = (extra: Record<string, unknown>) => ({ ...example(), mqtt: { ...example().mqtt, ...extra } });
    const c = parseEdgeConfig(
      EXAMPLE.replace(
        'url: mqtt://127.0.0.1:1883',
        'url: mqtts://gw:8883\n  username: edge\n  passwordFile: secrets/mqtt\n  tls: { caFile: ca.crt, certFile: c.crt, keyFile: c.key }',
      ),
      '/etc/inflow/agent.yaml',
      '/etc/inflow',
    );
    assert.equal(c.mqtt.passwordFile, '/etc/inflow/secrets/mqtt');
    assert.deepEqual(c.mqtt.tls, {
      caFile: '/etc/inflow/ca.crt',
      certFile: '/etc/inflow/c.crt',
      keyFile: '/etc/inflow/c.key',
      rejectUnauthorized: true,
    });
    rejects(mqtt({ username: 'e', password: 'p', passwordEnv: 'P' }), /mqtt\.passwordEnv: give one of password, passwordFile, passwordEnv/);
    rejects(mqtt({ passwordFile: '/p' }), /mqtt\.username: a password needs a username/);
    rejects(mqtt({ tls: { caFile: 'ca.crt' } }), /mqtt\.tls: tls applies to mqtts:\/\/, ssl:\/\/ or wss:\/\/ brokers, not mqtt:\/\//);
    rejects(mqtt({ url: 'mqtts://gw:8883', tls: { certFile: 'c.crt' } }), /mqtt\.tls: give certFile and keyFile together/);
  });

  it('accepts the example agent of examples/edge', async () => {
    const c = await loadEdgeConfig(join(import.meta.dirname, '..', '..', 'examples', 'edge', 'digits-agent.yaml'));
    assert.equal(c.model.repository, join(import.meta.dirname, '..', '..', 'models', 'repository'));
    assert.equal(c.publish.alerts.length, 2);
  });

  it('rejects unknown keys with the field path', () => {
    const v = example();
    (v.outbox as Record<string, unknown>).maxRecord = 10;
    rejects(v, /outbox: unknown key "maxRecord"/);
  });

  it('rejects forwarding or a models topic without a kafka section', () => {
    const v = example();
    delete v.kafka;
    rejects(
      v,
      /forward\.readings: forwarding to Kafka needs a kafka: section.*model\.modelsTopic: following a models topic needs a kafka: section/,
    );
  });

  it('resolves modelsSync.trustedKeys against the file folder, and rejects modelsSync without a models topic', () => {
    const v = example();
    v.model = { ...v.model, modelsSync: { trustedKeys: ['keys/release.pub'], maxStagingBytes: 1024 } };
    const config = parseEdgeConfig(JSON.stringify(v), 'edge/agent.yaml', '/etc/inflow');
    assert.deepEqual(config.model.modelsSync, {
      trustedKeys: ['/etc/inflow/keys/release.pub'],
      allowExecutablePlatforms: false,
      maxStagingBytes: 1024,
    });
    delete v.model.modelsTopic;
    rejects(v, /model\.modelsSync: applies to model\.modelsTopic, which is not given/);
  });

  it('rejects the in-process log as the Kafka of an agent', () => {
    const v = example();
    v.kafka = { bootstrapServers: 'memory' };
    rejects(v, /kafka\.bootstrapServers: the edge agent forwards to a real cluster/);
  });

  it('rejects wildcards in publish topics and misplaced ones in subscriptions', () => {
    const v = example();
    (v.publish as Record<string, unknown>).predictions = { topic: 'predictions/+' };
    (v.mqtt as Record<string, unknown>).subscriptions = [{ topic: 'sensors/#/x' }];
    rejects(
      v,
      /mqtt\.subscriptions\.0\.topic: expected an MQTT topic filter.*publish\.predictions\.topic: expected an MQTT topic without wildcards/,
    );
  });

  it('rejects a device topic level that the subscription does not have', () => {
    const v = example();
    v.device = { topicLevel: 3 };
    rejects(v, /mqtt\.subscriptions\.0\.topic: device\.topicLevel 3 is not a level of "sensors\/\+\/digits"/);
  });

  it('rejects an alert without a condition, and a model with version and label', () => {
    const v = example();
    (v.publish as { alerts: unknown[] }).alerts = [{ name: 'x', topic: 'a', when: { field: 'label' } }];
    (v.model as Record<string, unknown>).version = 1;
    (v.model as Record<string, unknown>).label = 'stable';
    rejects(v, /model\.label: give version or label, not both.*publish\.alerts\.0\.when: give at least one condition/);
  });

  it('rejects a broker URL without a scheme', () => {
    const v = example();
    (v.mqtt as Record<string, unknown>).url = '127.0.0.1:1883';
    rejects(v, /mqtt\.url: expected a broker URL such as "mqtt:\/\/127\.0\.0\.1:1883"/);
  });
});
