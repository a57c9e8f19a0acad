import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseConfigText } from '../config/load-config.ts';
import { InflowError } from '../errors.ts';
import { silentLogger } from '../observability/logger.ts';
import { createTensor, type Tensor, tensorStrings } from '../tensor/tensor.ts';
import { assertMatches, type Sample, sampleTensor } from './fixtures/samples.ts';
import { loadServable } from './index.ts';
import { createPipelineServable, type LoadStep, loadPipelineServable, type PipelineFile } from './pipeline-servable.ts';
import { setRuntimeLogger } from './runtime-logger.ts';
import type { Servable, TensorSpec } from './servable.ts';

setRuntimeLogger(silentLogger);
const MODELS = fileURLToPath(new URL('../../models/', import.meta.url));

/** A servable that records its calls and adds `add` to FP32 input `in`. */
function adder(add: number, calls: string[], label: string, input = 'in', output = 'out'): Servable {
  const spec = (name: string): TensorSpec => ({ name, dtype: 'FP32', shape: [-1] });
  return {
    signature: { inputs: [spec(input)], outputs: [spec(output)] },
    async run(inputs) {
      calls.push(label);
      const x = inputs[input]?.data as Float32Array;
      return {
        [output]: createTensor(
          'FP32',
          [x.length],
          x.map((v) => v + add),
        ),
      };
    },
    async close() {
      calls.push(`close ${label}`);
    },
  };
}

const fp32 = (values: number[]): Tensor => createTensor('FP32', [values.length], Float32Array.from(values));

describe('pipeline servable', () => {
  it('serves the breast-cancer example: raw features → standardize → GBT → class name, as the Python reference', async () => {
    const model = join(MODELS, 'repository', 'breast-cancer-pipeline');
    const config = parseConfigText(readFileSync(join(model, 'config.yaml'), 'utf8'), 'config.yaml') as {
      platform: string;
      runtime: unknown;
    };
    const sample = JSON.parse(readFileSync(join(MODELS, 'samples', 'breast-cancer-gbt-pipeline.json'), 'utf8')) as Sample;
    const servable = await loadServable(config.platform, {
      dir: join(model, '1'),
      model: 'breast-cancer-pipeline',
      version: 1,
      options: config.runtime,
    });
    try {
      assert.deepEqual(servable.signature.inputs, [{ name: 'input', dtype: 'FP32', shape: [-1, 30] }]);
      const out = await servable.run({ input: sampleTensor(sample.inputs.input!) });
      assertMatches(out.label, sampleTensor(sample.outputs.label!), 'label');
      assertMatches(out.probabilities, sampleTensor(sample.outputs.probabilities!), 'probabilities');
      const names = ['malignant', 'benign'];
      assert.deepEqual(
        tensorStrings(out.class!),
        (sample.outputs.label!.data as number[]).map((l) => names[l]),
      );
    } finally {
      await servable.close();
    }
  });

  it('wires steps by name, renames inputs and outputs, and runs only the steps the wanted outputs need', async () => {
    const calls: string[] = [];
    const file: PipelineFile = {
      steps: [
        { name: 'a', platform: 'module', inputs: { in: 'x' } },
        { name: 'b', platform: 'module', inputs: { in: 'out' }, outputs: { out: 'y' } },
        { name: 'c', platform: 'module', inputs: { in: 'x' }, outputs: { out: 'side' } },
      ],
      outputs: ['y', 'side'],
    };
    const servable = createPipelineServable(
      file,
      [adder(1, calls, 'a'), adder(10, calls, 'b'), adder(100, calls, 'c')],
      'p.yaml',
      'model "p" v1',
    );
    assert.deepEqual(servable.signature.inputs, [{ name: 'x', dtype: 'FP32', shape: [-1] }]);
    assert.deepEqual(
      servable.signature.outputs.map((s) => s.name),
      ['y', 'side'],
    );
    const all = await servable.run({ x: fp32([1, 2]) });
    assert.deepEqual([...(all.y?.data as Float32Array)], [12, 13]);
    assert.deepEqual([...(all.side?.data as Float32Array)], [101, 102]);
    calls.length = 0;
    const y = await servable.run({ x: fp32([0]) }, { outputs: ['y'] });
    assert.deepEqual(Object.keys(y), ['y']);
    assert.deepEqual(calls, ['a', 'b']);
    await servable.close();
    assert.deepEqual(calls.slice(2), ['close a', 'close b', 'close c']);
  });

  it('refuses wiring that cannot work, naming the file and the field', () => {
    const calls: string[] = [];
    const bytes: Servable = {
      ...adder(0, calls, 'b'),
      signature: { inputs: [{ name: 'in', dtype: 'BYTES', shape: [-1] }], outputs: [{ name: 'o', dtype: 'BYTES', shape: [-1] }] },
    };
    const cases: [PipelineFile, Servable[], RegExp][] = [
      [
        { steps: [{ platform: 'module' }, { platform: 'module', inputs: { in: 'out' } }] },
        [adder(0, calls, 'a'), bytes],
        /steps\.1\.inputs\.in: "out" is FP32 \[-1\] but step "step1" expects BYTES \[-1\]/,
      ],
      [
        { steps: [{ platform: 'module', inputs: { typo: 'x' } }] },
        [adder(0, calls, 'a')],
        /steps\.0\.inputs\.typo: step "step0" has no input "typo"/,
      ],
      [
        { steps: [{ platform: 'module' }, { platform: 'module', inputs: { in: 'out' } }] },
        [adder(0, calls, 'a'), adder(0, calls, 'b')],
        /steps\.1\.outputs: "out" is already defined/,
      ],
      [{ steps: [{ platform: 'module' }], outputs: ['nope'] }, [adder(0, calls, 'a')], /outputs\.0: "nope" is not produced by any step/],
    ];
    for (const [file, servables, message] of cases) {
      assert.throws(
        () => createPipelineServable(file, servables, 'p.yaml', 'model "p" v1'),
        (error: InflowError) => {
          assert.equal(error.code, 'INVALID_CONFIG');
          assert.match(error.message, /p\.yaml/);
          assert.match(error.message, message);
          return true;
        },
      );
    }
  });

  it('fails the load naming the pipeline file and the step, and closes the steps already loaded', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inflow-pipeline-'));
    try {
      await writeFile(
        join(dir, 'pipeline.yaml'),
        'steps:\n  - { name: first, platform: lookup }\n  - { name: second, platform: onnx, options: { file: gone.onnx } }\n',
      );
      const calls: string[] = [];
      const loadStep: LoadStep = async (platform, context, source, field) => {
        calls.push(`${platform} ${context.model} ${source.endsWith('pipeline.yaml') ? 'pipeline.yaml' : source} ${field}`);
        if (platform === 'onnx') throw new InflowError('INVALID_CONFIG', 'model file gone.onnx does not exist');
        return adder(0, calls, 'first');
      };
      await assert.rejects(loadPipelineServable({ dir, model: 'p', version: 1, options: {} }, loadStep), {
        code: 'INVALID_CONFIG',
        message: /pipeline .*pipeline\.yaml, step 1 "second" \(onnx\): model file gone\.onnx does not exist/,
      });
      assert.deepEqual(calls, [
        'lookup p/first pipeline.yaml steps.0.options',
        'onnx p/second pipeline.yaml steps.1.options',
        'close first',
      ]);
      await writeFile(join(dir, 'nested.yaml'), 'steps:\n  - { platform: pipeline }\n');
      await assert.rejects(loadPipelineServable({ dir, model: 'p', version: 1, options: { file: 'nested.yaml' } }, loadStep), {
        code: 'INVALID_CONFIG',
        message: /nested\.yaml[\s\S]*steps\.0\.platform/,
      });
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  it("validates each step's options with its platform's schema", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inflow-pipeline-'));
    try {
      await writeFile(join(dir, 'labels.txt'), 'a\nb\n');
      await writeFile(
        join(dir, 'pipeline.yaml'),
        'steps:\n  - platform: lookup\n    options: { tables: [{ kind: id-to-string, file: labels.txt, input: i, output: o }], extra: 1 }\n',
      );
      await assert.rejects(loadServable('pipeline', { dir, model: 'p', version: 1, options: {} }), {
        code: 'INVALID_CONFIG',
        message: /pipeline\.yaml[\s\S]*steps\.0\.options: unknown key "extra"/,
      });
      await writeFile(
        join(dir, 'pipeline.yaml'),
        'steps:\n  - platform: lookup\n    options: { tables: [{ kind: id-to-string, file: labels.txt, input: i, output: o }] }\n',
      );
      const servable = await loadServable('pipeline', { dir, model: 'p', version: 1, options: undefined });
      const { o } = await servable.run({ i: createTensor('INT64', [2], new BigInt64Array([1n, 0n])) });
      assert.deepEqual(tensorStrings(o!), ['b', 'a']);
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});
