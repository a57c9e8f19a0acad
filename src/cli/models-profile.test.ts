import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createModelSync, readModelsTopic } from '../delivery/index.ts';
import { createMemoryClient } from '../kafka/memory/memory-client.ts';
import { loadReferenceProfile } from '../monitoring/reference-profile.ts';
import { modelsMain } from './models-command.ts';

const DIGITS_V1 = join(import.meta.dirname, '..', '..', 'models', 'repository', 'digits-mlp', '1');

describe('inflow models publish --reference-data', () => {
  it('ships the reference profile with the version, and a follower installs it beside the model', async () => {
    const client = createMemoryClient();
    const dir = await mkdtemp(join(tmpdir(), 'inflow-profile-cli-'));
    const data = join(dir, 'reference.jsonl');
    const rows = Array.from({ length: 300 }, (_, i) =>
      JSON.stringify({ inputs: { input: [i % 17, (i * 7) % 5] }, outputs: { label: [i % 10] } }),
    );
    await writeFile(data, `${rows.join('\n')}\n`);
    const out: string[] = [];
    const err: string[] = [];
    const code = await modelsMain(
      ['publish', DIGITS_V1, '--model', 'digits-mlp', '--version', '1', '--reference-data', data, '--categorical', 'label'],
      (l) => out.push(l),
      { client, err: (l) => err.push(l) },
    );
    assert.deepEqual([code, err], [0, []]);
    assert.match(out[0] ?? '', /, reference profile of 300 rows \(2 input features, 1 output\), unsigned;/);
    const content = await readModelsTopic({ client, topic: 'inflow-models' });
    assert.deepEqual(
      content.manifests[0]?.manifest.files.map((f) => f.path),
      ['model.onnx', 'reference-profile.json'],
    );
    const repo = join(dir, 'repo');
    const sync = createModelSync({ client, topic: 'inflow-models', repository: repo, pollTimeoutMs: 50 });
    await sync.start();
    try {
      const profile = await loadReferenceProfile(join(repo, 'digits-mlp', '1'), 'digits-mlp version 1');
      assert.equal(profile.rows, 300);
      assert.deepEqual(Object.keys(profile.inputs), ['input[0]', 'input[1]']);
      assert.equal(profile.outputs.label?.kind, 'categorical');
    } finally {
      await sync.close();
      await client.close();
    }
  });

  it('refuses reference data that is not rows of inputs, publishing nothing', async () => {
    const client = createMemoryClient();
    const dir = await mkdtemp(join(tmpdir(), 'inflow-profile-cli-'));
    await writeFile(join(dir, 'bad.json'), '[{"pixels": [1, 2]}]');
    const err: string[] = [];
    const code = await modelsMain(
      ['publish', DIGITS_V1, '--model', 'digits-mlp', '--version', '1', '--reference-data', join(dir, 'bad.json')],
      () => undefined,
      { client, err: (l) => err.push(l) },
    );
    assert.equal(code, 2);
    assert.match(err[0] ?? '', /bad\.json: row 0 has no "inputs" object; expected \{"inputs"/);
    assert.deepEqual((await readModelsTopic({ client, topic: 'inflow-models' })).manifests, []);
    await client.close();
  });
});
