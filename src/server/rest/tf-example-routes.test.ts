import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../observability/logger.ts';
import { loadServable, setRuntimeLogger } from '../../runtime/index.ts';
import { createLocalInference, type LocalInference } from '../../serving/local-inference.ts';
import {
  assertClose,
  type ExampleServer,
  exampleRepository,
  rows,
  type Sample,
  sample,
  startExampleServer,
} from './fixtures/example-server.ts';

process.env.ORT_DISABLE_TELEMETRY = '1';

/** TF Serving's half_plus_two as a module model: y = 0.5 x + 2. */
const HALF_PLUS_TWO = `export default {
  signature: { inputs: [{ name: 'x', dtype: 'FP32', shape: [-1] }], outputs: [{ name: 'y', dtype: 'FP32', shape: [-1] }] },
  run(inputs) {
    const x = inputs.x.data;
    return { y: { dtype: 'FP32', shape: [x.length], data: x.map((v) => 0.5 * v + 2) } };
  },
};
`;

describe('TF Serving REST :classify and :regress', () => {
  let inference: LocalInference;
  let api: ExampleServer;
  let digits: Sample;
  let cancer: Sample;
  before(async () => {
    setRuntimeLogger(silentLogger);
    const root = await exampleRepository();
    await mkdir(join(root, 'half-plus-two', '1'), { recursive: true });
    await writeFile(join(root, 'half-plus-two', 'config.yaml'), 'platform: module\n');
    await writeFile(join(root, 'half-plus-two', '1', 'model.mjs'), HALF_PLUS_TWO);
    inference = await createLocalInference({ modelRepository: root, load: loadServable, watch: false, settleMs: 0 });
    api = await startExampleServer(inference);
    digits = await sample('digits-mlp');
    cancer = await sample('breast-cancer-gbt-pipeline');
  });
  after(async () => {
    await api.server.close(1000);
    await inference.close();
  });

  async function post(path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown>; text: string }> {
    const response = await fetch(api.url + path, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });
    const text = await response.text();
    return { status: response.status, json: JSON.parse(text) as Record<string, unknown>, text };
  }

  it('classifies Examples with every class and its score, as the Python reference computes them', async () => {
    const examples = rows(digits.inputs.input!, 0, 4).map((input) => ({ input }));
    const { status, json } = await post('/v1/models/digits-mlp/labels/stable:classify', { examples });
    assert.equal(status, 200);
    const results = json.results as Array<Array<[string, number]>>;
    assert.equal(results.length, 4);
    for (const [i, classes] of results.entries()) {
      assert.deepEqual(
        classes.map(([label]) => label),
        ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
      );
      const top = classes.reduce((a, b) => (b[1] > a[1] ? b : a));
      assert.equal(top[0], String(digits.outputs.label!.data[i]), `example ${i}: top class`);
    }
    assertClose(
      results.flatMap((classes) => classes.map(([, score]) => score)),
      digits.outputs.probabilities!.data.slice(0, 40),
      'scores',
    );
  });

  it('reads one-value features <input>_i, merges the context, and names the predicted class of the pipeline', async () => {
    const [row] = rows(cancer.inputs.input!, 0, 1) as [number[]];
    const context = Object.fromEntries(row.slice(1).map((v, i) => [`input_${i + 1}`, v]));
    const { status, json } = await post('/v1/models/breast-cancer-pipeline:classify', { context, examples: [{ input_0: row[0] }] });
    assert.equal(status, 200);
    const [classes] = json.results as Array<Array<[string, number]>>;
    // labels.txt of the pipeline: 0 malignant, 1 benign; the other class keeps its index.
    const predicted = Number(cancer.outputs.label!.data[0]);
    assert.deepEqual(
      classes?.map(([label]) => label),
      predicted === 1 ? ['0', 'benign'] : ['malignant', '1'],
    );
    assertClose(
      classes.map(([, score]) => score),
      cancer.outputs.probabilities!.data.slice(0, 2),
      'scores',
    );
  });

  it('regresses as TF Serving’s half_plus_two worked example: {"x": 80.0} → {"results": [42]}', async () => {
    const { status, json, text } = await post(
      '/v1/models/half-plus-two:regress',
      '{"signature_name": "serving_default", "examples": [{"x": 80.0}, {"x": 3}]}',
    );
    assert.equal(status, 200);
    assert.deepEqual(json, { results: [42, 3.5] });
    assert.match(text, /"results": \[42\.0, 3\.5\]/);
  });

  const errors: Array<[string, string, unknown, number, RegExp]> = [
    ['an unknown model', '/v1/models/nope:classify', { examples: [{}] }, 404, /^Servable not found for request: Latest\(nope\)$/],
    [
      'an unknown signature',
      '/v1/models/digits-mlp:classify',
      { signature_name: 'classify_x', examples: [{}] },
      400,
      /Serving signature name: "classify_x" not found/,
    ],
    [
      'a missing feature',
      '/v1/models/digits-mlp:classify',
      { examples: [{ pixels: 1 }] },
      400,
      /example 0: no feature "input" \(64 values\) nor "input_0" … "input_63"/,
    ],
    ['no examples', '/v1/models/digits-mlp:regress', { examples: [] }, 400, /'examples' is an empty list/],
    ['a classifier asked to regress', '/v1/models/digits-mlp:regress', { examples: [{ input: 1 }] }, 400, /has no output to regress with/],
    ['a regressor asked to classify', '/v1/models/half-plus-two:classify', { examples: [{ x: 1 }] }, 400, /has no output to classify with/],
  ];
  for (const [what, path, body, status, message] of errors) {
    it(`answers ${status} with {"error"} for ${what}`, async () => {
      const answer = await post(path, body);
      assert.equal(answer.status, status);
      assert.deepEqual(Object.keys(answer.json), ['error']);
      assert.match(answer.json.error as string, message);
    });
  }

  it('counts :classify and :regress under their own route label', async () => {
    const text = await (await fetch(`${api.url}/metrics`)).text();
    assert.match(text, /inflow_http_requests_total\{route="tf_classify",code="200"\} \d/);
    assert.match(text, /inflow_http_requests_total\{route="tf_regress",code="200"\} \d/);
  });
});
