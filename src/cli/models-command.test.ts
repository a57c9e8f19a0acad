import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { readModelsTopic } from '../delivery/index.ts';
import { createMemoryClient } from '../kafka/memory/memory-client.ts';
import { main } from './main.ts';
import { modelsMain, parseLabelMoves, parseRouting } from './models-command.ts';

const DIGITS_V1 = join(import.meta.dirname, '..', '..', 'models', 'repository', 'digits-mlp', '1');

let client: ReturnType<typeof createMemoryClient>;
beforeEach(() => {
  client = createMemoryClient();
});
afterEach(() => client.close());

async function models(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await modelsMain(args, (l) => out.push(l), { client, err: (l) => err.push(l) });
  return { code, out, err };
}

describe('inflow models', () => {
  it('publishes a version folder with its config.yaml, moves labels, sets a split and lists it all', async () => {
    const pub = await models(['publish', DIGITS_V1, '--model', 'digits-mlp', '--version', '1']);
    assert.deepEqual([pub.code, pub.err], [0, []]);
    assert.match(
      pub.out[0] ?? '',
      /^published digits-mlp version 1: 1 file, 20\.5 KiB in 1 chunk, config from .*digits-mlp\/config\.yaml, unsigned; topic inflow-models partition 0 offset 1 \(\d+ ms\)$/,
    );
    assert.equal((await models(['publish', DIGITS_V1, '--model', 'digits-mlp', '--version', '2', '--chunk-size', '8192'])).code, 0);

    const label = await models(['label', 'digits-mlp', 'stable=1', 'canary=2']);
    assert.deepEqual(label.out, ['digits-mlp: labels stable=1 canary=2 (topic inflow-models offset 6)']);
    assert.deepEqual(label.err, [
      'inflow: warning: model "digits-mlp": version 1 is not loaded under versionPolicy {"latest":1} (loaded: 2); publish with versionPolicy { all: true } or { specific: [...] } to serve it',
    ]);
    const split = await models(['split', 'digits-mlp', '1=90,2=10', '--shadow', '2:0.05']);
    assert.equal(split.code, 0, split.err.join('\n'));

    const list = await models(['list']);
    assert.equal(list.code, 0);
    const lines = (list.out[0] ?? '').split('\n');
    assert.match(lines[0] ?? '', /^MODEL\s+VERSION\s+FILES\s+SIZE\s+PUBLISHED\s+BY\s+LABELS\s+SIGNED\s+STATUS$/);
    assert.match(lines[1] ?? '', /^digits-mlp\s+1\s+1\s+20\.5 KiB\s+\d{4}-\d\d-\d\dT[\d:.]+Z\s+\S+@\S+\s+stable\s+-\s+accepted$/);
    assert.match(lines[2] ?? '', /^digits-mlp\s+2\s+1\s+20\.5 KiB\s+.*\s+canary\s+-\s+accepted$/);
    assert.equal(
      lines[3],
      'digits-mlp routing: {"split":[{"version":1,"weight":90},{"version":2,"weight":10}],"shadow":{"version":2,"fraction":0.05}}',
    );

    const json = await models(['list', '--json']);
    const parsed = JSON.parse(json.out[0] ?? '{}') as { manifests: Array<{ version: number; files: Array<{ chunks: number }> }> };
    assert.deepEqual(
      parsed.manifests.map((m) => [m.version, m.files[0]?.chunks]),
      [
        [1, 1],
        [2, 3],
      ],
    );
    const inspect = await models(['inspect', 'digits-mlp']);
    assert.equal(inspect.code, 0, inspect.err.join('\n'));
    const shown = (inspect.out[0] ?? '').split('\n');
    assert.equal(shown[0], 'digits-mlp in inflow-models');
    assert.equal(shown[1], '  labels:  stable=1 canary=2');
    assert.equal(
      shown[2],
      '  routing: {"split":[{"version":1,"weight":90},{"version":2,"weight":10}],"shadow":{"version":2,"fraction":0.05}}',
    );
    assert.match(shown[3] ?? '', /^ {2}version 1: published \S+ by \S+ \(partition 0 offset 1\), config\.yaml shipped, unsigned$/);
    assert.match(shown[4] ?? '', /^ {4}model\.onnx {2}20\.5 KiB {2}sha256 [0-9a-f]{64}$/);
    assert.match(shown[5] ?? '', /^ {2}version 2: /);
    const inspected = JSON.parse((await models(['inspect', 'digits-mlp', '--json'])).out[0] ?? '{}') as {
      versions: Array<{ version: number }>;
    };
    assert.deepEqual(
      inspected.versions.map((v) => v.version),
      [1, 2],
    );
    const unknown = await models(['inspect', 'no-such-model']);
    assert.deepEqual(
      [unknown.code, unknown.err],
      [2, ['inflow: model no-such-model has nothing in topic inflow-models; see inflow models list']],
    );

    const content = await readModelsTopic({ client, topic: 'inflow-models' });
    assert.deepEqual(content.manifests[0]?.manifest.config, {
      platform: 'onnx',
      versionPolicy: { latest: 1 },
      batching: { maxBatchSize: 64, maxDelayMicros: 500 },
      runtime: { file: 'model.onnx' },
    });
  });

  it('makes a key pair, publishes signed, and lists which versions a follower with the public key takes and why', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inflow-keys-'));
    try {
      const key = join(dir, 'release');
      const gen = await models(['keygen', '--out', key]);
      assert.equal(gen.code, 0, gen.err.join('\n'));
      const id = /^key ([0-9a-f]{16}): private /.exec(gen.out[0] ?? '')?.[1];
      assert.ok(id, gen.out[0]);
      assert.equal((await stat(`${key}.key`)).mode & 0o777, 0o600, 'the private key is readable by its owner only');
      const again = await models(['keygen', '--out', key]);
      assert.equal(again.code, 2);
      assert.match(again.err[0] ?? '', /cannot write .*release\.key \(EEXIST\); it is never overwritten/);

      const signed = await models(['publish', DIGITS_V1, '--model', 'digits-mlp', '--version', '1', '--sign-key', `${key}.key`]);
      assert.match(signed.out[0] ?? '', new RegExp(`, signed by key ${id}; topic`));
      assert.equal((await models(['publish', DIGITS_V1, '--model', 'digits-mlp', '--version', '2'])).code, 0);
      const wrongKey = await models(['publish', DIGITS_V1, '--model', 'digits-mlp', '--version', '3', '--sign-key', `${key}.pub`]);
      assert.equal(wrongKey.code, 2);
      assert.match(wrongKey.err[0] ?? '', /signing key .*release\.pub: not a PEM private key/);

      const list = await models(['list', '--trusted-key', `${key}.pub`]);
      assert.equal(list.code, 0, list.err.join('\n'));
      const lines = (list.out[0] ?? '').split('\n');
      assert.match(lines[1] ?? '', new RegExp(`^digits-mlp\\s+1\\s.*\\s${id}\\s+accepted$`));
      assert.match(lines[2] ?? '', /^digits-mlp\s+2\s.*\s-\s+refused \(unsigned\)$/);
      assert.match(lines[3] ?? '', /^digits-mlp version 2 refused \(unsigned\): the version is not signed/);
      const bad = await models(['list', '--trusted-key', `${key}.key`]);
      assert.equal(bad.code, 2);
      assert.match(bad.err[0] ?? '', /trusted key .*release\.key: this is a private key; give followers the public key only/);
      const label = await models(['label', 'digits-mlp', 'stable=1', '--sign-key', `${key}.key`]);
      assert.equal(label.code, 0, label.err.join('\n'));
      const signedList = await models(['list', '--sign-key', `${key}.key`]);
      assert.equal(signedList.code, 2);
      assert.match(signedList.err[0] ?? '', /--sign-key signs what publish, label, split and delete write; "list" writes nothing/);
      const inspect = await models(['inspect', 'digits-mlp']);
      assert.match(inspect.out[0] ?? '', new RegExp(`version 1: .*, signed by key ${id} \\(not verified here\\)`));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('lists a module version as refused unless --allow-executable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inflow-module-'));
    try {
      await writeFile(join(dir, 'model.js'), 'export default {};\n');
      await writeFile(join(dir, 'config.yaml'), 'platform: module\n');
      assert.equal((await models(['publish', dir, '--model', 'rules', '--version', '1', '--config', join(dir, 'config.yaml')])).code, 0);
      const list = await models(['list']);
      assert.match(list.out[0] ?? '', /^rules\s+1\s.*\s-\s+refused \(executable-platform\)$/m);
      assert.match((await models(['list', '--allow-executable'])).out[0] ?? '', /^rules\s+1\s.*\s-\s+accepted$/m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('answers bad arguments with one line and exit code 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['publish', DIGITS_V1, '--version', '1'], /--model is required \(e\.g\. --model digits-mlp\)/],
      [['publish', DIGITS_V1, '--model', 'digits-mlp', '--version', 'two'], /--version: expected a non-negative integer, got "two"/],
      [
        ['publish', DIGITS_V1, '--model', 'd', '--version', '1', '--config', '/nonexistent.yaml'],
        /--config \/nonexistent\.yaml: cannot read it \(ENOENT\)/,
      ],
      [['label', 'digits-mlp', 'stable:2'], /label move "stable:2": expected <label>=<version>/],
      [['label', 'digits-mlp', 'stable=2'], /model "digits-mlp" has no published version in topic "inflow-models"/],
      [['split', 'digits-mlp', '1=ninety'], /split "1=ninety": expected <version>=<weight>/],
      [['frobnicate'], /unknown action "frobnicate" for inflow models/],
      [['list', '--bogus'], /Unknown option '--bogus'/],
    ];
    for (const [args, message] of cases) {
      const r = await models(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.equal(r.err.length, 1, args.join(' '));
      assert.match(r.err[0] ?? '', message);
      assert.match(r.err[0] ?? '', /^inflow: /);
    }
  });

  it('needs a cluster unless one is injected', async () => {
    const err: string[] = [];
    const code = await modelsMain(['list'], () => undefined, { env: {}, err: (l) => err.push(l) });
    assert.equal(code, 2);
    assert.deepEqual(err, ['inflow: inflow models needs the cluster: --kafka host:port, --kafka-config <file> or KAFKA_BOOTSTRAP_SERVERS']);
  });

  it('names the key of a bad --kafka-config file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inflow-models-'));
    const file = join(dir, 'kafka.yaml');
    await writeFile(file, 'bootstrapServers: [127.0.0.1:9092]\nsasl: { mechanism: PLAIN, username: u, pasword: x }\n');
    const err: string[] = [];
    const code = await modelsMain(['list', '--kafka-config', file], () => undefined, { env: {}, err: (l) => err.push(l) });
    await rm(dir, { recursive: true });
    assert.equal(code, 2);
    assert.match(err[0] ?? '', /sasl.*pasword/);
  });

  it('is reachable from the inflow command with its help and examples', async () => {
    const out: string[] = [];
    assert.equal(await main(['models', '--help'], (l) => out.push(l)), 0);
    assert.match(out.join('\n'), /Examples:\n {2}inflow models publish models\/repository\/digits-mlp\/1 --model digits-mlp --version 2/);
    const top: string[] = [];
    await main([], (l) => top.push(l));
    assert.match(top.join('\n'), /models <action> {6}model delivery over Kafka/);
  });

  it('backtests versions from the models topic on replayed records, side by side', async () => {
    assert.equal((await models(['publish', DIGITS_V1, '--model', 'digits-mlp', '--version', '1'])).code, 0);
    assert.equal((await models(['publish', DIGITS_V1, '--model', 'digits-mlp', '--version', '2'])).code, 0);
    const admin = client.admin();
    await admin.createTopics([{ topic: 'digits', partitions: 1 }]);
    await admin.close();
    const producer = client.producer();
    await producer.send(
      Array.from({ length: 5 }, (_, i) => ({
        topic: 'digits',
        key: Buffer.from(`k${i}`),
        value: Buffer.from(JSON.stringify({ pixels: Array.from({ length: 64 }, (_, j) => (i * j) % 17) })),
      })),
    );
    await producer.send([{ topic: 'digits', key: null, value: Buffer.from('{"pixels": "oops"}') }]);
    const r = await models([
      'backtest',
      'digits-mlp',
      '--version',
      '2',
      '--baseline',
      '1',
      '--topic',
      'digits',
      '--from',
      '0',
      '--input',
      'input=pixels',
    ]);
    assert.deepEqual([r.code, r.err], [0, []]);
    const text = r.out.join('\n');
    assert.match(text, /^digits-mlp: 6 records of digits replayed/);
    assert.match(text, /predictions\s+5\s+5/);
    assert.match(text, /failed\s+1\s+1/);
    assert.match(text, /agreement with the candidate\s+100\.00 %\s+100\.00 %/);
    assert.match(text, /v2: first failure digits\[0\]@5: /);
    const missing = await models(['backtest', 'digits-mlp', '--version', '1', '--topic', 'nope', '--from', 'earliest']);
    assert.equal(missing.code, 2);
    assert.match(missing.err[0] ?? '', /input topic "nope" does not exist on the cluster/);
  });

  it('parses label moves and routing specs', () => {
    assert.deepEqual(parseLabelMoves(['stable=2', 'canary=']), { stable: 2, canary: null });
    assert.deepEqual(parseRouting('1=90,2=10.5', '2:0.25'), {
      split: [
        { version: 1, weight: 90 },
        { version: 2, weight: 10.5 },
      ],
      shadow: { version: 2, fraction: 0.25 },
    });
    assert.deepEqual(parseRouting(undefined, '3:1'), { shadow: { version: 3, fraction: 1 } });
    assert.equal(parseRouting('off', undefined), null);
    assert.throws(() => parseRouting(undefined, '2:1.5'), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => parseRouting(undefined, undefined), { code: 'INVALID_ARGUMENT' });
  });
});
