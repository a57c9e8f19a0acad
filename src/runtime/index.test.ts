import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../observability/logger.ts';
import { createTensor } from '../tensor/tensor.ts';
import { loadServable, Platform, platforms, setRuntimeLogger, validateRuntimeOptions } from './index.ts';

setRuntimeLogger(silentLogger);
const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

describe('runtime registry', () => {
  it('has a schema and a loader for every platform', () => {
    assert.deepEqual(Object.keys(platforms).sort(), Object.values(Platform).sort());
  });

  it('applies defaults and names the field of every bad option', () => {
    assert.deepEqual(validateRuntimeOptions('onnx', undefined, 'config.yaml'), {
      file: 'model.onnx',
      executionProviders: ['cpu'],
      workers: 1,
      graphOptimizationLevel: 'all',
    });
    assert.throws(() => validateRuntimeOptions('onnx', { file: 'm.onnx', workerz: 2 }, 'models/iris/config.yaml'), {
      code: 'INVALID_CONFIG',
      message: /models\/iris\/config\.yaml[\s\S]*runtime: unknown key "workerz"/,
    });
    assert.throws(
      () => validateRuntimeOptions('onnx', { workers: 0, executionProviders: ['gpu'] }, 'c.yaml'),
      (error: Error) => {
        assert.match(error.message, /runtime\.workers: /);
        assert.match(error.message, /runtime\.executionProviders\.0: /);
        return true;
      },
    );
    assert.throws(() => validateRuntimeOptions('transform', { file: '../../etc/passwd' }, 'c.yaml'), {
      message: /runtime\.file: must be a relative path inside the version folder/,
    });
  });

  it('validates the options before loading, and refuses unknown platforms', async () => {
    const context = { dir: FIXTURES, model: 'linear', version: 3 };
    await assert.rejects(loadServable('tensorflow', { ...context, options: {} }), {
      code: 'INVALID_CONFIG',
      message: /unknown platform "tensorflow"; expected one of onnx, lookup, transform, pipeline, module/,
    });
    await assert.rejects(loadServable('onnx', { ...context, options: { file: 'linear.onnx', threads: 2 } }), {
      code: 'INVALID_CONFIG',
      message: /model "linear" version 3[\s\S]*runtime: unknown key "threads"/,
    });
    const servable = await loadServable('onnx', { ...context, options: { file: 'linear.onnx', intraOpThreads: 1 } });
    try {
      const { Y } = await servable.run({ X: createTensor('FP32', [1, 4], new Float32Array(4)) });
      assert.deepEqual([...(Y?.data as Float32Array)], [0.5, -0.25]);
    } finally {
      await servable.close();
    }
  });

  it('takes onnxruntime thread counts from the environment when the model config has none, and rejects a bad one', async () => {
    const context = { dir: FIXTURES, model: 'linear', version: 3, options: { file: 'linear.onnx' } };
    process.env.INFLOW_ONNX_INTRA_OP_THREADS = 'many';
    try {
      await assert.rejects(loadServable('onnx', context), {
        code: 'INVALID_CONFIG',
        message: 'INFLOW_ONNX_INTRA_OP_THREADS must be an integer 1-256, got "many"',
      });
      process.env.INFLOW_ONNX_INTRA_OP_THREADS = '1';
      const servable = await loadServable('onnx', context);
      await servable.close();
    } finally {
      delete process.env.INFLOW_ONNX_INTRA_OP_THREADS;
    }
  });
});
