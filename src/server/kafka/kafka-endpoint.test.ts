import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadServable } from '../../runtime/index.ts';
import { createLocalInference, type LocalInference } from '../../serving/local-inference.ts';
import { DeadLetterHeader, createTopologyTestDriver, type TopologyTestDriver } from '../../streams/index.ts';
import { decodeOipBinaryResponse, encodeOipBinaryRequest, INFERENCE_HEADER_CONTENT_LENGTH } from '../../tensor/codecs/index.ts';
import { kafkaEndpointTopology } from './kafka-endpoint.ts';

const MODELS = join(import.meta.dirname, '..', '..', '..', 'models');

interface Sample {
  inputs: { input: { data: number[] } };
  outputs: { label: { data: number[] }; probabilities: { data: number[] } };
}

describe('Kafka-native endpoint', () => {
  let root: string;
  let inference: LocalInference;
  let sample: Sample;
  let driver: TopologyTestDriver;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'inflow-endpoint-'));
    await cp(join(MODELS, 'repository', 'digits-mlp'), join(root, 'digits-mlp'), { recursive: true });
    inference = await createLocalInference({ modelRepository: root, load: loadServable, watch: false, settleMs: 0 });
    sample = JSON.parse(await readFile(join(MODELS, 'samples', 'digits-mlp.json'), 'utf8')) as Sample;
    const topology = kafkaEndpointTopology({ inference, requestTopic: 'requests', responseTopic: 'responses', maxBatch: 16 });
    driver = await createTopologyTestDriver(topology, { partitions: 2, applicationId: 'endpoint' });
  });
  after(async () => {
    await driver.close();
    await inference.close();
    await rm(root, { recursive: true, force: true });
  });

  const rows = (from: number, n: number): number[] => sample.inputs.input.data.slice(from * 64, (from + n) * 64);

  it('answers OIP JSON, OIP binary and TF Serving requests keyed and correlated, and dead-letters bad ones with the reason', async () => {
    const oipJson = { id: 'req-json', inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 64], data: rows(0, 2) }] };
    await driver.pipe('requests', Buffer.from('client-a'), Buffer.from(JSON.stringify(oipJson)), {
      headers: { 'inflow-model': 'digits-mlp', 'inflow-request-id': 'r1' },
    });
    const binary = encodeOipBinaryRequest(
      {
        id: 'req-bin',
        inputs: { input: { dtype: 'FP32', shape: [3, 64], data: new Float32Array(rows(2, 3)) } },
        outputs: [{ name: 'probabilities', parameters: { binary_data: true } }],
      },
      () => true,
    );
    await driver.pipe('requests', Buffer.from('client-b'), Buffer.concat(binary.chunks), {
      headers: { 'inflow-model': 'digits-mlp', 'inflow-request-id': 'r2', [INFERENCE_HEADER_CONTENT_LENGTH]: String(binary.headerLength) },
    });
    const tf = { instances: [rows(5, 1), rows(6, 1)] };
    await driver.pipe('requests', Buffer.from('client-c'), Buffer.from(JSON.stringify(tf)), {
      headers: { 'inflow-model': 'digits-mlp', 'inflow-protocol': 'tfserving', 'inflow-request-id': 'r3' },
    });
    await driver.pipe('requests', Buffer.from('client-d'), Buffer.from('{"inputs": [oops'), {
      headers: { 'inflow-model': 'digits-mlp', 'inflow-request-id': 'r4' },
    });
    await driver.pipe('requests', Buffer.from('client-e'), Buffer.from(JSON.stringify(oipJson)), {
      headers: { 'inflow-model': 'nope', 'inflow-request-id': 'r5' },
    });
    await driver.pipe('requests', Buffer.from('client-f'), Buffer.from(JSON.stringify(oipJson)), {
      headers: { 'inflow-request-id': 'r6' },
    });
    await driver.flush();

    const out = await driver.read('responses');
    const byId = new Map(out.map((r) => [r.headers['inflow-request-id'], r]));
    assert.deepEqual([...byId.keys()].sort(), ['r1', 'r2', 'r3']);

    const r1 = byId.get('r1');
    assert.equal(r1?.key?.toString(), 'client-a');
    assert.equal(r1?.headers['content-type'], 'application/json');
    assert.equal(r1?.headers['inflow-model-version'], '1');
    const j = JSON.parse(r1?.value?.toString() ?? '{}') as { id: string; model_name: string; outputs: { name: string; data: number[] }[] };
    assert.equal(j.id, 'req-json');
    assert.equal(j.model_name, 'digits-mlp');
    assert.deepEqual(j.outputs.find((o) => o.name === 'label')?.data, sample.outputs.label.data.slice(0, 2));

    const r2 = byId.get('r2');
    assert.equal(r2?.headers['content-type'], 'application/octet-stream');
    const decoded = decodeOipBinaryResponse(r2?.value as Buffer, r2?.headers[INFERENCE_HEADER_CONTENT_LENGTH]);
    assert.deepEqual(Object.keys(decoded.outputs), ['probabilities']);
    const p = decoded.outputs.probabilities?.data as Float32Array;
    assert.equal(p.length, 3 * 10, 'three rows of ten probabilities');
    p.forEach((v, i) => assert.ok(Math.abs(v - (sample.outputs.probabilities.data[20 + i] as number)) < 1e-5));

    const r3 = JSON.parse(byId.get('r3')?.value?.toString() ?? '{}') as { predictions: { label: number }[] };
    assert.deepEqual(
      r3.predictions.map((x) => x.label),
      sample.outputs.label.data.slice(5, 7),
    );

    const errors = await driver.deadLetters();
    const reasons: Record<string, string> = {};
    for (const e of errors)
      reasons[e.headers['inflow-request-id'] ?? ''] = `${e.headers[DeadLetterHeader.CODE]}: ${e.headers[DeadLetterHeader.MESSAGE]}`;
    assert.match(reasons.r4 ?? '', /^INVALID_ARGUMENT: .*JSON/);
    assert.match(reasons.r5 ?? '', /^NOT_FOUND: /);
    assert.match(reasons.r6 ?? '', /^INVALID_ARGUMENT: request has no inflow-model header/);
    assert.equal(errors.find((e) => e.headers['inflow-request-id'] === 'r4')?.value?.toString(), '{"inputs": [oops');
  });

  it('batches many single-row requests into shared inference calls', async () => {
    for (let i = 0; i < 40; i++) {
      const body = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], data: rows(i % 8, 1) }] };
      await driver.pipe('requests', Buffer.from(`k${i % 5}`), Buffer.from(JSON.stringify(body)), {
        headers: { 'inflow-model': 'digits-mlp', 'inflow-request-id': `b${i}` },
      });
    }
    await driver.flush();
    const out = (await driver.read('responses')).filter((r) => r.headers['inflow-request-id']?.startsWith('b'));
    assert.equal(out.length, 40);
    for (const r of out) {
      const i = Number(r.headers['inflow-request-id']?.slice(1));
      const j = JSON.parse(r.value?.toString() ?? '{}') as { outputs: { name: string; data: number[] }[] };
      assert.deepEqual(j.outputs.find((o) => o.name === 'label')?.data, [sample.outputs.label.data[i % 8]]);
    }
    const batches = await driver.runner.metrics.batchSize.get();
    const count = batches.values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
    const sum = batches.values.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0;
    assert.ok(sum / count > 1.5, `mean batch ${sum / count}: requests were not batched`);
  });
});

describe('Kafka-native endpoint with a shadow version', () => {
  let root: string;
  let inference: LocalInference;
  let sample: Sample;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'inflow-endpoint-shadow-'));
    for (const version of ['1', '2'])
      await cp(join(MODELS, 'repository', 'digits-mlp', '1'), join(root, 'digits-mlp', version), { recursive: true });
    await writeFile(
      join(root, 'digits-mlp', 'config.yaml'),
      'platform: onnx\nversionPolicy: { all: true }\nruntime: { file: model.onnx }\nrouting: { split: [{ version: 1, weight: 1 }], shadow: { version: 2, fraction: 1 } }\n',
    );
    inference = await createLocalInference({ modelRepository: root, load: loadServable, watch: false, settleMs: 0 });
    sample = JSON.parse(await readFile(join(MODELS, 'samples', 'digits-mlp.json'), 'utf8')) as Sample;
  });
  after(async () => {
    await inference.close();
    await rm(root, { recursive: true, force: true });
  });

  it('mirrors TF Serving and OIP requests to the shadow, answering from the routed version', async () => {
    const driver = await createTopologyTestDriver(
      kafkaEndpointTopology({ inference, requestTopic: 'requests', responseTopic: 'responses', maxBatch: 16 }),
      { partitions: 1, applicationId: 'endpoint-shadow' },
    );
    try {
      const row = sample.inputs.input.data.slice(0, 64);
      await driver.pipe('requests', Buffer.from('client-tf'), Buffer.from(JSON.stringify({ instances: [row] })), {
        headers: { 'inflow-model': 'digits-mlp', 'inflow-protocol': 'tfserving', 'inflow-request-id': 'tf' },
      });
      const oip = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], data: row }] };
      await driver.pipe('requests', Buffer.from('client-oip'), Buffer.from(JSON.stringify(oip)), {
        headers: { 'inflow-model': 'digits-mlp', 'inflow-request-id': 'oip' },
      });
      await driver.flush();
      const out = await driver.read('responses');
      assert.deepEqual(out.map((r) => [r.headers['inflow-request-id'], r.headers['inflow-model-version']]).sort(), [
        ['oip', '1'],
        ['tf', '1'],
      ]);
      await inference.settleShadows();
      const text = await inference.metrics.registry.metrics();
      // Both requests reached the shadow: the TF Serving one with the route its decoding resolved.
      assert.match(text, /inflow_shadow_requests_total\{model="digits-mlp",version="1",shadow_version="2"\} 2\n/);
    } finally {
      await driver.close();
    }
  });
});
