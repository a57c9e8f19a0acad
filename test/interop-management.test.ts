/**
 * Model management through the official clients against `inflow serve` run as users run it, with
 * INFLOW_ADMIN_TOKEN set: Triton's repository extension over REST and gRPC (tritonclient.http and
 * tritonclient.grpc: index, unload, load) and TF Serving's HandleReloadConfigRequest
 * (tensorflow-serving-api's ModelService stub). Issue 21 item 6: gRPC answered UNIMPLEMENTED.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { interopPython, ROOT, runClient, type ServeProcess, startServe } from './interop/interop-support.ts';

interface Seen {
  http_without_token: string;
  grpc_without_token: string;
  http_extensions: string[];
  grpc_extensions: string[];
  http_index: string[][];
  grpc_index: string[][];
  http_ready_after_unload: boolean;
  http_ready_after_load: boolean;
  http_load_unknown: string;
  grpc_ready_after_unload: boolean;
  grpc_ready_after_load: boolean;
  tf_reload_without_token: string;
  tf_reload_one: { error_code: number; ready: Record<string, boolean> };
  tf_reload_all: Record<string, boolean>;
}

describe('model management with the official clients against inflow serve (INFLOW_ADMIN_TOKEN set)', () => {
  let py: string | undefined;
  let root: string;
  let serve: ServeProcess | undefined;

  before(async () => {
    py = await interopPython();
    root = await mkdtemp(join(tmpdir(), 'inflow-interop-admin-'));
    for (const model of ['digits-mlp', 'breast-cancer-pipeline']) {
      await cp(join(ROOT, 'models', 'repository', model), join(root, model), { recursive: true });
    }
    serve = await startServe(root, { INFLOW_ADMIN_TOKEN: 'adm-7f3' });
  });
  after(async () => {
    await serve?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('tritonclient (http and grpc) index, unload and load models; TF Serving clients reload the config; all need the token', async (t) => {
    if (!py || !serve) return t.skip('no client virtualenv');
    const job = { rest: serve.rest, grpc: serve.grpc, token: 'adm-7f3', models: ['digits-mlp', 'breast-cancer-pipeline'] };
    const seen = await runClient<Seen>(py, 'model_management.py', job);
    assert.equal(seen.http_without_token, '401');
    assert.equal(seen.grpc_without_token, 'StatusCode.UNAUTHENTICATED');
    assert.equal(seen.tf_reload_without_token, 'UNAUTHENTICATED');
    assert.ok(seen.http_extensions.includes('model_repository'), String(seen.http_extensions));
    assert.ok(seen.grpc_extensions.includes('model_repository'), String(seen.grpc_extensions));
    const index = [
      ['breast-cancer-pipeline', '1', 'READY'],
      ['digits-mlp', '1', 'READY'],
    ];
    assert.deepEqual(seen.http_index, index);
    assert.deepEqual(seen.grpc_index, index);
    assert.deepEqual(
      [seen.http_ready_after_unload, seen.http_ready_after_load, seen.grpc_ready_after_unload, seen.grpc_ready_after_load],
      [false, true, false, true],
    );
    assert.equal(seen.http_load_unknown, '404');
    assert.deepEqual(seen.tf_reload_one, { error_code: 0, ready: { 'digits-mlp': true, 'breast-cancer-pipeline': false } });
    assert.deepEqual(seen.tf_reload_all, { 'digits-mlp': true, 'breast-cancer-pipeline': true });
  });
});
