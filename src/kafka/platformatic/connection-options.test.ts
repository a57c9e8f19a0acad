import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { kafkaConfigSchema } from '../../config/kafka-config.ts';
import { validateConfig } from '../../config/load-config.ts';
import { backoffDelay } from '../connection.ts';
import { connectionOptions, reconnectBackoff } from './connection-options.ts';

describe('Kafka connection options', () => {
  it("caps the reconnect backoff at kafka.reconnectBackoffMaxMs, 1 s by default like the Java client's reconnect.backoff.max.ms", () => {
    const defaults = validateConfig(kafkaConfigSchema, { bootstrapServers: ['k:1'] }, 'test');
    assert.deepEqual(reconnectBackoff(defaults), { maxMs: 1000 });
    const set = validateConfig(kafkaConfigSchema, { bootstrapServers: ['k:1'], reconnectBackoffMaxMs: 250 }, 'test');
    assert.deepEqual(reconnectBackoff(set), { maxMs: 250 });
    // The unluckiest jitter, long into an outage: never past the cap (was 5 s).
    const worst = Math.max(
      ...Array.from({ length: 40 }, (_, attempt) => backoffDelay(attempt, { ...reconnectBackoff(defaults), random: () => 0.999999 })),
    );
    assert.equal(worst, 1000);
    // The library has no such option (its retryDelay is per request): it is not passed to it.
    assert.equal('reconnectBackoffMaxMs' in connectionOptions(defaults as typeof defaults & { bootstrapServers: string[] }, 'x'), false);
    assert.throws(() => validateConfig(kafkaConfigSchema, { reconnectBackoffMaxMs: 0 }, 'test'), { code: 'INVALID_CONFIG' });
  });

  it("reads SASL and TLS secrets from files (a mounted Secret) and drops a password file's trailing newline", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inflow-secrets-'));
    try {
      await writeFile(join(dir, 'password'), 's3cret\n');
      await writeFile(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
      const config = validateConfig(
        kafkaConfigSchema,
        {
          bootstrapServers: ['kafka:9093'],
          sasl: { mechanism: 'SCRAM-SHA-512', username: 'app', passwordFile: join(dir, 'password') },
          ssl: { caFile: join(dir, 'ca.pem') },
        },
        'test',
      );
      const options = connectionOptions(config as typeof config & { bootstrapServers: string[] }, 'x');
      assert.deepEqual(options.sasl, { mechanism: 'SCRAM-SHA-512', username: 'app', password: 's3cret' });
      assert.equal(options.tls?.ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
      assert.equal(options.tls?.rejectUnauthorized, true);
      const missing = validateConfig(kafkaConfigSchema, { bootstrapServers: ['k:1'], ssl: { caFile: join(dir, 'nope.pem') } }, 'test');
      assert.throws(() => connectionOptions(missing as typeof missing & { bootstrapServers: string[] }, 'x'), {
        code: 'INVALID_CONFIG',
        message: /kafka ssl.caFile: cannot read .*nope\.pem/,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects a secret given both inline and as a file', () => {
    assert.throws(
      () => validateConfig(kafkaConfigSchema, { sasl: { mechanism: 'PLAIN', password: 'a', passwordFile: '/p' } }, 'app.yaml'),
      { code: 'INVALID_CONFIG', message: /sasl\.passwordFile.*set password or passwordFile, not both/ },
    );
  });
});
