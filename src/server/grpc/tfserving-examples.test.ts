import assert from 'node:assert/strict';
import { appendFile, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { silentLogger } from '../../observability/logger.ts';
import { loadServable, setRuntimeLogger } from '../../runtime/index.ts';
import { createLocalInference, type LocalInference } from '../../serving/local-inference.ts';
import { GrpcServiceName } from './grpc-protos.ts';
import { createGrpcServer, type GrpcServer } from './grpc-server.ts';
import { createGrpcTestClient, type GrpcTestClient } from './grpc-test-client.ts';

process.env.ORT_DISABLE_TELEMETRY = '1';

const MODELS = new URL('../../../models/', import.meta.url).pathname;
const { PREDICTION } = GrpcServiceName;
const S = grpc.status;

/** TF Serving's half_plus_two as a module model: y = 0.5 x + 2. */
const HALF_PLUS_TWO = `export default {
  signature: { inputs: [{ name: 'x', dtype: 'FP32', shape: [-1] }], outputs: [{ name: 'y', dtype: 'FP32', shape: [-1] }] },
  run(inputs) {
    const x = inputs.x.data;
    return { y: { dtype: 'FP32', shape: [x.length], data: x.map((v) => 0.5 * v + 2) } };
  },
};
`;

/** A model that both classifies and regresses: x [-1, 2] → probabilities x / sum(x), total sum(x). */
const TWO_HEADS = `export default {
  signature: {
    inputs: [{ name: 'x', dtype: 'FP32', shape: [-1, 2] }],
    outputs: [{ name: 'probabilities', dtype: 'FP32', shape: [-1, 2] }, { name: 'total', dtype: 'FP32', shape: [-1, 1] }],
  },
  run(inputs) {
    const x = inputs.x.data;
    const n = x.length / 2;
    const p = new Float32Array(2 * n);
    const t = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      t[i] = x[2 * i] + x[2 * i + 1];
      p[2 * i] = x[2 * i] / t[i];
      p[2 * i + 1] = x[2 * i + 1] / t[i];
    }
    return { probabilities: { dtype: 'FP32', shape: [n, 2], data: p }, total: { dtype: 'FP32', shape: [n, 1], data: t } };
  },
};
`;

interface SampleTensor {
  shape: number[];
  data: number[];
}

type Feature = { float_list: { value: number[] } } | { int64_list: { value: string[] } } | { bytes_list: { value: Buffer[] } };
const example = (features: Record<string, Feature>): object => ({ features: { feature: features } });
const floats = (...value: number[]): Feature => ({ float_list: { value } });

interface ClassifyResponse {
  model_spec: { name: string; version: { value: string }; signature_name: string };
  result: { classifications: { classes: { label: string; score: number }[] }[] };
}

async function rejectsWith(promise: Promise<unknown>, code: number, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: grpc.ServiceError) => {
    assert.equal(error.code, code, `expected status ${code}, got ${error.code}: ${error.details}`);
    assert.match(error.details, message);
    return true;
  });
}

describe('TF Serving gRPC Classify, Regress and MultiInference', () => {
  let root: string;
  let inference: LocalInference;
  let server: GrpcServer;
  let client: GrpcTestClient;
  let input: SampleTensor;
  let probabilities: SampleTensor;
  let labels: SampleTensor;

  before(async () => {
    setRuntimeLogger(silentLogger);
    root = await mkdtemp(join(tmpdir(), 'inflow-tfx-'));
    await cp(join(MODELS, 'repository', 'digits-mlp'), join(root, 'digits-mlp'), { recursive: true });
    await appendFile(join(root, 'digits-mlp', 'config.yaml'), 'labels: { stable: 1 }\n');
    await mkdir(join(root, 'half-plus-two', '1'), { recursive: true });
    await writeFile(join(root, 'half-plus-two', 'config.yaml'), 'platform: module\n');
    await writeFile(join(root, 'half-plus-two', '1', 'model.mjs'), HALF_PLUS_TWO);
    await mkdir(join(root, 'two-heads', '1'), { recursive: true });
    await writeFile(join(root, 'two-heads', 'config.yaml'), 'platform: module\n');
    await writeFile(join(root, 'two-heads', '1', 'model.mjs'), TWO_HEADS);
    inference = await createLocalInference({ modelRepository: root, load: loadServable, watch: false, settleMs: 0 });
    server = createGrpcServer(inference, { host: '127.0.0.1', port: 0 });
    const { port } = await server.start();
    client = createGrpcTestClient(`127.0.0.1:${port}`);
    const digits = JSON.parse(await readFile(join(MODELS, 'samples', 'digits-mlp.json'), 'utf8')) as Record<
      string,
      Record<string, SampleTensor>
    >;
    input = digits.inputs!.input!;
    probabilities = digits.outputs!.probabilities!;
    labels = digits.outputs!.label!;
  });

  after(async () => {
    client.close();
    await server.close(1000);
    await inference.close();
    await rm(root, { recursive: true, force: true });
  });

  const digitRow = (i: number): number[] => input.data.slice(i * 64, (i + 1) * 64);

  it('answers Classify with every class and its score per Example, as the Python reference, and the resolved model spec', async () => {
    const examples = [0, 1, 2].map((i) => example({ input: floats(...digitRow(i)) }));
    const response = await client.unary<ClassifyResponse>(PREDICTION, 'Classify', {
      model_spec: { name: 'digits-mlp', version_label: 'stable' },
      input: { example_list: { examples } },
    });
    const { name, version, signature_name } = response.model_spec;
    assert.deepEqual({ name, version, signature_name }, { name: 'digits-mlp', version: { value: '1' }, signature_name: 'serving_default' });
    const rows = response.result.classifications;
    assert.equal(rows.length, 3);
    for (const [i, { classes }] of rows.entries()) {
      assert.deepEqual(
        classes.map((c) => c.label),
        ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
      );
      const top = classes.reduce((a, b) => (b.score > a.score ? b : a));
      assert.equal(top.label, String(labels.data[i]));
      for (const [c, { score }] of classes.entries()) {
        assert.ok(Math.abs(score - (probabilities.data[i * 10 + c] as number)) <= 1e-6, `example ${i} class ${c}`);
      }
    }
  });

  it('reads ExampleListWithContext and int64_list features for a float input', async () => {
    const row = digitRow(0);
    const context = example(Object.fromEntries(row.slice(1).map((v, j) => [`input_${j + 1}`, { int64_list: { value: [String(v)] } }])));
    const response = await client.unary<ClassifyResponse>(PREDICTION, 'Classify', {
      model_spec: { name: 'digits-mlp' },
      input: { example_list_with_context: { examples: [example({ input_0: floats(row[0] as number) })], context } },
    });
    const classes = response.result.classifications[0]?.classes ?? [];
    assert.equal(classes.reduce((a, b) => (b.score > a.score ? b : a)).label, String(labels.data[0]));
  });

  it('answers Regress with one value per Example (TF’s half_plus_two: 80 → 42)', async () => {
    const response = await client.unary<{ model_spec: { name: string }; result: { regressions: { value: number }[] } }>(
      PREDICTION,
      'Regress',
      {
        model_spec: { name: 'half-plus-two', signature_name: 'serving_default' },
        input: { example_list: { examples: [example({ x: floats(80) }), example({ x: { int64_list: { value: ['3'] } } })] } },
      },
    );
    assert.equal(response.model_spec.name, 'half-plus-two');
    assert.deepEqual(response.result.regressions, [{ value: 42 }, { value: 3.5 }]);
  });

  it('runs MultiInference tasks with one inference and answers one result per task, in task order', async () => {
    let inferences = 0;
    const counting: LocalInference = {
      ...inference,
      infer: (request, options) => {
        inferences++;
        return inference.infer(request, options);
      },
    };
    const own = createGrpcServer(counting, { host: '127.0.0.1', port: 0 });
    const { port } = await own.start();
    const direct = createGrpcTestClient(`127.0.0.1:${port}`);
    try {
      const spec = { name: 'two-heads' };
      const response = await direct.unary<{
        results: {
          model_spec: { name: string; version: { value: string } };
          classification_result?: unknown;
          regression_result?: unknown;
        }[];
      }>(PREDICTION, 'MultiInference', {
        tasks: [
          { model_spec: spec, method_name: 'tensorflow/serving/regress' },
          { model_spec: spec, method_name: 'tensorflow/serving/classify' },
        ],
        input: { example_list: { examples: [example({ x: floats(1, 3) }), example({ x_0: floats(2), x_1: floats(2) })] } },
      });
      assert.equal(inferences, 1);
      assert.deepEqual(
        response.results.map((r) => [r.model_spec.name, r.model_spec.version.value]),
        [
          ['two-heads', '1'],
          ['two-heads', '1'],
        ],
      );
      assert.deepEqual(response.results[0]?.regression_result, { regressions: [{ value: 4 }, { value: 4 }] });
      assert.equal(response.results[0]?.classification_result, undefined);
      assert.deepEqual(response.results[1]?.classification_result, {
        classifications: [
          {
            classes: [
              { label: '0', score: 0.25 },
              { label: '1', score: 0.75 },
            ],
          },
          {
            classes: [
              { label: '0', score: 0.5 },
              { label: '1', score: 0.5 },
            ],
          },
        ],
      });
      // A task the model cannot answer fails the whole call before any inference, saying why.
      await rejectsWith(
        direct.unary(PREDICTION, 'MultiInference', {
          tasks: [
            { model_spec: { name: 'digits-mlp' }, method_name: 'tensorflow/serving/classify' },
            { model_spec: { name: 'digits-mlp' }, method_name: 'tensorflow/serving/regress' },
          ],
          input: { example_list: { examples: [example({ input: floats(...digitRow(0)) })] } },
        }),
        S.FAILED_PRECONDITION,
        /model "digits-mlp" has no output to regress with/,
      );
      assert.equal(inferences, 1);
    } finally {
      direct.close();
      await own.close(1000);
    }
  });

  it('rejects bad requests with TF Serving statuses and messages that say what was expected', async () => {
    const call = (method: string, request: object): Promise<unknown> => client.unary(PREDICTION, method, request);
    const one = { example_list: { examples: [example({ input: floats(...digitRow(0)) })] } };
    await rejectsWith(call('Classify', { input: one }), S.INVALID_ARGUMENT, /Missing ModelSpec/);
    await rejectsWith(
      call('Classify', { model_spec: { name: 'nope' }, input: one }),
      S.NOT_FOUND,
      /^Servable not found for request: Latest\(nope\)$/,
    );
    await rejectsWith(
      call('Classify', { model_spec: { name: 'digits-mlp', version: { value: '7' } }, input: one }),
      S.NOT_FOUND,
      /Specific\(digits-mlp, 7\)/,
    );
    await rejectsWith(
      call('Classify', { model_spec: { name: 'digits-mlp', version_label: 'canary' }, input: one }),
      S.INVALID_ARGUMENT,
      /Unrecognized servable version label: canary/,
    );
    await rejectsWith(
      call('Classify', { model_spec: { name: 'digits-mlp', signature_name: 'other' }, input: one }),
      S.FAILED_PRECONDITION,
      /signature key "other"/,
    );
    await rejectsWith(
      call('Classify', { model_spec: { name: 'digits-mlp' } }),
      S.INVALID_ARGUMENT,
      /Input is empty; expected input\.example_list/,
    );
    await rejectsWith(
      call('Classify', { model_spec: { name: 'digits-mlp' }, input: { example_list: {} } }),
      S.INVALID_ARGUMENT,
      /Input is empty; expected at least one tf\.Example/,
    );
    await rejectsWith(
      call('Classify', { model_spec: { name: 'digits-mlp' }, input: { example_list: { examples: [example({ input: floats(1, 2) })] } } }),
      S.INVALID_ARGUMENT,
      /example 0: feature "input" has 2 values; expected 64 for model input "input" \(FP32 \[-1, 64\]\)/,
    );
    await rejectsWith(
      call('Regress', { model_spec: { name: 'digits-mlp' }, input: one }),
      S.FAILED_PRECONDITION,
      /no output to regress with/,
    );
    await rejectsWith(call('MultiInference', { input: one }), S.INVALID_ARGUMENT, /has no tasks; expected at least one InferenceTask/);
    const task = (method_name: string, name = 'digits-mlp'): object => ({ model_spec: { name }, method_name });
    await rejectsWith(
      call('MultiInference', { tasks: [task('tensorflow/serving/predict')], input: one }),
      S.INVALID_ARGUMENT,
      /Unsupported signature method_name: tensorflow\/serving\/predict; expected "tensorflow\/serving\/classify" or/,
    );
    await rejectsWith(
      call('MultiInference', { tasks: [task('tensorflow/serving/classify'), task('tensorflow/serving/classify')], input: one }),
      S.INVALID_ARGUMENT,
      /Duplicate evaluation of signature: serving_default \(task 1 repeats/,
    );
    await rejectsWith(
      call('MultiInference', {
        tasks: [task('tensorflow/serving/classify'), task('tensorflow/serving/regress', 'half-plus-two')],
        input: one,
      }),
      S.INVALID_ARGUMENT,
      /must access the same model, version and label; task 1/,
    );
  });
});
