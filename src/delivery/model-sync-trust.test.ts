/**
 * What a follower accepts from the models topic (in-process log): signed versions against trusted
 * keys, no executable platform unless allowed, and chunks placed and bounded before anything is
 * written or hashed (a far-out chunk must not make a huge sparse file).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { createMemoryClient } from '../kafka/memory/memory-client.ts';
import type { KafkaClient } from '../kafka/types.ts';
import { chunkKey, Header, manifestKey, parseKey } from './delivery-format.ts';
import { eventLog, flipByte, tamperingClient } from './fixtures/tamper.ts';
import { generateSigningKeyPair, parseSigningKey, parseTrustedKey, type SigningKey, type TrustedKey } from './manifest-signing.ts';
import { createModelSync, type ModelSync, type ModelSyncOptions } from './model-sync.ts';
import { STATE_DIR } from './model-state.ts';
import { deleteModelVersion, publishControl } from './publish-control.ts';
import { publishModel } from './publish-model.ts';
import { STAGING_DIR } from './staging-area.ts';
import { registerModelSyncMetrics } from './sync-metrics.ts';

const TOPIC = 'models';
const ONNX = join(import.meta.dirname, '..', '..', 'models', 'repository', 'digits-mlp', '1', 'model.onnx');
const CONFIG = 'platform: onnx\nversionPolicy: { all: true }\nruntime: { file: model.onnx }\n';
const CHUNK = 4096;

let repo: string;
let client: ReturnType<typeof createMemoryClient>;
let onnx: Buffer;
let signing: SigningKey;
let trusted: TrustedKey;
const running: ModelSync[] = [];

beforeEach(async () => {
  repo = await mkdtemp(join(tmpdir(), 'inflow-trust-'));
  client = createMemoryClient();
  onnx = await readFile(ONNX);
  const pair = generateSigningKeyPair();
  signing = parseSigningKey(pair.privateKeyPem, 'release.key');
  trusted = parseTrustedKey(pair.publicKeyPem, 'release.pub');
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close()));
  await client.close();
  await rm(repo, { recursive: true, force: true });
});

function publish(
  version: number,
  extra: { via?: KafkaClient; key?: SigningKey; config?: string; files?: Array<{ path: string; data: Buffer }> } = {},
) {
  return publishModel({
    client: extra.via ?? client,
    topic: TOPIC,
    model: 'digits-mlp',
    version,
    files: extra.files ?? [{ path: 'model.onnx', data: onnx }],
    config: extra.config ?? CONFIG,
    chunkSize: CHUNK,
    ...(extra.key ? { signingKey: extra.key } : {}),
  });
}

function startSync(extra: Partial<ModelSyncOptions> = {}) {
  const log = eventLog();
  const sync = createModelSync({ client, topic: TOPIC, repository: repo, onEvent: log.onEvent, pollTimeoutMs: 50, ...extra });
  running.push(sync);
  return { sync, log };
}

const versionDir = (v: number) => join(repo, 'digits-mlp', String(v));
const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );
const rejection = async (log: ReturnType<typeof eventLog>, version: number) => {
  const e = await log.next((x) => x.type === 'rejected' && x.version === version);
  return e.type === 'rejected' ? { code: e.code, reason: e.reason } : { code: '', reason: '' };
};
const staged = async (): Promise<string[]> => readdir(join(repo, STAGING_DIR)).catch(() => []);

describe('model sync trust', () => {
  it('installs a version signed by a trusted key and refuses an unsigned one, keeping the reason in its state and metric', async () => {
    const { sync, log } = startSync({ trustedKeys: [trusted] });
    await sync.start();
    const registry = new Registry();
    registerModelSyncMetrics(registry, sync);
    assert.equal((await publish(1, { key: signing })).signedBy, trusted.id);
    await log.next((e) => e.type === 'installed' && e.version === 1);
    assert.deepEqual(await readFile(join(versionDir(1), 'model.onnx')), onnx);

    const unsigned = await publish(2);
    const r = await rejection(log, 2);
    assert.equal(r.code, 'unsigned');
    assert.match(r.reason, new RegExp(`not signed, and this follower installs only versions signed by a trusted key \\(${trusted.id}\\)`));
    assert.equal(await exists(versionDir(2)), false);
    const state = JSON.parse(await readFile(join(repo, STATE_DIR, 'digits-mlp.json'), 'utf8')) as {
      refused: Record<string, { publishId: string; code: string }>;
    };
    assert.deepEqual([state.refused['2']?.publishId, state.refused['2']?.code], [unsigned.manifest.publishId, 'unsigned']);
    const text = await registry.metrics();
    assert.match(text, /^inflow_model_sync_rejected_total\{reason="unsigned"\} 1$/m);
    assert.match(text, /^inflow_model_sync_rejected_total\{reason="bad-signature"\} 0$/m);
    assert.match(text, /^inflow_model_sync_installed_total 1$/m);
  });

  it('refuses a signed version whose file was changed in the topic (chunk and its header both rewritten) as integrity', async () => {
    const { sync, log } = startSync({ trustedKeys: [trusted] });
    await sync.start();
    const forger = tamperingClient(client, (r) => {
      if (parseKey(r.key ?? null)?.kind !== 'chunk' || !r.value) return r;
      const value = flipByte(r.value, 10);
      const headers = r.headers?.map(([k, v]) =>
        k === Header.SHA256
          ? ([k, Buffer.from(createHash('sha256').update(value).digest('hex'))] as [string, Buffer])
          : ([k, v] as [string, Buffer]),
      );
      return { ...r, value, ...(headers ? { headers } : {}) };
    });
    await publish(1, { via: forger, key: signing });
    const r = await rejection(log, 1);
    assert.equal(r.code, 'integrity');
    assert.match(r.reason, /^file model\.onnx sha256 mismatch/);
    assert.equal(await exists(versionDir(1)), false);
    assert.deepEqual(await staged(), []);
  });

  it('refuses a signed manifest changed in the topic as bad-signature, and one signed by an unknown key as untrusted-key', async () => {
    const { sync, log } = startSync({ trustedKeys: [trusted] });
    await sync.start();
    const rewrite = tamperingClient(client, (r) => {
      if (parseKey(r.key ?? null)?.kind !== 'manifest' || !r.value) return r;
      return { ...r, value: Buffer.from(r.value.toString().replace('"publisher":"', '"publisher":"mallory ')) };
    });
    await publish(1, { via: rewrite, key: signing });
    assert.equal((await rejection(log, 1)).code, 'bad-signature');

    const other = parseSigningKey(generateSigningKeyPair().privateKeyPem, 'other.key');
    await publish(2, { key: other });
    const r = await rejection(log, 2);
    assert.equal(r.code, 'untrusted-key');
    assert.match(r.reason, new RegExp(`signed by key ${other.id}, which is not one of the trusted keys`));
    assert.equal(await exists(versionDir(1)), false);
    assert.equal(await exists(versionDir(2)), false);
    assert.deepEqual(sync.stats().rejectedByReason, { 'bad-signature': 1, 'untrusted-key': 1 });
  });

  it('with no trusted keys installs unsigned versions but refuses a module model, by its shipped or its local config', async () => {
    const { sync, log } = startSync();
    await sync.start();
    const code = Buffer.from('export default { signature: { inputs: [], outputs: [] }, run: () => ({}) };\n');
    await publish(1, { config: 'platform: module\n', files: [{ path: 'model.js', data: code }] });
    const r = await rejection(log, 1);
    assert.equal(r.code, 'executable-platform');
    assert.match(r.reason, /names platform "module", which runs code from the version folder/);
    assert.equal(await exists(versionDir(1)), false);
    assert.equal(await exists(join(repo, 'digits-mlp', 'config.yaml')), false, 'its config is not written either');

    // A module model the operator deployed: a version from the topic is code too.
    await mkdir(join(repo, 'digits-mlp'), { recursive: true });
    await writeFile(join(repo, 'digits-mlp', 'config.yaml'), 'platform: module\n');
    await publishModel({ client, topic: TOPIC, model: 'digits-mlp', version: 2, files: [{ path: 'model.js', data: code }] });
    assert.equal((await rejection(log, 2)).code, 'executable-platform');
    assert.equal(await exists(versionDir(2)), false);

    await publish(3);
    await log.next((e) => e.type === 'installed' && e.version === 3);
  });

  it('installs a module model only with allowExecutablePlatforms', async () => {
    const { sync, log } = startSync({ allowExecutablePlatforms: true, trustedKeys: [trusted] });
    await sync.start();
    const code = Buffer.from('export default { signature: { inputs: [], outputs: [] }, run: () => ({}) };\n');
    await publish(1, { config: 'platform: module\n', files: [{ path: 'model.js', data: code }], key: signing });
    await log.next((e) => e.type === 'installed' && e.version === 1);
    assert.deepEqual(await readFile(join(versionDir(1), 'model.js')), code);
  });
});

describe('model sync trust: label moves, splits and deletions', () => {
  const labels = async () => (parse(await readFile(join(repo, 'digits-mlp', 'config.yaml'), 'utf8')) as { labels?: unknown }).labels;

  it('with trusted keys applies only signed control records and deletions; an unsigned or altered one is refused and changes nothing', async () => {
    const { sync, log } = startSync({ trustedKeys: [trusted] });
    await sync.start();
    await publish(1, { key: signing });
    await publish(2, { key: signing });
    await publish(3, { key: signing });
    await log.next((e) => e.type === 'installed' && e.version === 3);

    await publishControl({ client, topic: TOPIC, model: 'digits-mlp', labels: { stable: 1 } });
    const unsigned = await log.next((e) => e.type === 'rejected' && e.version === undefined);
    assert.equal(unsigned.type === 'rejected' && unsigned.code, 'unsigned');
    assert.match(
      unsigned.type === 'rejected' ? unsigned.reason : '',
      /^control record refused: the control record \(labels\/routing\) is not signed/,
    );
    assert.equal(await labels(), undefined, 'config.yaml keeps its labels');

    const altered = tamperingClient(client, (r) =>
      r.value && parseKey(r.key ?? null)?.kind === 'control'
        ? { ...r, value: Buffer.from(r.value.toString().replace('"stable":2', '"stable":1')) }
        : r,
    );
    await publishControl({ client: altered, topic: TOPIC, model: 'digits-mlp', labels: { stable: 2 }, signingKey: signing });
    const bad = await log.next((e) => e.type === 'rejected' && e.code === 'bad-signature');
    assert.match(bad.type === 'rejected' ? bad.reason : '', /control record \(labels\/routing\)'s signature does not verify/);
    assert.equal(await labels(), undefined);

    await publishControl({ client, topic: TOPIC, model: 'digits-mlp', labels: { stable: 2 }, signingKey: signing });
    await log.next((e) => e.type === 'control');
    assert.deepEqual(await labels(), { stable: 2 });

    await deleteModelVersion({ client, topic: TOPIC, model: 'digits-mlp', version: 1 });
    const refusedDelete = await log.next((e) => e.type === 'rejected' && e.reason.startsWith('deletion of version 1 refused'));
    assert.equal(refusedDelete.type === 'rejected' && refusedDelete.code, 'unsigned');
    assert.equal(await exists(versionDir(1)), true, 'an unsigned deletion removes nothing');
    await deleteModelVersion({ client, topic: TOPIC, model: 'digits-mlp', version: 3, signingKey: signing });
    await log.next((e) => e.type === 'deleted' && e.version === 3);
    assert.equal(await exists(versionDir(3)), false);
    assert.deepEqual(sync.stats().rejectedByReason, { unsigned: 2, 'bad-signature': 1 });
  });

  it('refuses a signed deletion moved onto another version (the signature covers the record key)', async () => {
    const { sync, log } = startSync({ trustedKeys: [trusted] });
    await sync.start();
    await publish(1, { key: signing });
    await publish(2, { key: signing });
    await log.next((e) => e.type === 'installed' && e.version === 2);
    const moved = tamperingClient(client, (r) =>
      r.value === null && parseKey(r.key ?? null)?.kind === 'manifest' ? { ...r, key: Buffer.from(manifestKey('digits-mlp', 2)) } : r,
    );
    await deleteModelVersion({ client: moved, topic: TOPIC, model: 'digits-mlp', version: 1, signingKey: signing });
    const r = await log.next((e) => e.type === 'rejected' && e.reason.startsWith('deletion of version 2 refused'));
    assert.equal(r.type === 'rejected' && r.code, 'bad-signature');
    assert.equal(await exists(versionDir(2)), true);
    assert.equal(await exists(versionDir(1)), true);
  });
});

describe('model sync staging bounds', () => {
  /** Writes a raw record to the topic, as any writer of it could. */
  async function send(key: string, value: Buffer, headers: Array<[string, Buffer]>): Promise<void> {
    const producer = client.producer({ acks: 'all' });
    await producer.send([{ topic: TOPIC, key: Buffer.from(key), value, headers }]);
    await producer.close();
  }
  const chunkHeaders = (publishId: string, value: Buffer, offset: number): Array<[string, Buffer]> => [
    [Header.PUBLISH_ID, Buffer.from(publishId)],
    [Header.SHA256, Buffer.from(createHash('sha256').update(value).digest('hex'))],
    [Header.OFFSET, Buffer.from(String(offset))],
  ];
  async function sendManifest(version: number, publishId: string, size: number): Promise<void> {
    const value = Buffer.alloc(size, 1);
    const manifest = {
      format: 1,
      model: 'digits-mlp',
      version,
      publishId,
      chunkSize: CHUNK,
      files: [{ path: 'model.onnx', size, sha256: createHash('sha256').update(value).digest('hex'), chunks: Math.ceil(size / CHUNK) }],
      config: { platform: 'onnx', runtime: { file: 'model.onnx' } },
      publishedAt: new Date(0).toISOString(),
      publisher: 'mallory@host',
    };
    await send(manifestKey('digits-mlp', version), Buffer.from(JSON.stringify(manifest)), [[Header.PUBLISH_ID, Buffer.from(publishId)]]);
  }

  it('refuses a 1-byte chunk at offset 8 GiB before writing it, and answers the next publish', async () => {
    const { sync, log } = startSync();
    await sync.start();
    const publishId = 'sparse-0001';
    const one = Buffer.from([1]);
    await send(chunkKey('digits-mlp', 1, 0, 0), one, chunkHeaders(publishId, one, 8 * 1024 ** 3));
    await sendManifest(1, publishId, 1);
    const r = await rejection(log, 1);
    assert.equal(r.code, 'integrity');
    assert.match(r.reason, /^chunk 0 of file model\.onnx \(offset 8589934592, 1 bytes\) must start at offset 0$/);
    assert.deepEqual(await staged(), [], 'no staged file was made');
    await publish(2);
    await log.next((e) => e.type === 'installed' && e.version === 2);
  });

  it('refuses a chunk whose offset implies a chunk size over 16 MiB, and one placed where the manifest puts none', async () => {
    const { sync, log } = startSync();
    await sync.start();
    const one = Buffer.from([1]);
    await send(chunkKey('digits-mlp', 1, 0, 1), one, chunkHeaders('far-chunk-01', one, 2 ** 40));
    await sendManifest(1, 'far-chunk-01', 1);
    const far = await rejection(log, 1);
    assert.equal(far.code, 'integrity');
    assert.match(
      far.reason,
      /chunk 1 of file model\.onnx \(offset 1099511627776, 1 bytes\): its offset is not n × a chunk size of 1\.\.16777216 bytes/,
    );

    // Consistent in itself (chunk 1 at 1 × 4096), but the manifest declares a 1-byte file: refused before reading the staged file.
    await send(chunkKey('digits-mlp', 2, 0, 1), one, chunkHeaders('misplaced-01', one, CHUNK));
    await sendManifest(2, 'misplaced-01', 1);
    const misplaced = await rejection(log, 2);
    assert.equal(misplaced.code, 'integrity');
    assert.match(
      misplaced.reason,
      /^chunk 1 of file model\.onnx is 1 bytes at offset 4096; the manifest \(1 bytes in 1 chunks of 4096\) puts no such chunk$/,
    );
    assert.deepEqual(await staged(), []);
  });

  it('bounds the staging space: a publish over maxStagingBytes is refused and its staged chunks are removed at once', async () => {
    const { sync, log } = startSync({ maxStagingBytes: 10_000 });
    await sync.start();
    const dying = tamperingClient(client, (r) => {
      if (parseKey(r.key ?? null)?.kind === 'manifest') throw new Error('publisher died before its manifest');
      return r;
    });
    const started = publish(1, { via: dying });
    await assert.rejects(started, /publisher died/);
    // A small publish after it: once it is installed, every chunk of version 1 was read.
    await publish(2, { files: [{ path: 'model.onnx', data: onnx.subarray(0, 5000) }] });
    await log.next((e) => e.type === 'installed' && e.version === 2);
    assert.deepEqual(await staged(), [], 'the refused publish left nothing staged while its manifest is still missing');
    assert.equal(sync.stats().pending, 1, 'the refused publish still holds back offsets until its manifest or abandonment');

    const whole = await publish(1);
    const r = await rejection(log, 1);
    assert.equal(r.code, 'staging-limit');
    assert.match(r.reason, /over the limit of 10000 \(maxStagingBytes\)/);
    assert.equal(whole.bytes, onnx.length);
    assert.equal(await exists(versionDir(1)), false);
  });
});
