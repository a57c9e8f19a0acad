import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile, mkdir, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { loadServable } from '../../runtime/index.ts';
import { createLocalInference, type LocalInference } from '../../serving/local-inference.ts';
import { createGrpcServer, type GrpcServer } from './grpc-server.ts';
import { GrpcServiceName, loadGrpcProtos, SIGNATURE_DEF_MAP_TYPE_URL } from './grpc-protos.ts';
import { createGrpcTestClient, type GrpcTestClient } from './grpc-test-client.ts';

process.env.ORT_DISABLE_TELEMETRY = '1';

const MODELS = new URL('../../../models/', import.meta.url).pathname;
const { PREDICTION, MODEL, INFERENCE, HEALTH } = GrpcServiceName;

interface SampleTensor {
  datatype: string;
  shape: number[];
  data: (number | string)[];
}
interface Sample {
  inputs: Record<string, SampleTensor>;
  outputs: Record<string, SampleTensor>;
}

async function sample(name: string): Promise<Sample> {
  return JSON.parse(await readFile(join(MODELS, 'samples', `${name}.json`), 'utf8')) as Sample;
}

/** First `rows` rows of a sample tensor's data. */
function rowsOf(t: SampleTensor, rows: number): (number | string)[] {
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  return t.data.slice(0, rows * per);
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number | string>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs((actual[i] as number) - Number(expected[i])) <= 1e-5, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

function floatsOf(bytes: Uint8Array): Float32Array {
  return new Float32Array(Uint8Array.from(bytes).buffer);
}

async function rejectsWith(promise: Promise<unknown>, code: number, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: grpc.ServiceError) => {
    assert.equal(error.code, code, `expected status ${code}, got ${error.code}: ${error.details}`);
    if (message) assert.match(error.details, message);
    return true;
  });
}

const S = grpc.status;
const ROWS = 3;

describe('gRPC server over the example models', () => {
  let root: string;
  let inference: LocalInference;
  let server: GrpcServer;
  let client: GrpcTestClient;
  let digits: Sample;
  let cancer: Sample;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'inflow-grpc-'));
    await cp(join(MODELS, 'repository', 'digits-mlp'), join(root, 'digits-mlp'), { recursive: true });
    await appendFile(join(root, 'digits-mlp', 'config.yaml'), 'labels: { stable: 1 }\n');
    await cp(join(MODELS, 'repository', 'breast-cancer-pipeline'), join(root, 'breast-cancer-pipeline'), { recursive: true });
    // A model whose only version fails to load: its status shows the error.
    await mkdir(join(root, 'broken', '1'), { recursive: true });
    await writeFile(join(root, 'broken', 'config.yaml'), 'platform: onnx\nruntime: { file: model.onnx }\n');
    await writeFile(join(root, 'broken', '1', 'model.onnx'), 'not an onnx model');
    inference = await createLocalInference({ modelRepository: root, load: loadServable, watch: false, settleMs: 0 });
    server = createGrpcServer(inference, { host: '127.0.0.1', port: 0, admin: true });
    const { port } = await server.start();
    client = createGrpcTestClient(`127.0.0.1:${port}`);
    digits = await sample('digits-mlp');
    cancer = await sample('breast-cancer-gbt-pipeline');
  });

  after(async () => {
    client.close();
    await server.close(1000);
    await inference.close();
    await rm(root, { recursive: true, force: true });
  });

  const digitsInput = (rows = ROWS): { shape: number[]; data: number[] } => ({
    shape: [rows, 64],
    data: rowsOf(digits.inputs.input as SampleTensor, rows) as number[],
  });

  describe('Open Inference Protocol', () => {
    it('answers ModelInfer with typed contents as the Python reference does, echoing the id', async () => {
      const { shape, data } = digitsInput();
      const response = await client.unary<{
        model_name: string;
        model_version: string;
        id: string;
        outputs: { name: string; datatype: string; shape: string[]; contents: { fp32_contents: number[]; int64_contents: string[] } }[];
        raw_output_contents: Buffer[];
      }>(INFERENCE, 'ModelInfer', {
        model_name: 'digits-mlp',
        id: 'req-42',
        inputs: [{ name: 'input', datatype: 'FP32', shape, contents: { fp32_contents: data } }],
      });
      assert.equal(response.model_name, 'digits-mlp');
      assert.equal(response.model_version, '1');
      assert.equal(response.id, 'req-42');
      assert.deepEqual(response.raw_output_contents, []);
      const [label, probabilities] = response.outputs;
      assert.equal(label?.name, 'label');
      assert.equal(label.datatype, 'INT64');
      assert.deepEqual(label.shape, [String(ROWS)]);
      assert.deepEqual(label.contents.int64_contents.map(Number), rowsOf(digits.outputs.label as SampleTensor, ROWS));
      assert.equal(probabilities?.name, 'probabilities');
      assert.deepEqual(probabilities.shape, [String(ROWS), '10']);
      assertClose(probabilities.contents.fp32_contents, rowsOf(digits.outputs.probabilities as SampleTensor, ROWS), 'probabilities');
    });

    it('answers raw_input_contents with raw_output_contents, as Triton does', async () => {
      const { shape, data } = digitsInput();
      const response = await client.unary<{ outputs: { name: string; contents?: unknown }[]; raw_output_contents: Buffer[] }>(
        INFERENCE,
        'ModelInfer',
        {
          model_name: 'digits-mlp',
          model_version: '1',
          inputs: [{ name: 'input', datatype: 'FP32', shape }],
          outputs: [{ name: 'probabilities' }],
          raw_input_contents: [Buffer.from(Float32Array.from(data).buffer)],
        },
      );
      assert.deepEqual(
        response.outputs.map((o) => o.name),
        ['probabilities'],
      );
      assert.equal(response.outputs[0]?.contents, undefined);
      assert.equal(response.raw_output_contents.length, 1);
      assertClose(floatsOf(response.raw_output_contents[0]!), rowsOf(digits.outputs.probabilities as SampleTensor, ROWS), 'probabilities');
    });

    it('returns a BYTES output of a pipeline as bytes_contents', async () => {
      const input = cancer.inputs.input as SampleTensor;
      const response = await client.unary<{ outputs: { name: string; datatype: string; contents: { bytes_contents: Buffer[] } }[] }>(
        INFERENCE,
        'ModelInfer',
        {
          model_name: 'breast-cancer-pipeline',
          inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 30], contents: { fp32_contents: rowsOf(input, 2) } }],
          outputs: [{ name: 'class' }, { name: 'label' }],
        },
      );
      const [cls, label] = response.outputs;
      assert.equal(cls?.datatype, 'BYTES');
      const names = ['malignant', 'benign'];
      const expected = rowsOf(cancer.outputs.label as SampleTensor, 2).map((l) => names[Number(l)]);
      assert.deepEqual(
        cls.contents.bytes_contents.map((b) => b.toString()),
        expected,
      );
      assert.equal(label?.datatype, 'INT64');
    });

    it('answers liveness, readiness and server metadata', async () => {
      assert.deepEqual(await client.unary(INFERENCE, 'ServerLive', {}), { live: true });
      // "broken" never loads, so not every model is ready (OIP server readiness).
      assert.deepEqual(await client.unary(INFERENCE, 'ServerReady', {}), { ready: false });
      assert.deepEqual(await client.unary(INFERENCE, 'ModelReady', { name: 'digits-mlp' }), { ready: true });
      assert.deepEqual(await client.unary(INFERENCE, 'ModelReady', { name: 'digits-mlp', version: '2' }), { ready: false });
      assert.deepEqual(await client.unary(INFERENCE, 'ModelReady', { name: 'broken' }), { ready: false });
      await rejectsWith(client.unary(INFERENCE, 'ModelReady', { name: 'nope' }), S.NOT_FOUND, /model nope/);
      const metadata = await client.unary<{ name: string; extensions: string[] }>(INFERENCE, 'ServerMetadata', {});
      assert.equal(metadata.name, 'inflow');
      assert.deepEqual(metadata.extensions, ['model_repository']);
    });

    it('answers ModelMetadata with datatypes and -1 for variable dims', async () => {
      const metadata = await client.unary(INFERENCE, 'ModelMetadata', { name: 'digits-mlp' });
      assert.deepEqual(metadata, {
        name: 'digits-mlp',
        versions: ['1'],
        platform: 'onnxruntime_onnx',
        inputs: [{ name: 'input', datatype: 'FP32', shape: ['-1', '64'] }],
        outputs: [
          { name: 'label', datatype: 'INT64', shape: ['-1'] },
          { name: 'probabilities', datatype: 'FP32', shape: ['-1', '10'] },
        ],
      });
      await rejectsWith(
        client.unary(INFERENCE, 'ModelMetadata', { name: 'digits-mlp', version: '7' }),
        S.NOT_FOUND,
        /version 7 of model digits-mlp/,
      );
      await rejectsWith(
        client.unary(INFERENCE, 'ModelMetadata', { name: 'digits-mlp', version: 'x' }),
        S.INVALID_ARGUMENT,
        /decimal integer/,
      );
    });

    it('checks model, dtype and shape against the signature before decoding any element', async () => {
      // 3 BYTES elements whose raw data is malformed: decoding first would answer "BYTES raw data ends after…".
      const bytes = {
        model_name: 'digits-mlp',
        inputs: [{ name: 'input', datatype: 'BYTES', shape: [3] }],
        raw_input_contents: [Buffer.from([1])],
      };
      await rejectsWith(
        client.unary(INFERENCE, 'ModelInfer', bytes),
        S.INVALID_ARGUMENT,
        /expected FP32 with shape \[-1, 64\], got BYTES \[3\]/,
      );
      // TF Serving Predict: a string tensor with no values for 3 elements.
      const predict = {
        model_spec: { name: 'digits-mlp' },
        inputs: { input: { dtype: 'DT_STRING', tensor_shape: { dim: [{ size: 3 }] }, string_val: [] } },
      };
      await rejectsWith(
        client.unary(PREDICTION, 'Predict', predict),
        S.INVALID_ARGUMENT,
        /expected FP32 with shape \[-1, 64\], got BYTES \[3\]/,
      );
    });

    it('rejects every kind of bad ModelInfer request with a clear status', async () => {
      const { shape, data } = digitsInput(1);
      const good = { name: 'input', datatype: 'FP32', shape, contents: { fp32_contents: data } };
      const infer = (request: object): Promise<unknown> => client.unary(INFERENCE, 'ModelInfer', request);
      await rejectsWith(infer({ model_name: 'nope', inputs: [good] }), S.NOT_FOUND, /Servable not found for request: Latest\(nope\)/);
      await rejectsWith(infer({ model_name: 'digits-mlp', model_version: '9', inputs: [good] }), S.NOT_FOUND, /Specific\(digits-mlp, 9\)/);
      await rejectsWith(infer({ model_name: '', inputs: [good] }), S.INVALID_ARGUMENT, /model_name is empty/);
      await rejectsWith(infer({ model_name: 'digits-mlp', inputs: [{ ...good, name: 'x' }] }), S.INVALID_ARGUMENT, /has no input "x"/);
      await rejectsWith(infer({ model_name: 'digits-mlp', inputs: [] }), S.INVALID_ARGUMENT, /needs input "input"/);
      await rejectsWith(infer({ model_name: 'digits-mlp', inputs: [good, good] }), S.INVALID_ARGUMENT, /appears twice/);
      await rejectsWith(
        infer({ model_name: 'digits-mlp', inputs: [{ ...good, contents: { fp32_contents: data.slice(1) } }] }),
        S.INVALID_ARGUMENT,
        /needs 64 values in contents.fp32_contents, got 63/,
      );
      await rejectsWith(
        infer({ model_name: 'digits-mlp', inputs: [{ ...good, contents: { fp64_contents: data } }] }),
        S.INVALID_ARGUMENT,
        /belong in contents.fp32_contents/,
      );
      await rejectsWith(
        infer({ model_name: 'digits-mlp', inputs: [{ ...good, datatype: 'FLOAT' }] }),
        S.INVALID_ARGUMENT,
        /unknown datatype/,
      );
      await rejectsWith(
        infer({ model_name: 'digits-mlp', inputs: [{ ...good, shape: ['4000000000', '4000000000'] }] }),
        S.INVALID_ARGUMENT,
        /more than 2147483647 elements/,
      );
      await rejectsWith(
        infer({ model_name: 'digits-mlp', inputs: [{ ...good, datatype: 'INT32', contents: { int_contents: data } }] }),
        S.INVALID_ARGUMENT,
        /expected FP32 with shape \[-1, 64\], got INT32/,
      );
      const raw = Buffer.from(Float32Array.from(data).buffer);
      await rejectsWith(
        infer({ model_name: 'digits-mlp', inputs: [{ ...good, contents: undefined }], raw_input_contents: [raw.subarray(4)] }),
        S.INVALID_ARGUMENT,
        /needs 256 bytes of raw data, got 252/,
      );
      await rejectsWith(
        infer({ model_name: 'digits-mlp', inputs: [good], raw_input_contents: [raw] }),
        S.INVALID_ARGUMENT,
        /contents field must not be specified when using raw_input_contents/,
      );
      await rejectsWith(
        infer({ model_name: 'digits-mlp', inputs: [{ ...good, contents: undefined }], raw_input_contents: [raw, raw] }),
        S.INVALID_ARGUMENT,
        /expected 1 raw_input_contents/,
      );
      await rejectsWith(
        infer({ model_name: 'digits-mlp', inputs: [good], outputs: [{ name: 'nope' }] }),
        S.INVALID_ARGUMENT,
        /has no output "nope"/,
      );
      await rejectsWith(
        infer({
          model_name: 'digits-mlp',
          inputs: [good],
          outputs: [{ name: 'label', parameters: { classification: { int64_param: 0 } } }],
        }),
        S.INVALID_ARGUMENT,
        /output "label": parameter 'classification' must be an integer ≥ 1/,
      );
    });
  });

  describe('TF Serving PredictionService', () => {
    const tensorProto = (rows = ROWS): object => {
      const { shape, data } = digitsInput(rows);
      return { dtype: 'DT_FLOAT', tensor_shape: { dim: shape.map((size) => ({ size })) }, float_val: data };
    };

    it('answers Predict as the Python reference does and fills in the model spec', async () => {
      const response = await client.unary<{
        model_spec: { name: string; version: { value: string }; signature_name: string };
        outputs: Record<string, { dtype: string; tensor_shape: { dim: { size: string }[] }; float_val: number[]; int64_val: string[] }>;
      }>(PREDICTION, 'Predict', { model_spec: { name: 'digits-mlp', version_label: 'stable' }, inputs: { input: tensorProto() } });
      assert.equal(response.model_spec.name, 'digits-mlp');
      assert.equal(response.model_spec.version.value, '1');
      assert.equal(response.model_spec.signature_name, 'serving_default');
      const { label, probabilities } = response.outputs;
      assert.equal(label?.dtype, 'DT_INT64');
      assert.deepEqual(label.int64_val.map(Number), rowsOf(digits.outputs.label as SampleTensor, ROWS));
      assert.equal(probabilities?.dtype, 'DT_FLOAT');
      assert.deepEqual(
        probabilities.tensor_shape.dim.map((d) => d.size),
        [String(ROWS), '10'],
      );
      assertClose(probabilities.float_val, rowsOf(digits.outputs.probabilities as SampleTensor, ROWS), 'probabilities');
    });

    it('reads tensor_content (what make_tensor_proto sends) and applies output_filter', async () => {
      const { shape, data } = digitsInput();
      const response = await client.unary<{ outputs: Record<string, { float_val: number[] }> }>(PREDICTION, 'Predict', {
        model_spec: { name: 'digits-mlp', version: { value: '1' }, signature_name: 'serving_default' },
        inputs: {
          input: {
            dtype: 'DT_FLOAT',
            tensor_shape: { dim: shape.map((size) => ({ size })) },
            tensor_content: Buffer.from(Float32Array.from(data).buffer),
          },
        },
        output_filter: ['probabilities'],
      });
      assert.deepEqual(Object.keys(response.outputs), ['probabilities']);
      assertClose(response.outputs.probabilities!.float_val, rowsOf(digits.outputs.probabilities as SampleTensor, ROWS), 'probabilities');
    });

    it('rejects bad Predict requests with TF Serving statuses and messages', async () => {
      const predict = (request: object): Promise<unknown> => client.unary(PREDICTION, 'Predict', request);
      const inputs = { input: tensorProto(1) };
      await rejectsWith(predict({ inputs }), S.INVALID_ARGUMENT, /Missing ModelSpec/);
      await rejectsWith(predict({ model_spec: { name: 'nope' }, inputs }), S.NOT_FOUND, /Servable not found for request: Latest\(nope\)/);
      await rejectsWith(
        predict({ model_spec: { name: 'digits-mlp', version: { value: '3' } }, inputs }),
        S.NOT_FOUND,
        /Specific\(digits-mlp, 3\)/,
      );
      await rejectsWith(
        predict({ model_spec: { name: 'digits-mlp', version_label: 'canary' }, inputs }),
        S.INVALID_ARGUMENT,
        /Unrecognized servable version label: canary/,
      );
      await rejectsWith(
        predict({ model_spec: { name: 'digits-mlp', version: { value: '1' }, version_label: 'stable' }, inputs }),
        S.INVALID_ARGUMENT,
        /Both model version \(1\) and model version label \(stable\) cannot be supplied/,
      );
      await rejectsWith(
        predict({ model_spec: { name: 'digits-mlp', signature_name: 'classify' }, inputs }),
        S.FAILED_PRECONDITION,
        /signature key "classify"/,
      );
      await rejectsWith(
        predict({ model_spec: { name: 'digits-mlp' }, inputs: { x: tensorProto(1) } }),
        S.INVALID_ARGUMENT,
        /has no input "x"/,
      );
      await rejectsWith(predict({ model_spec: { name: 'digits-mlp' }, inputs: {} }), S.INVALID_ARGUMENT, /needs input "input"/);
      await rejectsWith(
        predict({
          model_spec: { name: 'digits-mlp' },
          inputs: { input: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: 1 }, { size: 64 }] }, float_val: [1, 2, 3] } },
        }),
        S.INVALID_ARGUMENT,
        /needs 64 values in float_val \(or 1 to broadcast\), got 3/,
      );
      await rejectsWith(
        predict({
          model_spec: { name: 'digits-mlp' },
          inputs: { input: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: '9000000000' }, { size: 64 }] }, float_val: [1] } },
        }),
        S.INVALID_ARGUMENT,
        /more than 2147483647 elements/,
      );
      await rejectsWith(
        predict({ model_spec: { name: 'digits-mlp' }, inputs, output_filter: ['nope'] }),
        S.INVALID_ARGUMENT,
        /has no output "nope"/,
      );
    });

    it('answers GetModelMetadata with a SignatureDefMap packed in an Any, as TF Serving does', async () => {
      const response = await client.unary<{
        model_spec: { name: string; version: { value: string } };
        metadata: Record<string, { type_url: string; value: Buffer }>;
      }>(PREDICTION, 'GetModelMetadata', { model_spec: { name: 'digits-mlp' }, metadata_field: ['signature_def'] });
      assert.equal(response.model_spec.version.value, '1');
      const any = response.metadata.signature_def;
      assert.equal(any?.type_url, SIGNATURE_DEF_MAP_TYPE_URL);
      const type = loadGrpcProtos().signatureDefMap;
      const map = type.toObject(type.decode(any.value), { longs: String, enums: String }) as {
        signature_def: Record<string, { method_name: string; inputs: Record<string, unknown>; outputs: Record<string, unknown> }>;
      };
      const signature = map.signature_def.serving_default;
      assert.equal(signature?.method_name, 'tensorflow/serving/predict');
      assert.deepEqual(signature.inputs, {
        input: { name: 'input', dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: '-1' }, { size: '64' }] } },
      });
      assert.deepEqual(Object.keys(signature.outputs), ['label', 'probabilities']);
      await rejectsWith(
        client.unary(PREDICTION, 'GetModelMetadata', { model_spec: { name: 'digits-mlp' } }),
        S.INVALID_ARGUMENT,
        /at least one metadata_field/,
      );
      await rejectsWith(
        client.unary(PREDICTION, 'GetModelMetadata', { model_spec: { name: 'digits-mlp' }, metadata_field: ['graph'] }),
        S.INVALID_ARGUMENT,
        /Metadata field graph is not supported/,
      );
      await rejectsWith(
        client.unary(PREDICTION, 'GetModelMetadata', { model_spec: { name: 'nope' }, metadata_field: ['signature_def'] }),
        S.NOT_FOUND,
      );
    });

    it('serves Classify, Regress and MultiInference (tfserving-examples.test.ts covers them): empty requests are INVALID_ARGUMENT', async () => {
      await rejectsWith(client.unary(PREDICTION, 'Classify', {}), S.INVALID_ARGUMENT, /Missing ModelSpec/);
      await rejectsWith(client.unary(PREDICTION, 'Regress', {}), S.INVALID_ARGUMENT, /Missing ModelSpec/);
      await rejectsWith(client.unary(PREDICTION, 'MultiInference', {}), S.INVALID_ARGUMENT, /has no tasks/);
    });
  });

  describe('TF Serving ModelService', () => {
    it('reports version states and load errors with GetModelStatus', async () => {
      assert.deepEqual(await client.unary(MODEL, 'GetModelStatus', { model_spec: { name: 'digits-mlp' } }), {
        model_version_status: [{ version: '1', state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } }],
      });
      const broken = await client.unary<{
        model_version_status: { state: string; status: { error_code: string; error_message: string } }[];
      }>(MODEL, 'GetModelStatus', { model_spec: { name: 'broken' } });
      assert.equal(broken.model_version_status[0]?.state, 'END');
      assert.notEqual(broken.model_version_status[0].status.error_code, 'OK');
      assert.ok(broken.model_version_status[0].status.error_message.length > 0);
      await rejectsWith(
        client.unary(MODEL, 'GetModelStatus', { model_spec: { name: 'nope' } }),
        S.NOT_FOUND,
        /Could not find any versions of model nope/,
      );
      await rejectsWith(
        client.unary(MODEL, 'GetModelStatus', { model_spec: { name: 'digits-mlp', version: { value: '5' } } }),
        S.NOT_FOUND,
        /Could not find version 5 of model digits-mlp/,
      );
    });
  });

  describe('health, reflection, repository extension and robustness', () => {
    it('reports health NOT_SERVING while a model is not ready, and NOT_FOUND for unknown services', async () => {
      assert.deepEqual(await client.unary(HEALTH, 'Check', { service: '' }), { status: 'NOT_SERVING' });
      assert.deepEqual(await client.unary(HEALTH, 'Check', { service: INFERENCE }), { status: 'NOT_SERVING' });
      await rejectsWith(client.unary(HEALTH, 'Check', { service: 'nope' }), S.NOT_FOUND);
    });

    it('lists the repository with RepositoryIndex, unloads with RepositoryModelUnload and loads with RepositoryModelLoad', async () => {
      const index = await client.unary<{ models: { name: string; version: string; state: string; reason: string }[] }>(
        INFERENCE,
        'RepositoryIndex',
        {},
      );
      const byName = new Map(index.models.map((m) => [m.name, m]));
      assert.equal(byName.get('digits-mlp')?.state, 'READY');
      assert.equal(byName.get('broken')?.state, 'UNAVAILABLE');
      assert.ok(byName.get('broken')!.reason.length > 0);
      const ready = await client.unary<{ models: { name: string }[] }>(INFERENCE, 'RepositoryIndex', { ready: true });
      assert.deepEqual(ready.models.map((m) => m.name).sort(), ['breast-cancer-pipeline', 'digits-mlp']);
      assert.deepEqual(await client.unary(INFERENCE, 'RepositoryModelLoad', { model_name: 'digits-mlp' }), {});
      await rejectsWith(client.unary(INFERENCE, 'RepositoryModelLoad', { model_name: 'nope' }), S.NOT_FOUND, /no folder in the repository/);
      await rejectsWith(
        client.unary(INFERENCE, 'RepositoryModelLoad', { model_name: 'broken' }),
        S.FAILED_PRECONDITION,
        /failed to load 'broken'/,
      );
      assert.deepEqual(await client.unary(INFERENCE, 'RepositoryModelUnload', { model_name: 'digits-mlp' }), {});
      assert.deepEqual(await client.unary(INFERENCE, 'ModelReady', { name: 'digits-mlp' }), { ready: false });
      assert.deepEqual(await client.unary(INFERENCE, 'RepositoryModelLoad', { model_name: 'digits-mlp' }), {});
      assert.deepEqual(await client.unary(INFERENCE, 'ModelReady', { name: 'digits-mlp' }), { ready: true });
      await rejectsWith(client.unary(INFERENCE, 'RepositoryModelUnload', { model_name: 'nope' }), S.NOT_FOUND);
    });

    it('applies a pushed TF model config with HandleReloadConfigRequest: listed models load, the others unload', async () => {
      const only = { config: { model_config_list: { config: [{ name: 'digits-mlp', base_path: '/ignored' }] } } };
      assert.deepEqual(await client.unary(MODEL, 'HandleReloadConfigRequest', only), {
        metric: [],
        status: { error_code: 'OK', error_message: '' },
      });
      assert.deepEqual(await client.unary(INFERENCE, 'ModelReady', { name: 'breast-cancer-pipeline' }), { ready: false });
      assert.deepEqual(await client.unary(INFERENCE, 'ModelReady', { name: 'digits-mlp' }), { ready: true });
      const all = ['digits-mlp', 'breast-cancer-pipeline', 'broken'].map((name) => ({ name }));
      const both = { config: { model_config_list: { config: all } } };
      await client.unary(MODEL, 'HandleReloadConfigRequest', both);
      assert.deepEqual(await client.unary(INFERENCE, 'ModelReady', { name: 'breast-cancer-pipeline' }), { ready: true });
      await rejectsWith(
        client.unary(MODEL, 'HandleReloadConfigRequest', { config: { model_config_list: { config: [{ name: 'nope' }] } } }),
        S.NOT_FOUND,
        /no folder/,
      );
      await rejectsWith(client.unary(MODEL, 'HandleReloadConfigRequest', { config: {} }), S.INVALID_ARGUMENT, /model_config_list/);
    });

    it('serves reflection over the same .proto files', async () => {
      const reflection = new grpc.Client(client.channel.getChannel().getTarget().replace(/^dns:/, ''), grpc.credentials.createInsecure());
      try {
        const answer = await new Promise<Buffer>((resolve, reject) => {
          const stream = reflection.makeBidiStreamRequest(
            '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
            (b: Buffer) => b,
            (b: Buffer) => b,
          );
          stream.on('data', (b: Buffer) => {
            resolve(b);
            stream.end();
          });
          stream.on('error', reject);
          // ServerReflectionRequest { list_services (field 7) = "" }
          stream.write(Buffer.from([0x3a, 0x00]));
        });
        const text = answer.toString('latin1');
        for (const name of [PREDICTION, MODEL, INFERENCE]) assert.ok(text.includes(name), `reflection lists ${name}`);
      } finally {
        reflection.close();
      }
    });

    it('answers garbage and truncated protobuf bytes with INVALID_ARGUMENT and stays healthy', async () => {
      const good = loadGrpcProtos().services[INFERENCE].ModelInfer!.requestSerialize({
        model_name: 'digits-mlp',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], contents: { fp32_contents: digitsInput(1).data } }],
      });
      await rejectsWith(
        client.unaryBytes(INFERENCE, 'ModelInfer', good.subarray(0, good.length - 7)),
        S.INVALID_ARGUMENT,
        /not a valid protobuf message/,
      );
      await rejectsWith(
        client.unaryBytes(INFERENCE, 'ModelInfer', Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])),
        S.INVALID_ARGUMENT,
        /not a valid protobuf message/,
      );
      await rejectsWith(
        client.unaryBytes(PREDICTION, 'Predict', Buffer.from([0x0a, 0x7f, 0x01])),
        S.INVALID_ARGUMENT,
        /not a valid protobuf message/,
      );
      // The same server still answers a good request.
      const response = await client.unaryBytes(INFERENCE, 'ModelInfer', good);
      assert.ok(response.length > 0);
      assert.deepEqual(await client.unary(INFERENCE, 'ServerLive', {}), { live: true });
    });

    it('counts calls by method and status code in the inference registry', async () => {
      const text = await inference.metrics.registry.metrics();
      assert.match(text, /inflow_grpc_requests_total\{method="inference\.GRPCInferenceService\/ModelInfer",code="OK"\} \d+/);
      assert.match(text, /inflow_grpc_requests_total\{method="inference\.GRPCInferenceService\/ModelInfer",code="INVALID_ARGUMENT"\} \d+/);
      assert.match(
        text,
        /inflow_grpc_request_duration_seconds_bucket\{le="[^"]+",method="tensorflow\.serving\.PredictionService\/Predict",code="OK"\}/,
      );
    });
  });
});
