/**
 * The model server fills a request's missing inputs from a pipeline's store (issue 17 item 4),
 * end to end over real HTTP: a caller sends only the entity key to the model server's OIP route;
 * the server reads the entity's features from a stream instance's interactive-query route
 * (`/v1/stores`, the listener of `inflow stream --metrics-port`) and scores the real digits-mlp
 * ONNX model on them — the same answer as a request that carries the features itself.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type StreamProbes, startStreamProbes } from '../../src/cli/stream-probes.ts';
import { loadServable } from '../../src/runtime/index.ts';
import { type RunningModelServer, startModelServer } from '../../src/server/model-server.ts';
import { createKeyValueStore, jsonValueSerde, orderedKeySerde } from '../../src/streams/state/key-value-store.ts';
import { createMemoryStore } from '../../src/streams/state/memory-store.ts';
import { createStoreQuery, type LocalStoreState } from '../../src/streams/runtime/store-query.ts';

const MODELS = join(import.meta.dirname, '..', '..', 'models');
const FIELDS = Array.from({ length: 64 }, (_, i) => `f${i}`);

describe('model inputs filled from a stream store', () => {
  let dir: string;
  let probes: StreamProbes;
  let server: RunningModelServer;
  let rows: number[][];
  let partitions: number | undefined = 1;
  let local: LocalStoreState | undefined;

  before(async () => {
    const sample = JSON.parse(await readFile(join(MODELS, 'samples', 'digits-mlp.json'), 'utf8')) as {
      inputs: { input: { data: number[] } };
    };
    rows = [0, 1].map((r) => sample.inputs.input.data.slice(r * 64, (r + 1) * 64));
    // The stream's store: entity → its features (what a pipeline's aggregation would hold).
    const bytes = createMemoryStore();
    const typed = createKeyValueStore('card-features', bytes);
    typed.put('card-7', Object.fromEntries(FIELDS.map((f, i) => [f, rows[0]?.[i]])));
    typed.put('card-8', Object.fromEntries(FIELDS.map((f, i) => [f, rows[1]?.[i]])));
    typed.put('card-9', { f0: 'not a number' });
    local = { state: 'ready', store: bytes };
    const query = createStoreQuery({
      stores: () => [
        {
          name: 'card-features',
          keySerde: orderedKeySerde,
          valueSerde: jsonValueSerde,
          partitions: () => partitions,
          recordKey: (k) => Buffer.from(String(k)),
        },
      ],
      local: () => local,
      owner: async () => undefined,
    });
    probes = await startStreamProbes(
      0,
      '127.0.0.1',
      () => [],
      () => true,
      query,
    );

    dir = await mkdtemp(join(tmpdir(), 'inflow-store-features-'));
    await cp(join(MODELS, 'repository', 'digits-mlp', '1', 'model.onnx'), join(dir, 'digits-mlp', '1', 'model.onnx'));
    await writeFile(
      join(dir, 'digits-mlp', 'config.yaml'),
      `platform: onnx
runtime: { file: model.onnx }
features:
  from: http://127.0.0.1:${probes.port}
  store: card-features
  entityKey: card_id
  inputs: { input: [${FIELDS.join(', ')}] }
`,
    );
    server = await startModelServer({
      modelRepository: dir,
      load: loadServable,
      rest: { host: '127.0.0.1', port: 0 },
      grpc: false,
      watch: false,
    });
    // The first version settles before it answers.
    while (!(await server.inference.ready('digits-mlp'))) await new Promise((r) => setTimeout(r, 20));
  });
  after(async () => {
    await server?.close();
    await probes?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function infer(inputs: unknown[]): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`http://${server.restAddress}/v2/models/digits-mlp/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }
  const outputs = (body: Record<string, unknown>): unknown =>
    (body.outputs as { name: string; data: unknown }[]).map((o) => [o.name, o.data]);

  it('scores a request that sends only entity keys on the features the store holds for them', async () => {
    const byKey = await infer([{ name: 'card_id', datatype: 'BYTES', shape: [2], data: ['card-7', 'card-8'] }]);
    assert.equal(byKey.status, 200, JSON.stringify(byKey.body));
    const direct = await infer([{ name: 'input', datatype: 'FP32', shape: [2, 64], data: rows.flat() }]);
    assert.equal(direct.status, 200);
    assert.deepEqual(outputs(byKey.body), outputs(direct.body));
  });

  it('keeps inputs the request sends: the store is read only for missing ones', async () => {
    const both = await infer([
      { name: 'card_id', datatype: 'BYTES', shape: [1], data: ['card-7'] },
      { name: 'input', datatype: 'FP32', shape: [1, 64], data: rows[1] },
    ]);
    const direct = await infer([{ name: 'input', datatype: 'FP32', shape: [1, 64], data: rows[1] }]);
    assert.deepEqual(outputs(both.body), outputs(direct.body));
  });

  it('answers 404 naming the entity the store has no features for, 400 for a stored value that is not a number', async () => {
    const missing = await infer([{ name: 'card_id', datatype: 'BYTES', shape: [1], data: ['card-404'] }]);
    assert.equal(missing.status, 404);
    assert.match(String(missing.body.error), /no features for entity "card-404"/);
    const bad = await infer([{ name: 'card_id', datatype: 'BYTES', shape: [1], data: ['card-9'] }]);
    assert.equal(bad.status, 400);
    assert.match(String(bad.body.error), /has no number "f0"/);
  });

  it('answers 400 when neither the inputs nor the entity key are sent', async () => {
    const none = await infer([{ name: 'other', datatype: 'FP32', shape: [1], data: [1] }]);
    assert.equal(none.status, 400);
  });

  it('answers 503 while the store restores, so callers retry', async () => {
    const ready = local;
    local = { state: 'restoring', restored: 1, total: 2 };
    try {
      const r = await infer([{ name: 'card_id', datatype: 'BYTES', shape: [1], data: ['card-7'] }]);
      assert.equal(r.status, 503);
      assert.match(String(r.body.error), /restoring/);
    } finally {
      local = ready;
      partitions = 1;
    }
  });
});
