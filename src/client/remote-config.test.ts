import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../config/load-config.ts';
import { remoteClientConfigSchema } from './remote-config.ts';
import { createRemoteInferencer } from './remote-inferencer.ts';

describe('remote client configuration', () => {
  it('fills in the documented defaults', () => {
    const config = validateConfig(remoteClientConfigSchema, { protocol: 'oip-grpc', url: '127.0.0.1:8500' }, 'test');
    assert.equal(config.timeoutMs, 10_000);
    assert.equal(config.oipBinary, false);
    assert.deepEqual(config.retry, { maxAttempts: 3, initialBackoffMs: 20, maxBackoffMs: 1000, multiplier: 2 });
    assert.deepEqual(config.circuitBreaker, { failureThreshold: 5, resetTimeoutMs: 5000, halfOpenMaxCalls: 1 });
  });

  it('accepts false to turn retries and the breaker off', () => {
    const config = validateConfig(
      remoteClientConfigSchema,
      { protocol: 'tfserving-rest', url: 'https://models.example:8501/base', retry: false, circuitBreaker: false },
      'test',
    );
    assert.equal(config.retry, false);
    assert.equal(config.circuitBreaker, false);
  });

  it('rejects a URL of the wrong kind for the protocol, naming what is expected', () => {
    assert.throws(() => createRemoteInferencer({ protocol: 'oip-rest', url: '127.0.0.1:8501' }), {
      code: 'INVALID_CONFIG',
      message: /url: "127.0.0.1:8501" is not a REST URL; expected "http\(s\):\/\/host:port"/,
    });
    assert.throws(() => createRemoteInferencer({ protocol: 'tfserving-grpc', url: 'http://127.0.0.1:8500' }), {
      code: 'INVALID_CONFIG',
      message: /is not a gRPC address; expected "host:port"/,
    });
  });

  it('rejects unknown keys and oipBinary on a TF Serving protocol', () => {
    assert.throws(() => createRemoteInferencer({ protocol: 'oip-grpc', url: 'h:1', retries: 3 } as never), {
      code: 'INVALID_CONFIG',
      message: /unknown key "retries"/,
    });
    assert.throws(() => createRemoteInferencer({ protocol: 'tfserving-rest', url: 'http://h:1', oipBinary: true }), {
      code: 'INVALID_CONFIG',
      message: /oipBinary: applies to the OIP protocols only/,
    });
  });
});
