/**
 * The models topic as a trust boundary, on the real broker: a model server following the topic
 * with a trusted Ed25519 key installs a signed version, refuses an unsigned one, a signed one
 * whose file was rewritten in the topic, and a signed `module` model (code) — each with its reason
 * in /metrics, the follower's state and `inflow models list --repository`. A follower that opts in
 * to executable platforms runs the same module (the control: the marker file the check looks for
 * does appear when the code runs).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { modelsMain } from '../../src/cli/models-command.ts';
import { Header, parseKey } from '../../src/delivery/delivery-format.ts';
import { flipByte, tamperingClient } from '../../src/delivery/fixtures/tamper.ts';
import {
  createModelSync,
  type ModelSync,
  parseSigningKey,
  parseTrustedKey,
  publishModel,
  type SigningKey,
} from '../../src/delivery/index.ts';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { loadServable } from '../../src/runtime/index.ts';
import { type RunningModelServer, startModelServer } from '../../src/server/model-server.ts';
import { createLocalInference, type LocalInference } from '../../src/serving/local-inference.ts';
import { brokerOrSkip } from '../setup/broker.ts';

const bootstrap = brokerOrSkip();
const MODELS = join(import.meta.dirname, '..', '..', 'models');
const V1_DIR = join(MODELS, 'repository', 'digits-mlp', '1');
const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** Polls `read` until `match` holds (or fails after `ms`, showing the last value). */
async function until(read: () => Promise<string>, match: RegExp, ms = 60_000): Promise<string> {
  const deadline = Date.now() + ms;
  let last = '';
  while (Date.now() < deadline) {
    last = await read().catch((error: unknown) => String(error));
    if (match.test(last)) return last;
    await delay(50);
  }
  assert.fail(`${match} did not appear within ${ms} ms; last:\n${last.slice(0, 4000)}`);
}

describe('signed model delivery over Apache Kafka', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  const topic = `inflow-models-trust-${randomBytes(4).toString('hex')}`;
  let client: KafkaClient;
  let dir: string;
  let repo: string;
  let keys: string;
  let signing: SigningKey;
  let server: RunningModelServer | undefined;
  let optIn: { sync: ModelSync; service: LocalInference } | undefined;
  let config: string;

  before(async () => {
    process.env.ORT_DISABLE_TELEMETRY = '1';
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'trust-it' });
    dir = await mkdtemp(join(tmpdir(), 'inflow-trust-it-'));
    repo = join(dir, 'repository');
    keys = join(dir, 'release');
    config = await readFile(join(MODELS, 'repository', 'digits-mlp', 'config.yaml'), 'utf8');
    assert.equal(await modelsMain(['keygen', '--out', keys], () => undefined), 0);
    signing = parseSigningKey(await readFile(`${keys}.key`, 'utf8'), `${keys}.key`);
    const trusted = parseTrustedKey(await readFile(`${keys}.pub`, 'utf8'), `${keys}.pub`);
    server = await startModelServer({
      modelRepository: repo,
      load: loadServable,
      rest: { host: '127.0.0.1', port: 0 },
      grpc: false,
      pollMs: 100,
      modelSync: { client, topic, startTimeoutMs: 60_000, policy: { trustedKeys: [trusted] } },
    });
  });
  after(async () => {
    await server?.close();
    await optIn?.sync.close();
    await optIn?.service.close();
    const admin = client?.admin();
    await admin?.deleteTopics([topic]).catch(() => undefined);
    await admin?.close();
    await client?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const metrics = async (): Promise<string> => (await fetch(`http://${server?.restAddress}/metrics`)).text();
  const list = async (): Promise<string> => {
    const out: string[] = [];
    const code = await modelsMain(['list', '--topic', topic, '--repository', repo], (l) => out.push(l), { client });
    assert.equal(code, 0);
    return out.join('\n');
  };
  const publish = (
    model: string,
    version: number,
    extra: { via?: KafkaClient; key?: SigningKey; files?: Array<{ path: string; data: Buffer }>; config?: string } = {},
  ) =>
    publishModel({
      client: extra.via ?? client,
      topic,
      model,
      version,
      ...(extra.files ? { files: extra.files } : { modelDir: V1_DIR }),
      config: extra.config ?? config,
      publisher: 'trust-it',
      ...(extra.key ? { signingKey: extra.key } : {}),
    });

  it('installs a version signed with the trusted key and serves it', async () => {
    await publish('digits-mlp', 1, { key: signing });
    await until(metrics, /^inflow_model_sync_installed_total 1$/m);
    await until(
      async () => (await fetch(`http://${server?.restAddress}/v2/models/digits-mlp/versions/1/ready`)).status.toString(),
      /^200$/,
    );
    assert.match(await list(), /^digits-mlp\s+1\s.*\s[0-9a-f]{16} \(unverified\)\s+installed$/m);
  });

  it('refuses an unsigned version and says why in /metrics, the log state and inflow models list', async () => {
    await publish('digits-mlp', 2);
    await until(metrics, /^inflow_model_sync_rejected_total\{reason="unsigned"\} 1$/m);
    assert.equal(await exists(join(repo, 'digits-mlp', '2')), false);
    const shown = await list();
    assert.match(shown, /^digits-mlp\s+2\s.*\s-\s+refused \(unsigned\)$/m);
    assert.match(
      shown,
      /^digits-mlp version 2 refused \(unsigned\): the version is not signed, and this follower installs only versions signed by a trusted key/m,
    );
  });

  it('refuses a signed version whose chunk was rewritten in the topic (with a matching chunk sha256 header)', async () => {
    const forger = tamperingClient(client, (r) => {
      if (parseKey(r.key ?? null)?.kind !== 'chunk' || !r.value) return r;
      const value = flipByte(r.value, 500);
      const sha = Buffer.from(createHash('sha256').update(value).digest('hex'));
      return { ...r, value, headers: (r.headers ?? []).map(([k, v]) => [k, k === Header.SHA256 ? sha : v] as [string, Buffer]) };
    });
    await publish('digits-mlp', 3, { via: forger, key: signing });
    await until(metrics, /^inflow_model_sync_rejected_total\{reason="integrity"\} 1$/m);
    assert.equal(await exists(join(repo, 'digits-mlp', '3')), false);
    assert.match(await list(), /^digits-mlp version 3 refused \(integrity\): file model\.onnx sha256 mismatch/m);
    const ready = await fetch(`http://${server?.restAddress}/v2/models/digits-mlp/versions/1/ready`);
    assert.equal(ready.status, 200, 'version 1 keeps serving');
  });

  it('refuses a module model from the topic by default, even signed: its code never runs', async () => {
    const marker = join(dir, 'module-ran');
    const code = Buffer.from(
      `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, 'ran as ' + process.pid);\n` +
        `export default { signature: { inputs: [{ name: 'x', dtype: 'FP32', shape: [-1] }], outputs: [{ name: 'y', dtype: 'FP32', shape: [-1] }] }, run: (i) => ({ y: i.x }) };\n`,
    );
    const files = [{ path: 'model.js', data: code }];
    await publish('rules', 1, { key: signing, files, config: 'platform: module\n' });
    await until(metrics, /^inflow_model_sync_rejected_total\{reason="executable-platform"\} 1$/m);
    assert.equal(await exists(join(repo, 'rules', '1')), false);
    assert.equal(await exists(join(repo, 'rules', 'config.yaml')), false);
    assert.match(await list(), /^rules version 1 refused \(executable-platform\): its config names platform "module"/m);
    assert.equal(await exists(marker), false, 'the module was never imported');

    // The control: a follower that allows executable platforms installs and runs the same version.
    const optRepo = join(dir, 'opt-in');
    const trusted = parseTrustedKey(await readFile(`${keys}.pub`, 'utf8'), `${keys}.pub`);
    const sync = createModelSync({
      client,
      topic,
      repository: optRepo,
      trustedKeys: [trusted],
      allowExecutablePlatforms: true,
      startTimeoutMs: 60_000,
    });
    await sync.start();
    const service = await createLocalInference({ modelRepository: optRepo, load: loadServable, watch: true, pollMs: 100, settleMs: 50 });
    optIn = { sync, service };
    await until(async () => ((await exists(marker)) ? 'ran' : 'not yet'), /^ran$/);
  });
});
