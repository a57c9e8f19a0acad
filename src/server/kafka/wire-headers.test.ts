/**
 * Golden wire names: every dead-letter header and every Kafka-native endpoint header, written out
 * literally as the docs list them (src/streams/README.md "Errors", src/server/README.md "Kafka-native
 * endpoint"). Consumers of these topics match on the strings, so a renamed constant is a breaking
 * change even when every test that reads names through the constant stays green.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadServable } from '../../runtime/index.ts';
import { createLocalInference, type LocalInference } from '../../serving/local-inference.ts';
import {
  createTopologyTestDriver,
  DeadLetterHeader,
  MODEL_HEADER,
  MODEL_VERSION_HEADER,
  REQUEST_ID_HEADER,
  type TopologyTestDriver,
} from '../../streams/index.ts';
import { encodeOipBinaryRequest, INFERENCE_HEADER_CONTENT_LENGTH } from '../../tensor/codecs/index.ts';
import { KafkaEndpointHeader, kafkaEndpointTopology } from './kafka-endpoint.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const MODELS = join(ROOT, 'models');

/** The dead-letter headers, as src/streams/README.md lists them. */
const DLQ_HEADERS = [
  'inflow.error.code',
  'inflow.error.message',
  'inflow.error.stage',
  'inflow.error.node',
  'inflow.error.retriable',
  'inflow.source.topic',
  'inflow.source.partition',
  'inflow.source.offset',
  'inflow.error.model',
  'inflow.error.time',
];
/** The dead-letter headers only a dead letter cut to maxRecordBytes carries, as src/streams/README.md lists them. */
const DLQ_CUT_HEADERS = ['inflow.error.truncated', 'inflow.error.headers.dropped', 'inflow.error.key.truncated'];
/** Headers a Kafka-native request may carry, as src/server/README.md lists them. */
const REQUEST_HEADERS = [
  'inflow-model',
  'inflow-model-version',
  'inflow-model-label',
  'inflow-protocol',
  'inflow-request-id',
  'inference-header-content-length',
];
/** Headers the endpoint adds to a response, as src/server/README.md lists them. */
const RESPONSE_HEADERS = ['inflow-model', 'inflow-model-version', 'content-type', 'inference-header-content-length'];

/** The backquoted names in the first column of the markdown table under the heading that starts with `heading`. */
async function documentedNames(file: string, heading: string, firstColumn: string): Promise<string[]> {
  const text = await readFile(join(ROOT, file), 'utf8');
  const start = text.indexOf(`\n${heading}`);
  assert.ok(start >= 0, `${file} has no section "${heading}"`);
  const section = text.slice(start + 1).split(/\n#{1,3} /)[0] ?? '';
  const lines = section.split('\n');
  const head = lines.findIndex((l) => l.startsWith(`| ${firstColumn} |`));
  assert.ok(head >= 0, `${file} "${heading}" has no table starting with "${firstColumn}"`);
  const names: string[] = [];
  for (const line of lines.slice(head + 2)) {
    if (!line.startsWith('|')) break;
    const cell = line.split('|')[1] ?? '';
    for (const m of cell.matchAll(/`([^`]+)`/g)) names.push(m[1] as string);
  }
  return names;
}

const sorted = (xs: readonly string[]): string[] => [...xs].sort();

describe('wire header names (golden)', () => {
  it('lists the same dead-letter headers in the docs and in the code, under their literal names', async () => {
    const all = [...DLQ_HEADERS, ...DLQ_CUT_HEADERS];
    assert.deepEqual(sorted(await documentedNames('src/streams/README.md', '## Errors', 'header')), sorted(all));
    assert.deepEqual(sorted(Object.values(DeadLetterHeader)), sorted(all));
  });

  it('lists the same Kafka-native endpoint headers in the docs and in the code, under their literal names', async () => {
    const file = 'src/server/README.md';
    const heading = '## Kafka-native endpoint';
    assert.deepEqual(sorted(await documentedNames(file, heading, 'request header')), sorted(REQUEST_HEADERS));
    assert.deepEqual(sorted(await documentedNames(file, heading, 'response header')), sorted(RESPONSE_HEADERS));
    assert.deepEqual(
      sorted([...Object.values(KafkaEndpointHeader), INFERENCE_HEADER_CONTENT_LENGTH]),
      sorted([...REQUEST_HEADERS, 'content-type']),
    );
    assert.deepEqual(
      [MODEL_HEADER, MODEL_VERSION_HEADER, REQUEST_ID_HEADER],
      ['inflow-model', 'inflow-model-version', 'inflow-request-id'],
    );
  });

  describe('on records the endpoint writes', () => {
    let root: string;
    let inference: LocalInference;
    let driver: TopologyTestDriver;
    let rows: number[];

    before(async () => {
      root = await mkdtemp(join(tmpdir(), 'inflow-headers-'));
      await cp(join(MODELS, 'repository', 'digits-mlp'), join(root, 'digits-mlp'), { recursive: true });
      inference = await createLocalInference({ modelRepository: root, load: loadServable, watch: false, settleMs: 0 });
      const sample = JSON.parse(await readFile(join(MODELS, 'samples', 'digits-mlp.json'), 'utf8')) as {
        inputs: { input: { data: number[] } };
      };
      rows = sample.inputs.input.data.slice(0, 64);
      const topology = kafkaEndpointTopology({ inference, requestTopic: 'requests', responseTopic: 'responses' });
      driver = await createTopologyTestDriver(topology, { applicationId: 'headers' });
    });
    after(async () => {
      await driver.close();
      await inference.close();
      await rm(root, { recursive: true, force: true });
    });

    it('reads every request header by its literal name and answers with the literal response headers', async () => {
      const oip = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], data: rows }] });
      await driver.pipe('requests', Buffer.from('k'), Buffer.from(oip), {
        headers: { 'inflow-model': 'digits-mlp', 'inflow-model-version': '1', 'inflow-request-id': 'json', 'x-app': 'kept' },
      });
      const binary = encodeOipBinaryRequest(
        {
          inputs: { input: { dtype: 'FP32', shape: [1, 64], data: new Float32Array(rows) } },
          outputs: [{ name: 'probabilities', parameters: { binary_data: true } }],
        },
        () => true,
      );
      await driver.pipe('requests', Buffer.from('k'), Buffer.concat(binary.chunks), {
        headers: {
          'inflow-model': 'digits-mlp',
          'inflow-request-id': 'binary',
          'inference-header-content-length': String(binary.headerLength),
        },
      });
      await driver.pipe('requests', Buffer.from('k'), Buffer.from(JSON.stringify({ instances: [rows] })), {
        headers: { 'inflow-model': 'digits-mlp', 'inflow-protocol': 'tfserving', 'inflow-request-id': 'tf' },
      });
      // A label next to a version is refused: proves the endpoint reads `inflow-model-label`.
      await driver.pipe('requests', Buffer.from('k'), Buffer.from(oip), {
        headers: { 'inflow-model': 'digits-mlp', 'inflow-model-version': '1', 'inflow-model-label': 'stable', 'inflow-request-id': 'both' },
      });
      await driver.flush();

      const byId = new Map((await driver.read('responses')).map((r) => [r.headers['inflow-request-id'], r]));
      assert.deepEqual(sorted([...byId.keys()].map(String)), ['binary', 'json', 'tf']);
      const json = byId.get('json');
      assert.deepEqual(json?.headers, {
        'inflow-model': 'digits-mlp',
        'inflow-model-version': '1',
        'inflow-request-id': 'json',
        'x-app': 'kept',
        'content-type': 'application/json',
      });
      assert.equal(
        (JSON.parse(json?.value?.toString() ?? '{}') as { id?: string }).id,
        'json',
        'inflow-request-id becomes the response id',
      );
      const bin = byId.get('binary');
      assert.deepEqual(
        sorted(Object.keys(bin?.headers ?? {})),
        sorted(['inflow-model', 'inflow-model-version', 'inflow-request-id', 'content-type', 'inference-header-content-length']),
      );
      assert.equal(bin?.headers['content-type'], 'application/octet-stream');
      assert.match(bin?.headers['inference-header-content-length'] ?? '', /^[1-9][0-9]*$/);
      assert.notEqual(
        bin?.headers['inference-header-content-length'],
        String(binary.headerLength),
        'the response header is the response’s own length',
      );
      const tf = byId.get('tf');
      assert.deepEqual(
        sorted(Object.keys(tf?.headers ?? {})),
        sorted(['inflow-model', 'inflow-model-version', 'inflow-request-id', 'content-type']),
      );
      assert.ok(
        Array.isArray((JSON.parse(tf?.value?.toString() ?? '{}') as { predictions?: unknown }).predictions),
        'inflow-protocol: tfserving answers in TF Serving JSON',
      );

      const both = (await driver.deadLetters()).find((r) => r.headers['inflow-request-id'] === 'both');
      assert.match(both?.headers['inflow.error.message'] ?? '', /Both model version \(1\) and model version label \(stable\)/);
    });

    it('dead-letters a failed request with every dead-letter header under its literal name', async () => {
      const t0 = Date.now();
      const body = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], data: rows }] });
      // A record timestamp far from now: inflow.error.time is the failure's time, not the record's.
      await driver.pipe('requests', Buffer.from('k'), Buffer.from(body), {
        headers: { 'inflow-model': 'no-such-model', 'inflow-request-id': 'dlq' },
        timestamp: Date.UTC(2001, 0, 1),
      });
      await driver.flush();
      const t1 = Date.now();
      const dead = (await driver.deadLetters()).filter((r) => r.headers['inflow-request-id'] === 'dlq');
      assert.equal(dead.length, 1);
      const h = dead[0]?.headers ?? {};
      assert.deepEqual(sorted(Object.keys(h)), sorted([...DLQ_HEADERS, 'inflow-model', 'inflow-request-id']));
      assert.equal(h['inflow.error.code'], 'NOT_FOUND');
      assert.match(h['inflow.error.message'] ?? '', /no-such-model/);
      assert.equal(h['inflow.error.stage'], 'predict');
      assert.equal(h['inflow.error.node'], 'infer');
      assert.equal(h['inflow.error.retriable'], 'false');
      assert.equal(h['inflow.source.topic'], 'requests');
      assert.equal(h['inflow.source.partition'], '0');
      assert.match(h['inflow.source.offset'] ?? '', /^[0-9]+$/);
      assert.equal(h['inflow.error.model'], 'no-such-model');
      const time = h['inflow.error.time'] ?? '';
      assert.match(time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'ISO-8601 UTC');
      const at = Date.parse(time);
      assert.ok(at >= t0 && at <= t1, `inflow.error.time ${time} is not between the pipe (${new Date(t0).toISOString()}) and the flush`);
      assert.equal(dead[0]?.value?.toString(), body, 'the request goes to the error topic unchanged');
    });
  });
});
