import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import type { LocalInference } from '../../serving/local-inference.ts';
import { type ExampleServer, loadExampleInference, type Sample, sample, startExampleServer } from './fixtures/example-server.ts';

describe('REST request compression (Content-Encoding gzip/deflate, as Triton accepts)', () => {
  let inference: LocalInference;
  let api: ExampleServer;
  let digits: Sample;
  const LIMIT = 1024 * 1024;
  before(async () => {
    inference = await loadExampleInference();
    api = await startExampleServer(inference, { maxBodyBytes: LIMIT });
    digits = await sample('digits-mlp');
  });
  after(async () => {
    await api.server.close(1000);
    await inference.close();
  });

  const oipBody = (): string =>
    JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [8, 64], data: digits.inputs.input?.data }] });
  const post = async (
    path: string,
    body: Uint8Array | string,
    encoding?: string,
  ): Promise<{ status: number; json: Record<string, unknown> }> => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (encoding !== undefined) headers['content-encoding'] = encoding;
    const response = await fetch(api.url + path, { method: 'POST', headers, body });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  };

  it('answers a gzip, deflate (zlib) or raw-deflate body exactly as the same body sent plain', async () => {
    const plain = await post('/v2/models/digits-mlp/infer', oipBody());
    assert.equal(plain.status, 200);
    const text = Buffer.from(oipBody());
    for (const [encoding, body] of [
      ['gzip', gzipSync(text)],
      ['GZIP', gzipSync(text)],
      ['x-gzip', gzipSync(text)],
      ['deflate', deflateSync(text)],
      ['deflate', deflateRawSync(text)],
      ['identity', text],
    ] as const) {
      assert.deepEqual(await post('/v2/models/digits-mlp/infer', body, encoding), plain, encoding);
    }
    const tf = await post('/v1/models/digits-mlp:predict', gzipSync(JSON.stringify({ instances: [new Array(64).fill(0)] })), 'gzip');
    assert.equal(tf.status, 200, JSON.stringify(tf.json));
    assert.ok(Array.isArray(tf.json.predictions));
  });

  it('refuses a decompression bomb at the body limit with 413, and still serves afterwards', async () => {
    // 64 MiB of zeros is about 64 KiB gzipped: small on the wire, 64 times the 1 MiB limit inside.
    const bomb = gzipSync(Buffer.alloc(64 * LIMIT), { level: 9 });
    assert.ok(bomb.byteLength < LIMIT);
    const answer = await post('/v2/models/digits-mlp/infer', bomb, 'gzip');
    assert.equal(answer.status, 413);
    assert.match(String(answer.json.error), /decompresses to more than 1048576 bytes \(maxBodyBytes\)/);
    assert.equal((await post('/v2/models/digits-mlp/infer', gzipSync(oipBody()), 'gzip')).status, 200);
  });

  it('answers 415 for other encodings and 400 for a body that is not what its encoding says', async () => {
    for (const encoding of ['br', 'zstd', 'gzip, br', 'compress']) {
      const answer = await post('/v2/models/digits-mlp/infer', oipBody(), encoding);
      assert.equal(answer.status, 415, encoding);
      assert.match(String(answer.json.error), /is not supported; expected gzip, deflate or none/);
    }
    const broken = await post('/v2/models/digits-mlp/infer', 'not gzip at all', 'gzip');
    assert.equal(broken.status, 400);
    assert.match(String(broken.json.error), /request body is not valid gzip data/);
  });
});
