import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTensor, stringTensor, type Tensor, tensorStrings } from '../tensor/tensor.ts';
import { murmur3 } from './murmur3.ts';
import type { Servable } from './servable.ts';
import { loadTransformServable } from './transform-servable.ts';

const fp32 = (shape: number[], values: number[]): Tensor => createTensor('FP32', shape, Float32Array.from(values));
const values = (t: Tensor | undefined): number[] => Array.from(t?.data as ArrayLike<number | bigint>, Number);

describe('murmur3', () => {
  it('matches the reference MurmurHash3_x86_32 (values from Python mmh3, unsigned)', () => {
    const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
    assert.equal(murmur3(utf8(''), 0), 0);
    assert.equal(murmur3(utf8(''), 1), 1364076727);
    assert.equal(murmur3(utf8('a')), 1009084850);
    assert.equal(murmur3(utf8('ab')), 2613040991);
    assert.equal(murmur3(utf8('abc')), 3017643002);
    assert.equal(murmur3(utf8('test')), 3127628307);
    assert.equal(murmur3(utf8('Hello, world!'), 0x9747b28c), 612912314);
    assert.equal(murmur3(utf8('héllo wörld'), 42), 857211688);
    assert.equal(murmur3(utf8('The quick brown fox jumps over the lazy dog')), 776992547);
  });
});

describe('transform servable', () => {
  let dir: string;
  let n = 0;
  /** Writes `yaml` as a transform file and loads it. */
  async function load(yaml: string): Promise<Servable> {
    const file = `t${n++}.yaml`;
    await writeFile(join(dir, file), yaml);
    return loadTransformServable({ dir, model: 'tf', version: 1, options: { file } });
  }
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'inflow-transform-'));
  });
  after(async () => rm(dir, { recursive: true }));

  it('standardizes, min-max scales, clips and log1p-s per feature over the batch', async () => {
    const servable = await load(`
inputs: [{ name: x, dtype: FP64, shape: [-1, 2] }]
steps:
  - { op: standardize, input: x, output: z, mean: [1, 10], std: [2, 5] }
  - { op: min-max, input: x, output: m, min: [0, 10], max: [4, 10], range: [-1, 1] }
  - { op: clip, input: z, output: c, max: 1 }
  - { op: log, input: c, output: l }
outputs: [z, m, c, l]
`);
    const x = createTensor('FP64', [2, 2], new Float64Array([3, 20, -1, 0]));
    const out = await servable.run({ x }, { outputs: ['z', 'm', 'c'] });
    assert.deepEqual(values(out.z), [1, 2, -1, -2]);
    assert.deepEqual(values(out.m), [0.5, -1, -1.5, -1]);
    assert.deepEqual(
      values(out.c),
      [1, 1, -1, -2].map((v) => Math.min(v, 1)),
    );
    await assert.rejects(servable.run({ x }), {
      code: 'INVALID_ARGUMENT',
      message: /log of "c" got -1 at element 2; expected values > -1/,
    });
    const ok = await servable.run({ x: createTensor('FP64', [1, 2], new Float64Array([3, 20])) }, { outputs: ['l'] });
    assert.deepEqual(values(ok.l), [Math.fround(Math.log1p(1)), Math.fround(Math.log1p(1))]);
    assert.equal(ok.l?.dtype, 'FP32');
  });

  it('one-hot encodes strings and integers, with zero rows or errors for unknown categories', async () => {
    const servable = await load(`
inputs: [{ name: country, dtype: BYTES, shape: [-1] }, { name: code, dtype: INT64, shape: [-1, 1] }]
steps:
  - { op: one-hot, input: country, output: c1, categories: [DE, US, FR] }
  - { op: one-hot, input: code, output: c2, categories: [7, 9], unknown: error }
outputs: [c1, c2]
`);
    assert.deepEqual(servable.signature.outputs, [
      { name: 'c1', dtype: 'FP32', shape: [-1, 3] },
      { name: 'c2', dtype: 'FP32', shape: [-1, 2] },
    ]);
    const out = await servable.run({
      country: stringTensor([2], ['US', 'XX']),
      code: createTensor('INT64', [2, 1], new BigInt64Array([9n, 7n])),
    });
    assert.deepEqual(values(out.c1), [0, 1, 0, 0, 0, 0]);
    assert.deepEqual(values(out.c2), [0, 1, 1, 0]);
    await assert.rejects(
      servable.run({ country: stringTensor([1], ['DE']), code: createTensor('INT64', [1, 1], new BigInt64Array([8n])) }),
      {
        code: 'INVALID_ARGUMENT',
        message: /one-hot of "code": 8 is not one of its 2 categories/,
      },
    );
  });

  it('bucketizes like TensorFlow (boundary values go up) and hash-buckets strings with murmur3', async () => {
    const servable = await load(`
inputs: [{ name: x, dtype: INT32, shape: [-1] }, { name: s, dtype: BYTES, shape: [-1] }]
steps:
  - { op: bucketize, input: x, output: b, boundaries: [0, 10, 100] }
  - { op: hash-bucket, input: s, output: h, buckets: 10, seed: 42 }
outputs: [b, h]
`);
    const out = await servable.run({
      x: createTensor('INT32', [5], new Int32Array([-5, 0, 5, 10, 150])),
      s: stringTensor([5], ['héllo wörld', 'a', 'b', 'c', 'd']),
    });
    assert.deepEqual(values(out.b), [0, 1, 1, 2, 3]);
    assert.equal(out.h?.dtype, 'INT64');
    assert.deepEqual(values(out.h).slice(0, 2), [857211688 % 10, murmur3(new TextEncoder().encode('a'), 42) % 10]);
  });

  it('selects columns, casts and concatenates inputs into one FP32 vector per row', async () => {
    const servable = await load(`
inputs: [{ name: a, dtype: FP32, shape: [-1, 3] }, { name: b, dtype: INT64, shape: [-1] }, { name: names, dtype: BYTES, shape: [-1, 2] }]
steps:
  - { op: select, input: a, output: a2, columns: [2, 0] }
  - { op: cast, input: a2, output: a2i, to: INT32 }
  - { op: concat, inputs: [a2, b, a2i], output: x }
  - { op: select, input: names, output: second, columns: [1] }
outputs: [x, second]
`);
    assert.deepEqual(servable.signature.outputs[0], { name: 'x', dtype: 'FP32', shape: [-1, 5] });
    const out = await servable.run({
      a: fp32([2, 3], [1, 2, 3.7, 4, 5, -6.5]),
      b: createTensor('INT64', [2], new BigInt64Array([7n, 8n])),
      names: stringTensor([2, 2], ['p', 'q', 'r', 's']),
    });
    assert.deepEqual(out.x?.shape, [2, 5]);
    assert.deepEqual(values(out.x), [Math.fround(3.7), 1, 7, 3, 1, -6.5, 4, 8, -6, 4]);
    assert.deepEqual(tensorStrings(out.second!), ['q', 's']);
  });

  it('rejects inputs whose batch sizes differ', async () => {
    const servable = await load(`
inputs: [{ name: a, dtype: FP32, shape: [-1] }, { name: b, dtype: FP32, shape: [-1] }]
steps: [{ op: concat, inputs: [a, b], output: x }]
`);
    await assert.rejects(servable.run({ a: fp32([2], [1, 2]), b: fp32([3], [1, 2, 3]) }), {
      code: 'INVALID_ARGUMENT',
      message: /"b" has 3 rows, the others 2/,
    });
  });

  it('fails the load with INVALID_CONFIG naming the file and the field', async () => {
    const bad: [string, RegExp][] = [
      [
        'inputs: [{ name: x, dtype: FP32, shape: [-1, 2] }]\nsteps: [{ op: standardize, input: x, output: y, mean: [1, 2, 3], std: 1 }]',
        /steps\.0\.mean: has 3 values; expected one per feature of FP32 \[-1, 2\] \(2\)/,
      ],
      [
        'inputs: [{ name: x, dtype: FP32, shape: [-1, 2] }]\nsteps: [{ op: clip, input: nope, output: y, min: 0 }]',
        /steps\.0\.input: "nope" is neither an input nor the output of an earlier step/,
      ],
      [
        'inputs: [{ name: x, dtype: FP32, shape: [-1, 2] }]\nsteps: [{ op: log, input: x, output: y, base: 10 }]',
        /steps\.0: unknown key "base"/,
      ],
      [
        'inputs: [{ name: x, dtype: FP32, shape: [-1, 2] }]\nsteps: [{ op: standardize, input: x, output: y, mean: 0, std: 0 }]',
        /steps\.0\.std: must be > 0/,
      ],
      [
        'inputs: [{ name: x, dtype: FP32, shape: [-1] }]\nsteps: [{ op: bucketize, input: x, output: y, boundaries: [3, 1] }]',
        /steps\.0\.boundaries: must be strictly ascending/,
      ],
      [
        'inputs: [{ name: x, dtype: FP32, shape: [-1] }]\nsteps: [{ op: hash-bucket, input: x, output: y, buckets: 3 }]',
        /steps\.0\.input: "x" is FP32 \[-1\]; expected BYTES/,
      ],
      [
        'inputs: [{ name: x, dtype: FP32, shape: [-1] }]\nsteps: [{ op: log, input: x, output: x }]',
        /steps\.0\.output: "x" is already defined/,
      ],
      [
        'inputs: [{ name: x, dtype: FP32, shape: [-1] }]\nsteps: [{ op: log, input: x, output: y }]\noutputs: [z]',
        /outputs\.0: "z" is not defined/,
      ],
    ];
    for (const [yaml, message] of bad) {
      await assert.rejects(load(yaml), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'INVALID_CONFIG');
        assert.match(error.message, /t\d+\.yaml/);
        assert.match(error.message, message);
        return true;
      });
    }
    await assert.rejects(loadTransformServable({ dir, model: 'tf', version: 1, options: {} }), {
      code: 'INVALID_CONFIG',
      message: /transform\.yaml does not exist/,
    });
  });
});
