import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createMemoryClient } from '../kafka/memory/memory-client.ts';
import { chunkKey, controlKey, manifestKey, parseKey } from './delivery-format.ts';
import { readModelsTopic } from './models-topic.ts';
import { deleteModelVersion, publishControl } from './publish-control.ts';
import { publishModel } from './publish-model.ts';

const TOPIC = 'models';
const GOLDEN = join(import.meta.dirname, 'fixtures', 'publish-golden.json');
const REPOSITORY = join(import.meta.dirname, '..', '..', 'models', 'repository');

let client: ReturnType<typeof createMemoryClient>;
beforeEach(() => {
  client = createMemoryClient();
});
afterEach(() => client.close());

/** The topic's records as JSON-able rows: chunk values in hex, other values as parsed JSON. */
function records(): unknown[] {
  return client.log.partition(TOPIC, 0).entries.map((e) => ({
    key: e.key?.toString(),
    value:
      e.value === null ? null : parseKey(e.key)?.kind === 'chunk' ? e.value.toString('hex') : (JSON.parse(e.value.toString()) as unknown),
    headers: Object.fromEntries(e.headers.map(([k, v]) => [k, v.toString()])),
  }));
}

const fixed = { publishId: '00000000-0000-4000-8000-000000000001', now: () => Date.UTC(2026, 0, 2, 3, 4, 5), publisher: 'tester@host' };

describe('publishing to the models topic', () => {
  it('writes chunks then the manifest, exactly as the golden file (format 1)', async () => {
    await publishModel({
      client,
      topic: TOPIC,
      model: 'tiny',
      version: 3,
      chunkSize: 4,
      files: [
        { path: 'dir/b.txt', data: Buffer.from('hello') },
        { path: 'a.bin', data: Uint8Array.from({ length: 10 }, (_, i) => i) },
        { path: 'empty', data: new Uint8Array(0) },
      ],
      config: { platform: 'onnx', labels: { stable: 3 }, runtime: { file: 'a.bin' } },
      ...fixed,
    });
    const golden = JSON.parse(await readFile(GOLDEN, 'utf8')) as unknown;
    assert.deepEqual(records(), golden);
  });

  it('keeps 512 KiB chunks under the 1 MiB record limit and puts every record of a model on its partition', async () => {
    await client.admin().createTopics([{ topic: TOPIC, partitions: 3 }]);
    const data = Buffer.alloc(1_200_000, 7);
    const result = await publishModel({ client, topic: TOPIC, model: 'big', version: 1, files: [{ path: 'model.onnx', data }] });
    assert.deepEqual([result.chunks, result.bytes], [3, 1_200_000]);
    const entries = client.log.partition(TOPIC, result.partition).entries;
    assert.deepEqual(
      entries.map((e) => e.value?.length),
      [524_288, 524_288, 151_424, entries.at(-1)?.value?.length],
    );
    assert.equal(entries.at(-1)?.key?.toString(), manifestKey('big', 1), 'the manifest comes last');
  });

  it('publishes every file of a version folder with relative paths in order', async () => {
    const { manifest } = await publishModel({
      client,
      topic: TOPIC,
      model: 'breast-cancer-pipeline',
      version: 1,
      modelDir: join(REPOSITORY, 'breast-cancer-pipeline', '1'),
    });
    assert.deepEqual(
      manifest.files.map((f) => [f.path, f.size, f.chunks]),
      [
        ['gbt.onnx', 54_365, 1],
        ['labels.txt', 17, 1],
        ['pipeline.yaml', 671, 1],
        ['transform.yaml', 2261, 1],
      ],
    );
    assert.equal(manifest.config, null);
  });

  it('refuses bad names, paths, chunk sizes and configs before writing anything', async () => {
    const files = [{ path: 'model.onnx', data: Buffer.from('x') }];
    const base = { client, topic: TOPIC, model: 'm', version: 1, files };
    await assert.rejects(publishModel({ ...base, model: '../m' }), {
      code: 'INVALID_ARGUMENT',
      message: /model name "\.\.\/m": expected letters/,
    });
    await assert.rejects(publishModel({ ...base, version: -1 }), { code: 'INVALID_ARGUMENT', message: /version -1 of model "m"/ });
    await assert.rejects(publishModel({ ...base, chunkSize: 0 }), {
      code: 'INVALID_ARGUMENT',
      message: /chunk size: expected 1\.\.16777216 bytes, got 0/,
    });
    await assert.rejects(publishModel({ ...base, files: [{ path: '../x', data: Buffer.from('x') }] }), {
      code: 'INVALID_ARGUMENT',
      message: /file path "\.\.\/x"/,
    });
    await assert.rejects(publishModel({ ...base, modelDir: REPOSITORY }), { code: 'INVALID_ARGUMENT', message: /exactly one of modelDir/ });
    await assert.rejects(publishModel({ ...base, config: 'platform: tensorflow\n' }), { code: 'INVALID_CONFIG', message: /platform/ });
    await assert.rejects(publishModel({ ...base, files: [] }), {
      code: 'INVALID_ARGUMENT',
      message: 'model "m" version 1: no files to publish',
    });
    assert.deepEqual(client.log.hasTopic(TOPIC) ? records() : [], []);
  });

  it('merges label moves with the labels in force and removes a label set to null', async () => {
    const files = [{ path: 'model.onnx', data: Buffer.from('x') }];
    for (const version of [1, 2, 3])
      await publishModel({ client, topic: TOPIC, model: 'm', version, files, config: 'platform: onnx\nlabels: { stable: 1 }\n' });
    const first = await publishControl({ client, topic: TOPIC, model: 'm', labels: { canary: 2 } });
    assert.deepEqual(first.control.labels, { stable: 1, canary: 2 }, "the manifest config's labels are the base");
    assert.match(first.warnings.join('\n'), /^model "m": version 1, 2 is not loaded under versionPolicy \{"latest":1\} \(loaded: 3\)/);
    const second = await publishControl({ client, topic: TOPIC, model: 'm', labels: { stable: 2, canary: null } });
    assert.deepEqual(second.control.labels, { stable: 2 });
    const split = await publishControl({
      client,
      topic: TOPIC,
      model: 'm',
      routing: {
        split: [
          { version: 2, weight: 1 },
          { version: 3, weight: 1 },
        ],
        shadow: { version: 3, fraction: 0.5 },
      },
    });
    assert.deepEqual(split.control.labels, { stable: 2 }, 'a routing change keeps the labels');
    const cleared = await publishControl({ client, topic: TOPIC, model: 'm', routing: null, labels: { x: 3 }, replace: true });
    assert.deepEqual([cleared.control.labels, cleared.control.routing], [{ x: 3 }, null]);
    const content = await readModelsTopic({ client, topic: TOPIC });
    assert.deepEqual(content.controls.get('m')?.labels, { x: 3 });
    assert.equal(client.log.partition(TOPIC, 0).entries.at(-1)?.key?.toString(), controlKey('m'));
  });

  it('reads the latest manifest per version and forgets a deleted one', async () => {
    const files = [{ path: 'model.onnx', data: Buffer.from('abc') }];
    await publishModel({ client, topic: TOPIC, model: 'm', version: 1, files });
    await publishModel({ client, topic: TOPIC, model: 'm', version: 2, files });
    const again = await publishModel({
      client,
      topic: TOPIC,
      model: 'm',
      version: 1,
      files: [{ path: 'model.onnx', data: Buffer.from('abcd') }],
    });
    assert.equal((await deleteModelVersion({ client, topic: TOPIC, model: 'm', version: 2 })).tombstones, 2);
    const content = await readModelsTopic({ client, topic: TOPIC });
    assert.deepEqual(
      content.manifests.map((e) => [e.manifest.version, e.manifest.publishId, e.manifest.files[0]?.size]),
      [[1, again.manifest.publishId, 4]],
    );
    assert.deepEqual(content.invalid, []);
    await assert.rejects(deleteModelVersion({ client, topic: TOPIC, model: 'm', version: 2 }), { code: 'NOT_FOUND' });
  });

  it('parses only its own keys', () => {
    assert.deepEqual(parseKey(Buffer.from(chunkKey('digits-mlp', 12, 0, 3))), {
      kind: 'chunk',
      model: 'digits-mlp',
      version: 12,
      file: 0,
      n: 3,
    });
    assert.deepEqual(parseKey(Buffer.from(manifestKey('m', 0))), { kind: 'manifest', model: 'm', version: 0 });
    assert.deepEqual(parseKey(Buffer.from(controlKey('m'))), { kind: 'control', model: 'm' });
    for (const junk of ['m/../1/manifest', 'm/m/01/manifest', 'x/m/1/manifest', 'm/m/1/chunk/a/0', 'm/m/1/chunk/0', 'm/m/control/x', '']) {
      assert.equal(parseKey(Buffer.from(junk)), undefined, junk);
    }
    assert.equal(parseKey(null), undefined);
  });
});

describe('reading the models topic', () => {
  it('reports a manifest that does not parse instead of failing', async () => {
    await client.admin().createTopics([{ topic: TOPIC }]);
    const producer = client.producer();
    await producer.send([{ topic: TOPIC, key: Buffer.from(manifestKey('m', 1)), value: Buffer.from('{"format":2}') }]);
    const content = await readModelsTopic({ client, topic: TOPIC });
    assert.deepEqual(content.manifests, []);
    assert.equal(content.invalid.length, 1);
    assert.match(content.invalid[0]?.reason ?? '', /^manifest m\/m\/1\/manifest does not match models-topic format 1: format: /);
  });
});
