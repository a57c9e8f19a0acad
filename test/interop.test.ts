/**
 * Interop with the official, unmodified clients of the servers inflow replaces: TensorFlow
 * Serving's Python API (gRPC Predict, GetModelMetadata, GetModelStatus, Classify and
 * MultiInference with tf.train.Example inputs) plus its REST API (:predict, :classify) as curl sends it, and Triton's tritonclient over HTTP (JSON and binary tensors) and gRPC. The
 * clients run in a virtualenv made by test/interop/setup-venv.sh; outputs must equal the Python
 * onnxruntime reference (models/samples).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { loadServable } from '../src/runtime/index.ts';
import { startModelServer, type RunningModelServer } from '../src/server/model-server.ts';
import { interopPython } from './interop/interop-support.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const HERE = join(import.meta.dirname, 'interop');

interface Reference {
  outputs: Record<string, { datatype: string; shape: number[]; data: number[] }>;
}
interface Got {
  dtype: string;
  shape: number[];
  data: Array<number | string>;
}

function assertMatches(got: Got | undefined, want: Reference['outputs'][string] | undefined, what: string): void {
  assert.ok(got && want, `${what} present`);
  assert.deepEqual(got.shape, want.shape, `${what} shape`);
  for (const [i, w] of want.data.entries()) {
    const g = Number(got.data[i]);
    assert.ok(Math.abs(g - w) <= 1e-5 * Math.max(1, Math.abs(w)), `${what}[${i}]: got ${g}, reference ${w}`);
  }
}

/** One Example's classes as TF Serving answers them: (label, score) pairs. */
type Classes = Array<[string, number]>;

/** The label of the highest-scoring class. */
const topClass = (classes: Classes): string | undefined => classes.reduce((a, b) => (b[1] > a[1] ? b : a))[0];

describe('official clients against inflow', () => {
  let server: RunningModelServer;
  let py: string | undefined;
  const sample = join(ROOT, 'models', 'samples', 'digits-mlp.json');
  const reference = JSON.parse(readFileSync(sample, 'utf8')) as Reference;

  before(async () => {
    py = await interopPython();
    server = await startModelServer({
      modelRepository: join(ROOT, 'models', 'repository'),
      load: loadServable,
      rest: { host: '127.0.0.1', port: 0 },
      grpc: { host: '127.0.0.1', port: 0 },
      watch: false,
    });
  });
  after(async () => server?.close());

  const job = (): string => JSON.stringify({ rest: server.restAddress, grpc: server.grpcAddress, model: 'digits-mlp', sample });

  it('TensorFlow Serving client: Predict, GetModelMetadata, GetModelStatus, Classify, MultiInference and REST predict and classify', async (t) => {
    if (!py) return t.skip('no client virtualenv');
    const { stdout } = await run(py, [join(HERE, 'tfserving_client.py'), job()], { timeout: 120_000 });
    const got = JSON.parse(stdout) as Record<string, unknown> & {
      predict: Record<string, Got>;
      rest_predict: { predictions: Array<Record<string, unknown>> };
      classify: Classes[];
      multi_inference: Classes[][];
      rest_classify: { results: Classes[] };
    };
    assertMatches(got.predict.probabilities, reference.outputs.probabilities, 'grpc Predict probabilities');
    assertMatches(got.predict.label, reference.outputs.label, 'grpc Predict label');
    assert.deepEqual(got.predict_model_spec, { name: 'digits-mlp', version: 1 });
    assert.deepEqual(got.metadata, { inputs: ['input'], outputs: ['label', 'probabilities'], input_dtypes: { input: 'float32' } });
    assert.deepEqual(got.status, [{ version: 1, state: 'AVAILABLE', error_code: 0 }]);
    assert.equal(got.unknown_model, 'NOT_FOUND');
    const labels = got.rest_predict.predictions.map((p) => Number(p.label));
    assert.deepEqual(labels, reference.outputs.label?.data);
    // Classify (gRPC, tf.train.Example) and :classify (REST): the top class is the reference label.
    const want = reference.outputs.label?.data.map(String);
    assert.deepEqual(got.classify.map(topClass), want, 'grpc Classify top classes');
    assert.deepEqual(got.rest_classify.results.map(topClass), want, 'REST :classify top classes');
    assertMatches(
      { dtype: 'float32', shape: [got.classify.length, got.classify[0]?.length ?? 0], data: got.classify.flat().map(([, score]) => score) },
      reference.outputs.probabilities,
      'grpc Classify scores',
    );
    assert.deepEqual(got.classify_model_spec, { name: 'digits-mlp', version: 1 });
    assert.deepEqual(
      got.multi_inference.map((r) => r.map(topClass)),
      [want?.slice(0, 2)],
    );
    assert.equal(got.regress_classifier, 'FAILED_PRECONDITION');
  });

  it('Triton clients: health, metadata, infer over HTTP (JSON and binary, plain and gzip/deflate-compressed) and gRPC, classification extension', async (t) => {
    if (!py) return t.skip('no client virtualenv');
    const { stdout } = await run(py, [join(HERE, 'triton_client.py'), job()], { timeout: 120_000 });
    const got = JSON.parse(stdout) as Record<string, unknown> &
      Record<'http_json' | 'http_binary' | 'http_gzip' | 'http_deflate_binary' | 'grpc_infer', Record<string, Got>>;
    assert.deepEqual(
      [got.http_live, got.http_ready, got.http_model_ready, got.grpc_live, got.grpc_ready, got.grpc_model_ready],
      [true, true, true, true, true, true],
    );
    const meta = { name: 'digits-mlp', inputs: ['input'], outputs: ['label', 'probabilities'] };
    assert.deepEqual(got.http_metadata, meta);
    assert.deepEqual(got.grpc_metadata, meta);
    for (const transport of ['http_json', 'http_binary', 'http_gzip', 'http_deflate_binary', 'grpc_infer'] as const) {
      assertMatches(got[transport].probabilities, reference.outputs.probabilities, `${transport} probabilities`);
      assertMatches(got[transport].label, reference.outputs.label, `${transport} label`);
    }
    assert.notEqual(got.http_unknown_model, 'OK', 'an unknown model is an error through the client');
    // Classification extension (class_count=3 on "probabilities"): BYTES "score:index", top 3 per row.
    const probabilities = reference.outputs.probabilities;
    assert.ok(probabilities);
    const classes = probabilities.shape[1] ?? 0;
    for (const transport of ['http_classification', 'grpc_classification'] as const) {
      const top = got[transport] as Got;
      assert.deepEqual(top.shape, [probabilities.shape[0], 3], `${transport} shape`);
      for (const [i, entry] of top.data.entries()) {
        const row = Math.floor(i / 3);
        const scores: number[] = probabilities.data.slice(row * classes, (row + 1) * classes);
        const ranked = scores.map((p: number, c: number): [number, number] => [p, c]);
        const want = ranked.sort((a, b) => b[0] - a[0] || a[1] - b[1])[i % 3];
        const [score, index, ...rest] = String(entry).split(':');
        assert.equal(rest.length, 0, `${transport}[${i}] has no label (inflow has no label files): ${entry}`);
        assert.equal(Number(index), want?.[1], `${transport}[${i}] class: ${entry}`);
        assert.equal(score, want?.[0].toFixed(6), `${transport}[${i}] score: ${entry}`);
      }
    }
  });
});
