import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../config/load-config.ts';
import { MODEL_NAME, modelConfigSchema, selectVersions, VERSION_DIR } from './model-config.ts';

describe('model config', () => {
  it('fills defaults for a minimal config', () => {
    const config = validateConfig(modelConfigSchema, { platform: 'onnx' }, 'm/config.yaml');
    assert.deepEqual(config.versionPolicy, { latest: 1 });
    assert.deepEqual(config.batching, {
      maxBatchSize: 64,
      maxDelayMicros: 0,
      maxQueueSize: 4096,
      maxConcurrentBatches: 2,
      idleDispatch: true,
    });
    assert.deepEqual(config.warmup, { rows: 1, runs: 1 });
    assert.deepEqual(config.runtime, {});
  });

  it('names the file and the field of a typo', () => {
    assert.throws(() => validateConfig(modelConfigSchema, { platform: 'onnx', batching: { maxBatchSise: 8 } }, 'models/m/config.yaml'), {
      code: 'INVALID_CONFIG',
      message: /models\/m\/config\.yaml[\s\S]*batching: unknown key "maxBatchSise"/,
    });
    assert.throws(() => validateConfig(modelConfigSchema, { platform: 'tensorflow' }, 'c.yaml'), { message: /platform/ });
    assert.throws(() => validateConfig(modelConfigSchema, { platform: 'onnx', versionPolicy: { latest: 0 } }, 'c.yaml'), {
      message: /versionPolicy/,
    });
  });

  it('rejects batching settings the batcher cannot honour at load time', () => {
    assert.throws(
      () => validateConfig(modelConfigSchema, { platform: 'onnx', batching: { maxBatchSize: 64, maxQueueSize: 8 } }, 'c.yaml'),
      {
        message: /batching\.maxQueueSize: maxQueueSize must be at least maxBatchSize/,
      },
    );
    assert.throws(
      () => validateConfig(modelConfigSchema, { platform: 'onnx', batching: { maxBatchSize: 8, preferredBatchSizes: [16] } }, 'c.yaml'),
      {
        message: /preferredBatchSizes must not exceed maxBatchSize/,
      },
    );
  });

  it('applies version policies', () => {
    assert.deepEqual(selectVersions({ latest: 2 }, [3, 1, 2]), [2, 3]);
    assert.deepEqual(selectVersions({ all: true }, [3, 1, 2]), [1, 2, 3]);
    assert.deepEqual(selectVersions({ specific: [1, 5] }, [3, 1, 2]), [1]);
  });

  it('accepts safe model names and decimal versions only', () => {
    for (const ok of ['digits', 'mlp-784', 'a.b_c']) assert.match(ok, MODEL_NAME);
    for (const bad of ['..', '../x', 'a/b', '.hidden', '', 'x'.repeat(129)]) assert.doesNotMatch(bad, MODEL_NAME);
    for (const ok of ['0', '1', '20261126']) assert.match(ok, VERSION_DIR);
    for (const bad of ['01', '-1', '1.5', 'v1']) assert.doesNotMatch(bad, VERSION_DIR);
  });
});
