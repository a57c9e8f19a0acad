/**
 * Fuzzing the REST endpoints: 10 000 random and mutated bodies per endpoint (seeded, so a failure
 * reproduces). Every answer must be a clean HTTP error or success — never a 5xx, never a hang
 * (each request has a deadline) — and the server must still answer correctly afterwards.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { loadServable } from '../../src/runtime/index.ts';
import { type RunningModelServer, startModelServer } from '../../src/server/model-server.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const RUNS = Number(process.env.INFLOW_FUZZ_RUNS ?? 10_000);
const SEED = Number(process.env.INFLOW_FUZZ_SEED ?? 20261126);

const validTf = JSON.stringify({ instances: [Array.from({ length: 64 }, (_, i) => i % 17)] });
const validOip = JSON.stringify({
  id: 'f',
  inputs: [{ name: 'input', shape: [1, 64], datatype: 'FP32', data: Array.from({ length: 64 }, () => 1) }],
});

/** Bodies: random JSON values, random bytes, and mutations of a valid body. */
function bodies(valid: string): fc.Arbitrary<Buffer> {
  const text = Buffer.from(valid);
  const mutate = fc
    .tuple(
      fc.nat(text.length),
      fc.nat(text.length),
      fc.uint8Array({ minLength: 0, maxLength: 8 }),
      fc.constantFrom('truncate', 'splice', 'flip'),
    )
    .map(([a, b, bytes, how]) => {
      if (how === 'truncate') return text.subarray(0, a);
      if (how === 'flip') {
        const copy = Buffer.from(text);
        const at = a % Math.max(1, copy.length);
        if (copy.length > 0) copy.writeUInt8(copy.readUInt8(at) ^ 0xff, at);
        return copy;
      }
      return Buffer.concat([text.subarray(0, Math.min(a, b)), Buffer.from(bytes), text.subarray(Math.max(a, b))]);
    });
  const shapes = fc
    .record({
      shape: fc.array(fc.oneof(fc.integer({ min: -3, max: 5 }), fc.constant(2 ** 40), fc.double()), { maxLength: 4 }),
      datatype: fc.constantFrom('FP32', 'INT64', 'BYTES', 'FP16', 'BOOL', 'NOPE', 7),
      data: fc.oneof(fc.array(fc.oneof(fc.double(), fc.string(), fc.boolean()), { maxLength: 70 }), fc.string(), fc.constant(null)),
      name: fc.oneof(fc.constant('input'), fc.string({ maxLength: 5 })),
      rows: fc.boolean(),
    })
    .map(({ rows, ...t }) => Buffer.from(JSON.stringify({ inputs: [t], instances: rows ? [t.data] : undefined })));
  return fc.oneof(
    fc.jsonValue({ maxDepth: 4 }).map((v) => Buffer.from(JSON.stringify(v))),
    fc.uint8Array({ maxLength: 256 }).map((u) => Buffer.from(u)),
    mutate,
    shapes,
  );
}

describe('REST fuzzing', () => {
  let server: RunningModelServer;
  let base: string;
  before(async () => {
    server = await startModelServer({
      modelRepository: join(ROOT, 'models', 'repository'),
      load: loadServable,
      rest: { host: '127.0.0.1', port: 0, maxBodyBytes: 1024 * 1024 },
      grpc: false,
      watch: false,
    });
    base = `http://${server.restAddress}`;
  });
  after(async () => server?.close());

  async function send(path: string, body: Buffer, headers: Record<string, string> = {}): Promise<number> {
    const res = await fetch(base + path, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', ...headers },
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (res.status >= 400) assert.match(text, /"error"/, `${path} ${res.status} answers an {"error": ...} body`);
    return res.status;
  }

  const endpoints: Array<[string, string, (b: Buffer) => Record<string, string>]> = [
    ['/v1/models/digits-mlp:predict', validTf, () => ({})],
    ['/v2/models/digits-mlp/infer', validOip, () => ({})],
    ['/v2/models/digits-mlp/infer', validOip, (b) => ({ 'inference-header-content-length': String(Math.floor(b.length / 2)) })],
  ];
  for (const [path, valid, headers] of endpoints) {
    it(`answers ${RUNS} random bodies on ${path}${Object.keys(headers(Buffer.alloc(0))).length ? ' (binary extension)' : ''} with 2xx/4xx only`, async () => {
      const seen = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(bodies(valid), async (body) => {
          const status = await send(path, body, headers(body));
          seen.set(status, (seen.get(status) ?? 0) + 1);
          return status < 500;
        }),
        { numRuns: RUNS, seed: SEED },
      );
      assert.ok((seen.get(400) ?? 0) > 0, 'bad bodies were rejected with 400');
    });
  }

  it('answers random paths without a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.webPath(), fc.constantFrom('GET', 'POST'), async (path, method) => {
        const res = await fetch(`${base}/${path.replace(/^\/+/, '')}`, { method, signal: AbortSignal.timeout(10_000) });
        await res.arrayBuffer();
        return res.status < 500;
      }),
      { numRuns: Math.min(RUNS, 2000), seed: SEED },
    );
  });

  it('still answers a valid request correctly afterwards', async () => {
    const res = await fetch(`${base}/v1/models/digits-mlp:predict`, { method: 'POST', body: validTf });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { predictions: Array<{ label: number }> };
    assert.equal(body.predictions.length, 1);
  });
});
