/**
 * The edge agent against a Mosquitto that requires a password (mosquitto_passwd) and one that
 * requires TLS with client certificates (openssl-made CA): the password from a file or an
 * environment variable, the CA / certificate / key from files. Wrong credentials fail the start
 * with the reason instead of hanging.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEdgeAgent, validateEdgeConfig } from '../../src/edge/index.ts';
import { agentConfig, digitsRepository, edgeSkipReason, type Mosquitto, startMosquitto } from './edge-harness.ts';

const skip = edgeSkipReason(false);

/** A CA, a server certificate for 127.0.0.1 and a client certificate, signed by the CA (EC P-256, 1 day). */
function makeCertificates(dir: string): void {
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=inflow-test-ca', '-days', '1');
  for (const [name, cn] of [
    ['server', '127.0.0.1'],
    ['client', 'inflow-edge'],
  ] as const) {
    ssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    execFileSync('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1\\n' > ${name}.ext`], { cwd: dir });
    ssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '1',
      '-extfile',
      `${name}.ext`,
    );
  }
}

describe('the edge agent with MQTT credentials', { skip }, () => {
  let dir: string;
  let repository: string;
  let withPassword: Mosquitto;
  let withTls: Mosquitto;

  before(async () => {
    process.env.ORT_DISABLE_TELEMETRY = '1';
    dir = await mkdtemp(join(tmpdir(), 'inflow-mqtt-security-'));
    makeCertificates(dir);
    await writeFile(join(dir, 'password'), 'pa55word\n', { mode: 0o600 });
    const users = { 'inflow-edge': 'pa55word' };
    [withPassword, withTls, repository] = await Promise.all([
      startMosquitto({ users }),
      startMosquitto({
        users,
        tls: { certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key'), clientCaFile: join(dir, 'ca.crt') },
      }),
      digitsRepository(),
    ]);
  });
  after(async () => {
    await Promise.all([withPassword?.stop(), withTls?.stop()]);
    for (const d of [dir, repository]) if (d) await rm(d, { recursive: true, force: true });
  });

  async function start(mqtt: Record<string, unknown>, env?: Record<string, string>) {
    const outbox = await mkdtemp(join(dir, 'outbox-'));
    const base = agentConfig({ mqttUrl: String(mqtt.url), repository, outbox });
    const config = validateEdgeConfig(
      { ...base, mqtt: { ...(base.mqtt as object), connectTimeoutMs: 3000, ...mqtt } },
      'mqtt-security.test',
    );
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      return await startEdgeAgent(config);
    } finally {
      for (const key of Object.keys(env ?? {})) if (saved[key] === undefined) Reflect.deleteProperty(process.env, key);
    }
  }

  it('connects with the password read from passwordFile, and fails the start with a wrong one', async () => {
    const agent = await start({ url: withPassword.url, username: 'inflow-edge', passwordFile: join(dir, 'password') });
    try {
      assert.equal(agent.status().mqttConnected, true);
    } finally {
      await agent.close();
    }
    await assert.rejects(start({ url: withPassword.url, username: 'inflow-edge', password: 'wrong' }), { code: 'UNAVAILABLE' });
  });

  it('connects over mqtts with the CA, client certificate and key from files and the password from passwordEnv', async () => {
    const tls = { caFile: join(dir, 'ca.crt'), certFile: join(dir, 'client.crt'), keyFile: join(dir, 'client.key') };
    assert.match(withTls.url, /^mqtts:/);
    const agent = await start(
      { url: withTls.url, username: 'inflow-edge', passwordEnv: 'INFLOW_TEST_MQTT_PASSWORD', tls },
      { INFLOW_TEST_MQTT_PASSWORD: 'pa55word' },
    );
    try {
      assert.equal(agent.status().mqttConnected, true);
    } finally {
      await agent.close();
    }
    // Without the client certificate the broker refuses the TLS handshake.
    await assert.rejects(start({ url: withTls.url, username: 'inflow-edge', password: 'pa55word', tls: { caFile: tls.caFile } }), {
      code: 'UNAVAILABLE',
    });
    await assert.rejects(start({ url: withTls.url, username: 'inflow-edge', passwordEnv: 'INFLOW_TEST_UNSET_VARIABLE', tls }), {
      code: 'INVALID_CONFIG',
      message: /mqtt\.passwordEnv: the environment variable INFLOW_TEST_UNSET_VARIABLE is not set/,
    });
  });
});
