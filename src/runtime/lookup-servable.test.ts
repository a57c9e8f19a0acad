import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTensor, stringTensor, tensorStrings } from '../tensor/tensor.ts';
import { loadLookupServable, parseNpy } from './lookup-servable.ts';
import type { ServableContext } from './servable.ts';

/** Bytes of `np.save(f, np.array(rows, dtype='<f4'))` (format 1.0), built by hand. */
function npy(rows: number[][]): Uint8Array {
  const cols = rows[0]?.length ?? 0;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows.length}, ${cols}), }`;
  header = header.padEnd(64 - 10 - 1, ' ') + '\n';
  const data = new Float32Array(rows.flat());
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer), 10 + header.length);
  return out;
}

describe('lookup servable', () => {
  let dir: string;
  const ctx = (tables: unknown[]): ServableContext => ({ dir, model: 'lk', version: 1, options: { tables } });
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'inflow-lookup-'));
    await writeFile(join(dir, 'vocab.txt'), 'the\ncat\nsät\n');
    await writeFile(join(dir, 'dup.txt'), 'a\nb\na\n');
    await writeFile(
      join(dir, 'emb.json'),
      JSON.stringify([
        [0, 0.5],
        [1, 1.5],
        [2, 2.5],
      ]),
    );
    await writeFile(
      join(dir, 'emb.npy'),
      npy([
        [0, 0.5],
        [1, 1.5],
        [2, 2.5],
      ]),
    );
  });
  after(async () => rm(dir, { recursive: true }));

  it('maps strings to ids over the whole batch, with the default id for unknown strings', async () => {
    const servable = await loadLookupServable(
      ctx([{ kind: 'string-to-id', file: 'vocab.txt', input: 'word', output: 'id', shape: [-1, 2], default: -1 }]),
    );
    assert.deepEqual(servable.signature, {
      inputs: [{ name: 'word', dtype: 'BYTES', shape: [-1, 2] }],
      outputs: [{ name: 'id', dtype: 'INT64', shape: [-1, 2] }],
    });
    const { id } = await servable.run({ word: stringTensor([2, 2], ['cat', 'dog', 'sät', 'the']) });
    assert.deepEqual(id?.shape, [2, 2]);
    assert.deepEqual([...(id?.data as BigInt64Array)], [1n, -1n, 2n, 0n]);
  });

  it('fails a call with an unknown string when the table has no default', async () => {
    const servable = await loadLookupServable(
      ctx([{ kind: 'string-to-id', file: 'vocab.txt', input: 'word', output: 'id', dtype: 'INT32' }]),
    );
    await assert.rejects(servable.run({ word: stringTensor([1], ['dog']) }), {
      code: 'INVALID_ARGUMENT',
      message: /"dog" is not in vocab\.txt/,
    });
    const { id } = await servable.run({ word: stringTensor([1], ['the']) });
    assert.equal(id?.dtype, 'INT32');
  });

  it('maps ids to strings, with the default for ids outside the file', async () => {
    const servable = await loadLookupServable(
      ctx([{ kind: 'id-to-string', file: 'vocab.txt', input: 'id', output: 'word', default: '<unk>' }]),
    );
    const { word } = await servable.run({ id: createTensor('INT64', [4], new BigInt64Array([2n, 0n, 3n, -1n])) });
    assert.deepEqual(tensorStrings(word!), ['sät', 'the', '<unk>', '<unk>']);
  });

  it('looks up embedding vectors from .json and .npy alike, adding the vector dim', async () => {
    for (const file of ['emb.json', 'emb.npy']) {
      const servable = await loadLookupServable(
        ctx([{ kind: 'embedding', file, input: 'id', output: 'vec', dtype: 'INT32', default: 'zeros' }]),
      );
      assert.deepEqual(servable.signature.outputs, [{ name: 'vec', dtype: 'FP32', shape: [-1, 2] }]);
      const { vec } = await servable.run({ id: createTensor('INT32', [3], new Int32Array([2, 7, 0])) });
      assert.deepEqual(vec?.shape, [3, 2]);
      assert.deepEqual([...(vec?.data as Float32Array)], [2, 2.5, 0, 0, 0, 0.5], file);
    }
  });

  it('runs several tables in one call and returns only the outputs asked for', async () => {
    const servable = await loadLookupServable(
      ctx([
        { kind: 'string-to-id', file: 'vocab.txt', input: 'word', output: 'id', default: 0 },
        { kind: 'id-to-string', file: 'vocab.txt', input: 'label', output: 'name' },
      ]),
    );
    const out = await servable.run(
      { word: stringTensor([1], ['cat']), label: createTensor('INT64', [1], new BigInt64Array([1n])) },
      { outputs: ['name'] },
    );
    assert.deepEqual(Object.keys(out), ['name']);
    assert.deepEqual(tensorStrings(out.name!), ['cat']);
  });

  it('fails the load, naming the file, for a missing file, duplicate entries or a malformed table', async () => {
    await assert.rejects(loadLookupServable(ctx([{ kind: 'id-to-string', file: 'none.txt', input: 'a', output: 'b' }])), {
      code: 'INVALID_CONFIG',
      message: /none\.txt cannot be read/,
    });
    await assert.rejects(loadLookupServable(ctx([{ kind: 'string-to-id', file: 'dup.txt', input: 'a', output: 'b' }])), {
      code: 'INVALID_CONFIG',
      message: /dup\.txt: line 3 repeats "a"/,
    });
    await assert.rejects(loadLookupServable(ctx([{ kind: 'embedding', file: 'vocab.txt', input: 'a', output: 'b' }])), {
      code: 'INVALID_CONFIG',
      message: /vocab\.txt is not valid JSON/,
    });
    assert.throws(() => parseNpy(new Uint8Array(20), 'x.npy'), { code: 'INVALID_CONFIG', message: /x\.npy: not a \.npy file/ });
  });
});
