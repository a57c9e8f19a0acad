import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../observability/logger.ts';
import { loadServable, setRuntimeLogger } from '../../runtime/index.ts';
import { createLocalInference, type LocalInference } from '../../serving/local-inference.ts';
import { type ExampleServer, exampleRepository, startExampleServer } from './fixtures/example-server.ts';

describe("Triton's model repository extension over REST", () => {
  let inference: LocalInference;
  let api: ExampleServer;
  let open: ExampleServer;
  const auth = { authorization: 'Bearer root' };

  before(async () => {
    const root = await exampleRepository();
    // A model whose only version fails to load: the index says why.
    await mkdir(join(root, 'broken', '1'), { recursive: true });
    await writeFile(join(root, 'broken', 'config.yaml'), 'platform: onnx\nruntime: { file: model.onnx }\n');
    await writeFile(join(root, 'broken', '1', 'model.onnx'), 'not an onnx model');
    setRuntimeLogger(silentLogger);
    inference = await createLocalInference({ modelRepository: root, load: loadServable, watch: false, settleMs: 0 });
    api = await startExampleServer(inference, { admin: { token: 'root' } });
    open = await startExampleServer(inference);
  });
  after(async () => {
    await api.server.close(1000);
    await open.server.close(1000);
    await inference.close();
  });

  const post = async (path: string, body?: string, headers: Record<string, string> = auth): Promise<{ status: number; json: unknown }> => {
    const response = await fetch(api.url + path, { method: 'POST', headers, ...(body === undefined ? {} : { body }) });
    return { status: response.status, json: await response.json() };
  };

  it('is there only with the admin token, and GET /v2 announces it then', async () => {
    assert.equal((await fetch(`${open.url}/v2/repository/index`, { method: 'POST' })).status, 404);
    assert.equal((await post('/v2/repository/index', '{}', {})).status, 401);
    assert.equal((await post('/v2/repository/index', '{}', { authorization: 'Bearer wrong' })).status, 401);
    const server = (await (await fetch(`${api.url}/v2`)).json()) as { extensions: string[] };
    assert.deepEqual(server.extensions, ['binary_tensor_data', 'model_repository']);
    const plain = (await (await fetch(`${open.url}/v2`)).json()) as { extensions: string[] };
    assert.deepEqual(plain.extensions, ['binary_tensor_data']);
  });

  it('lists every model version with its state, or only the ready ones', async () => {
    const all = await post('/v2/repository/index', '');
    assert.equal(all.status, 200);
    const rows = all.json as Array<{ name: string; version: string; state: string; reason: string }>;
    assert.deepEqual(
      rows.filter((r) => r.name === 'digits-mlp').map((r) => [r.version, r.state, r.reason]),
      [
        ['1', 'READY', ''],
        ['2', 'READY', ''],
      ],
    );
    const broken = rows.filter((r) => r.name === 'broken');
    assert.equal(broken.length, 1);
    assert.equal(broken[0]?.state, 'UNAVAILABLE');
    assert.match(broken[0]?.reason ?? '', /./);
    const ready = (await post('/v2/repository/index', '{"ready":true}')).json as Array<{ name: string; state: string }>;
    assert.deepEqual([...new Set(ready.map((r) => r.name))].sort(), ['breast-cancer-pipeline', 'digits-mlp']);
    assert.ok(ready.every((r) => r.state === 'READY'));
  });

  it('unloads and loads a model; the model answers 503 not ready in between', async () => {
    assert.deepEqual(await post('/v2/repository/models/digits-mlp/unload', '{"parameters":{"unload_dependents":false}}'), {
      status: 200,
      json: {},
    });
    assert.equal((await fetch(`${api.url}/v2/models/digits-mlp/ready`)).status, 503);
    const index = (await post('/v2/repository/index', '{"ready":true}')).json as Array<{ name: string }>;
    assert.ok(!index.some((r) => r.name === 'digits-mlp'), 'an unloaded model is not listed as ready');
    assert.deepEqual(await post('/v2/repository/models/digits-mlp/load', '{}'), { status: 200, json: {} });
    assert.equal((await fetch(`${api.url}/v2/models/digits-mlp/ready`)).status, 200);
  });

  it('answers unknown models, broken models and unsupported parameters with a status and the reason', async () => {
    const cases: Array<[string, string | undefined, number, RegExp]> = [
      ['/v2/repository/models/nope/load', undefined, 404, /no folder in the repository/],
      ['/v2/repository/models/nope/unload', undefined, 404, /not in the repository/],
      ['/v2/repository/models/broken/load', '{}', 400, /failed to load 'broken'/],
      ['/v2/repository/models/digits-mlp/load', '{"parameters":{"config":"{}"}}', 501, /load parameters \(config\) are not supported/],
      ['/v2/repository/models/digits-mlp/load', '[1]', 400, /body must be a JSON object/],
      ['/v2/repository/index', '{"ready":"yes"}', 400, /'ready' must be true or false/],
    ];
    for (const [path, body, status, message] of cases) {
      const answer = await post(path, body);
      assert.equal(answer.status, status, `${path} ${body}: ${JSON.stringify(answer.json)}`);
      assert.match((answer.json as { error: string }).error, message);
    }
  });
});
