import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { LocalInference } from '../../serving/local-inference.ts';
import {
  assertClose,
  type ExampleServer,
  loadExampleInference,
  rows,
  type Sample,
  sample,
  startExampleServer,
} from './fixtures/example-server.ts';

const golden = async (name: string): Promise<unknown> => JSON.parse(await readFile(join(import.meta.dirname, 'fixtures', name), 'utf8'));

describe('TF Serving REST API', () => {
  let inference: LocalInference;
  let api: ExampleServer;
  let digits: Sample;
  before(async () => {
    inference = await loadExampleInference();
    api = await startExampleServer(inference);
    digits = await sample('digits-mlp');
  });
  after(async () => {
    await api.server.close(1000);
    await inference.close();
  });

  async function call(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: Record<string, unknown>; type: string | null }> {
    const response = await fetch(api.url + path, {
      method,
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, json: JSON.parse(text) as Record<string, unknown>, type: response.headers.get('content-type') };
  }
  const input = (): number[][] => rows(digits.inputs.input!, 0, 8);

  it('predicts rows (instances) and answers one object per instance that matches Python onnxruntime', async () => {
    const { status, json, type } = await call('POST', '/v1/models/digits-mlp:predict', { instances: input() });
    assert.equal(status, 200);
    assert.equal(type, 'application/json');
    const predictions = json.predictions as Array<{ label: number; probabilities: number[] }>;
    assert.equal(predictions.length, 8);
    assert.deepEqual(Object.keys(predictions[0]!), ['label', 'probabilities']);
    assert.deepEqual(
      predictions.map((p) => p.label),
      digits.outputs.label!.data,
    );
    assertClose(
      predictions.flatMap((p) => p.probabilities),
      digits.outputs.probabilities!.data,
      'probabilities',
    );
  });

  it('predicts columnar inputs and answers full output tensors keyed by name', async () => {
    const { status, json } = await call('POST', '/v1/models/digits-mlp:predict', { signature_name: 'serving_default', inputs: input() });
    assert.equal(status, 200);
    const outputs = json.outputs as { label: number[]; probabilities: number[][] };
    assert.deepEqual(outputs.label, digits.outputs.label!.data);
    assert.equal(outputs.probabilities.length, 8);
    assertClose(outputs.probabilities.flat(), digits.outputs.probabilities!.data, 'probabilities');
  });

  it('routes by version and label, case-insensitively, with URL-decoded names', async () => {
    const before = await successes();
    assert.equal((await call('POST', '/V1/Models/digits%2Dmlp/Versions/1:PREDICT', { instances: input().slice(0, 1) })).status, 200);
    assert.equal((await call('POST', '/v1/models/digits-mlp/labels/canary:predict', { instances: input().slice(0, 1) })).status, 200);
    assert.equal((await call('POST', '/v1/models/digits-mlp/labels/stable:predict', { instances: input().slice(0, 1) })).status, 200);
    const now = await successes();
    assert.deepEqual([now.v1 - before.v1, now.v2 - before.v2], [2, 1]);
  });

  async function successes(): Promise<{ v1: number; v2: number }> {
    const text = await (await fetch(`${api.url}/metrics`)).text();
    const count = (version: string): number =>
      Number(new RegExp(`inflow_inference_request_success_total\\{model="digits-mlp",version="${version}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
    return { v1: count('1'), v2: count('2') };
  }

  it('answers BYTES outputs as strings (the pipeline names the class)', async () => {
    const cancer = await sample('breast-cancer-gbt-pipeline');
    const { status, json } = await call('POST', '/v1/models/breast-cancer-pipeline:predict', {
      instances: rows(cancer.inputs.input!, 0, 8),
    });
    assert.equal(status, 200);
    const predictions = json.predictions as Array<{ class: string; label: number }>;
    assert.deepEqual(
      predictions.map((p) => p.class),
      cancer.outputs.label!.data.map((l) => (Number(l) === 0 ? 'malignant' : 'benign')),
    );
  });

  it('answers model status in TF Serving shape for all versions, one version and a label', async () => {
    const all = await call('GET', '/v1/models/digits-mlp');
    assert.equal(all.status, 200);
    assert.deepEqual(all.json, await golden('tf-status-digits-mlp.json'));
    const one = await call('GET', '/v1/models/digits-mlp/versions/2');
    assert.deepEqual(one.json, { model_version_status: [(all.json.model_version_status as unknown[])[1]] });
    const labelled = await call('GET', '/v1/models/digits-mlp/labels/stable');
    assert.deepEqual(labelled.json, { model_version_status: [(all.json.model_version_status as unknown[])[0]] });
  });

  it('answers model metadata as a serving_default signature_def (latest version unless one is named)', async () => {
    const meta = await call('GET', '/v1/models/digits-mlp/versions/1/metadata');
    assert.equal(meta.status, 200);
    assert.deepEqual(meta.json, await golden('tf-metadata-digits-mlp.json'));
    const latest = await call('GET', '/v1/models/digits-mlp/metadata');
    assert.deepEqual(latest.json.model_spec, { name: 'digits-mlp', signature_name: '', version: '2' });
    const labelled = await call('GET', '/v1/models/digits-mlp/labels/stable/metadata');
    assert.deepEqual(labelled.json.model_spec, { name: 'digits-mlp', signature_name: '', version: '1' });
  });

  const errors: Array<[string, string, string, unknown, number, string | RegExp]> = [
    [
      'unknown model (predict)',
      'POST',
      '/v1/models/nope:predict',
      { instances: [[1]] },
      404,
      'Servable not found for request: Latest(nope)',
    ],
    [
      'unknown version',
      'POST',
      '/v1/models/digits-mlp/versions/9:predict',
      { instances: [[1]] },
      404,
      'Servable not found for request: Specific(digits-mlp, 9)',
    ],
    [
      'unknown label',
      'POST',
      '/v1/models/digits-mlp/labels/beta:predict',
      { instances: [[1]] },
      400,
      'Unrecognized servable version label: beta',
    ],
    [
      'a version that is not an int64',
      'POST',
      '/v1/models/digits-mlp/versions/99999999999999999999:predict',
      {},
      400,
      'Failed to convert version: 99999999999999999999 to numeric.',
    ],
    [
      'both version and label (TF Serving has no such path)',
      'POST',
      '/v1/models/digits-mlp/versions/1/labels/stable:predict',
      {},
      400,
      'Malformed request: POST /v1/models/digits-mlp/versions/1/labels/stable:predict',
    ],
    ['unknown model (status)', 'GET', '/v1/models/nope', undefined, 404, 'Could not find any versions of model nope'],
    ['unknown version (status)', 'GET', '/v1/models/digits-mlp/versions/7', undefined, 404, 'Could not find version 7 of model digits-mlp'],
    ['unknown model (metadata)', 'GET', '/v1/models/nope/metadata', undefined, 404, 'Servable not found for request: Latest(nope)'],
    ['model listing', 'GET', '/v1/models', undefined, 400, 'Missing model name in request.'],
    [
      'a malformed path',
      'GET',
      '/v1/models/digits-mlp/versions/abc',
      undefined,
      400,
      'Malformed request: GET /v1/models/digits-mlp/versions/abc',
    ],
    ['an unknown verb', 'POST', '/v1/models/digits-mlp:explain', {}, 400, 'Malformed request: POST /v1/models/digits-mlp:explain'],
    ['bad JSON', 'POST', '/v1/models/digits-mlp:predict', '{"instances": [[1,', 400, /^JSON Parse error: /],
    ['neither instances nor inputs', 'POST', '/v1/models/digits-mlp:predict', { rows: [] }, 400, "Missing 'inputs' or 'instances' key"],
    [
      'both instances and inputs',
      'POST',
      '/v1/models/digits-mlp:predict',
      { instances: [[1]], inputs: [[1]] },
      400,
      "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist",
    ],
    [
      'a wrong input name',
      'POST',
      '/v1/models/digits-mlp:predict',
      { inputs: { pixels: [[1]] } },
      400,
      "Unexpected named input: pixels in 'inputs' object; expected only: input",
    ],
    ['a wrong shape', 'POST', '/v1/models/digits-mlp:predict', { instances: [[1, 2, 3]] }, 400, /input "input".*expected.*64/],
    ['a wrong element type', 'POST', '/v1/models/digits-mlp:predict', { instances: [['a']] }, 400, /is not of expected type: float/],
    [
      'instances nested 100 000 lists deep',
      'POST',
      '/v1/models/digits-mlp:predict',
      `{"instances": ${'['.repeat(100_000)}1${']'.repeat(100_000)}}`,
      400,
      'input "input": lists nested more than 254 deep; a tensor has at most 254 dimensions',
    ],
    [
      'an unknown signature',
      'POST',
      '/v1/models/digits-mlp:predict',
      { signature_name: 'other', instances: [[1]] },
      400,
      'Serving signature name: "other" not found in signature def',
    ],
    [':classify without examples', 'POST', '/v1/models/digits-mlp:classify', { examples: [] }, 400, /'examples' is an empty list/],
  ];
  for (const [what, method, path, body, status, message] of errors) {
    it(`answers ${status} with {"error"} for ${what}`, async () => {
      const answer = await call(method, path, body);
      assert.equal(answer.status, status);
      assert.equal(answer.type, 'application/json');
      assert.deepEqual(Object.keys(answer.json), ['error']);
      if (typeof message === 'string') assert.equal(answer.json.error, message);
      else assert.match(answer.json.error as string, message);
    });
  }
});
