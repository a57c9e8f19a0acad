import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { kafkaConfigSchema, parseBootstrapServers } from './kafka-config.ts';
import { loadConfigFile, parseConfigText, validateConfig } from './load-config.ts';

describe('config validation', () => {
  it('applies defaults', () => {
    const config = validateConfig(kafkaConfigSchema, {}, 'test');
    assert.equal(config.bootstrapServers, 'memory');
    assert.equal(config.clientId, 'inflow');
    assert.equal(config.requestTimeoutMs, 30_000);
    assert.equal(config.reconnectBackoffMaxMs, 1000);
  });

  it('rejects unknown keys and names the key and the source', () => {
    assert.throws(() => validateConfig(kafkaConfigSchema, { bootstrapServer: ['a:1'] }, 'inflow.yaml'), {
      code: 'INVALID_CONFIG',
      message: /inflow\.yaml[\s\S]*unknown key "bootstrapServer"/,
    });
  });

  it('names the nested field that is wrong and says what was expected', () => {
    assert.throws(() => validateConfig(kafkaConfigSchema, { bootstrapServers: ['localhost'] }, 'f.yaml'), {
      code: 'INVALID_CONFIG',
      message: /bootstrapServers\.0: expected "host:port"/,
    });
    assert.throws(() => validateConfig(kafkaConfigSchema, { sasl: { mechanism: 'MD5' } }, 'f.yaml'), {
      message: /sasl\.mechanism/,
    });
  });

  it('reports YAML syntax errors with the file and line', () => {
    assert.throws(() => parseConfigText('a: [1, 2\nb: 3', 'broken.yaml'), {
      code: 'INVALID_CONFIG',
      message: /broken\.yaml:\d+:\d+/,
    });
  });

  it('rejects duplicate keys instead of silently keeping the last one', () => {
    assert.throws(() => parseConfigText('clientId: a\nclientId: b\n', 'dup.yaml'), { code: 'INVALID_CONFIG' });
  });

  it('loads and validates a file, and says when the file is missing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inflow-config-'));
    const path = join(dir, 'kafka.yaml');
    await writeFile(path, 'bootstrapServers: ["127.0.0.1:9092"]\nclientId: app\n');
    const config = await loadConfigFile(kafkaConfigSchema, path);
    assert.deepEqual(config.bootstrapServers, ['127.0.0.1:9092']);
    await assert.rejects(loadConfigFile(kafkaConfigSchema, join(dir, 'nope.yaml')), {
      code: 'INVALID_CONFIG',
      message: /nope\.yaml does not exist/,
    });
  });

  it('parses comma-separated bootstrap servers', () => {
    assert.deepEqual(parseBootstrapServers(' a:1, b:2 ,,'), ['a:1', 'b:2']);
  });
});
