/**
 * inflow's remote mode against peer model servers that install from PyPI — MLServer 1.7.1 and
 * KServe 0.21 (the benchmarks' peer scripts, ONNX on onnxruntime) — with the settings
 * docs/remote-peers.md gives: the predictions equal the Python onnxruntime reference, and the
 * settings that cannot work there (a pinned version, oipBinary on MLServer) fail at the first call
 * with what to change. Issue 21 items 7 and 10.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createRemoteInferencer } from '../src/client/remote-inferencer.ts';
import type { RemoteClientConfigInput } from '../src/client/remote-config.ts';
import { createTensor, type Tensor } from '../src/tensor/tensor.ts';
import { type PeerServer, peerPython, ROOT, startPeer } from './interop/interop-support.ts';

interface Reference {
  inputs: Record<string, { shape: number[]; data: number[] }>;
  outputs: Record<string, { shape: number[]; data: number[] }>;
}
const reference = JSON.parse(readFileSync(join(ROOT, 'models', 'samples', 'digits-mlp.json'), 'utf8')) as Reference;
const sample = reference.inputs.input;
const input = createTensor('FP32', sample?.shape ?? [], Float32Array.from(sample?.data ?? []));
const MODEL = join(ROOT, 'models', 'repository', 'digits-mlp', '1', 'model.onnx');

/** `shapes`: MLServer's NumpyCodec answers a 1-D output as [n, 1] ("label" [8] comes back [8, 1]). */
function assertReference(outputs: Record<string, Tensor>, what: string, shapes: Record<string, number[]> = {}): void {
  for (const [name, want] of Object.entries(reference.outputs)) {
    const got = outputs[name];
    assert.ok(got, `${what}: output ${name}`);
    assert.deepEqual(got.shape, shapes[name] ?? want.shape, `${what}: ${name} shape`);
    for (const [i, w] of want.data.entries()) {
      const g = Number((got.data as ArrayLike<number | bigint>)[i]);
      assert.ok(Math.abs(g - w) <= 1e-5 * Math.max(1, Math.abs(w)), `${what}: ${name}[${i}] ${g} vs reference ${w}`);
    }
  }
}

/** One attempt per call, no breaker: a test sees each answer as the server gave it. */
async function predict(config: RemoteClientConfigInput, extra: { version?: number } = {}): Promise<Record<string, Tensor>> {
  const client = createRemoteInferencer({ ...config, retry: false, circuitBreaker: false });
  try {
    return (await client.infer({ model: 'digits-mlp', inputs: { input }, ...extra })).outputs;
  } finally {
    await client.close();
  }
}

for (const peer of ['mlserver', 'kserve'] as const) {
  describe(`inflow's remote client against ${peer === 'mlserver' ? 'MLServer 1.7.1' : 'KServe 0.21'}`, () => {
    let server: PeerServer | undefined;
    before(async () => {
      const python = await peerPython(peer);
      if (python) server = await startPeer(peer, python, 'digits-mlp', MODEL);
    });
    after(async () => server?.stop());

    it('predicts the reference over OIP REST (JSON) and OIP gRPC with no version pinned', async (t) => {
      if (!server) return t.skip(`no ${peer} virtualenv`);
      const shapes: Record<string, number[]> = peer === 'mlserver' ? { label: [8, 1] } : {};
      assertReference(await predict({ protocol: 'oip-rest', url: `http://${server.rest}` }), 'oip-rest', shapes);
      assertReference(await predict({ protocol: 'oip-grpc', url: server.grpc }), 'oip-grpc', shapes);
    });

    it('refuses a pinned version at the first call, saying to remove it (the models are unversioned)', async (t) => {
      if (!server) return t.skip(`no ${peer} virtualenv`);
      const message =
        /model "digits-mlp" has no versions on this server \(MLServer and KServe models are unversioned\); remove "version: 1"/;
      await assert.rejects(predict({ protocol: 'oip-rest', url: `http://${server.rest}` }, { version: 1 }), {
        code: 'FAILED_PRECONDITION',
        message,
      });
      await assert.rejects(predict({ protocol: 'oip-grpc', url: server.grpc }, { version: 1 }), { code: 'FAILED_PRECONDITION', message });
    });

    it('checks oipBinary against the extensions the server announces', async (t) => {
      if (!server) return t.skip(`no ${peer} virtualenv`);
      const binary = { protocol: 'oip-rest', url: `http://${server.rest}`, oipBinary: true } as const;
      const extensions = ((await (await fetch(`http://${server.rest}/v2`)).json()) as { extensions?: string[] }).extensions ?? [];
      if (extensions.includes('binary_tensor_data')) {
        assertReference(await predict(binary), 'oip-rest binary');
      } else {
        await assert.rejects(predict(binary), {
          code: 'FAILED_PRECONDITION',
          message: /does not announce the binary_tensor_data extension .*; set oipBinary: false for this remote/,
        });
      }
      // What each peer announces is part of the documented matrix (docs/remote-peers.md).
      assert.equal(extensions.includes('binary_tensor_data'), false, `${peer} extensions: ${extensions.join(', ')}`);
    });
  });
}
