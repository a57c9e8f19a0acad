import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTensor } from '../tensor/tensor.ts';
import { loadModuleServable } from './module-servable.ts';
import type { ServableContext } from './servable.ts';

const SIGNATURE = `{ inputs: [{ name: 'amount', dtype: 'FP64', shape: [-1] }], outputs: [{ name: 'flag', dtype: 'BOOL', shape: [-1] }] }`;

describe('module servable', () => {
  let root: string;
  let n = 0;
  /** Writes `files` into a fresh version folder and loads it. */
  async function load(
    files: Record<string, string>,
    options: Record<string, unknown> = {},
  ): Promise<ReturnType<typeof loadModuleServable>> {
    const dir = join(root, `v${n++}`);
    await mkdir(dir);
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
    const context: ServableContext = { dir, model: 'rules', version: 1, options };
    return loadModuleServable(context);
  }
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'inflow-module-'));
  });
  after(async () => rm(root, { recursive: true }));

  it('serves a TypeScript module whose default export is the model object', async () => {
    const servable = await load({
      'model.ts': `
        import type { Tensor } from '${new URL('../tensor/tensor.ts', import.meta.url).href}';
        export default {
          signature: ${SIGNATURE},
          run(inputs: Record<string, Tensor>) {
            const amount = inputs.amount!.data as Float64Array;
            return { flag: { dtype: 'BOOL', shape: [amount.length], data: Uint8Array.from(amount, (a) => (a > 1000 ? 1 : 0)) } };
          },
        };`,
    });
    assert.deepEqual(servable.signature.outputs, [{ name: 'flag', dtype: 'BOOL', shape: [-1] }]);
    const { flag } = await servable.run({ amount: createTensor('FP64', [3], new Float64Array([5, 5000, 1000])) });
    assert.deepEqual([...(flag?.data as Uint8Array)], [0, 1, 0]);
    await servable.close();
  });

  it('calls a factory with the version context and closes what it made', async () => {
    const servable = await load(
      {
        'rules.js': `
        export default async (ctx) => {
          const closed = globalThis.__inflowModuleClosed ??= [];
          return {
            signature: ${SIGNATURE},
            run: (inputs) => ({ flag: { dtype: 'BOOL', shape: [...inputs.amount.shape], data: new Uint8Array(inputs.amount.shape[0]).fill(ctx.version) } }),
            close: () => void closed.push(ctx.model),
          };
        };`,
      },
      { file: 'rules.js' },
    );
    const { flag } = await servable.run({ amount: createTensor('FP64', [2], new Float64Array(2)) });
    assert.deepEqual([...(flag?.data as Uint8Array)], [1, 1]);
    await servable.close();
    assert.deepEqual((globalThis as { __inflowModuleClosed?: string[] }).__inflowModuleClosed, ['rules']);
  });

  it('turns a module that returns a wrong output into INTERNAL naming the file, and checks inputs first', async () => {
    const servable = await load({
      'model.js': `export default { signature: ${SIGNATURE}, run: (inputs) => ({ flag: { dtype: 'INT32', shape: [1], data: new Int32Array(1) } }) };`,
    });
    await assert.rejects(servable.run({ amount: createTensor('FP64', [1], new Float64Array(1)) }), {
      code: 'INTERNAL',
      message: /model\.js: output "flag": expected BOOL \[-1\] with 1 rows, got INT32 \[1\]/,
    });
    await assert.rejects(servable.run({ amount: createTensor('FP32', [1], new Float32Array(1)) }), {
      code: 'INVALID_ARGUMENT',
      message: /input "amount": expected FP64/,
    });
  });

  it('fails the load with a clear error naming the file for broken modules', async () => {
    await assert.rejects(load({ 'model.js': 'export default {' }), {
      code: 'FAILED_PRECONDITION',
      message: /model\.js: cannot be imported: SyntaxError/,
    });
    await assert.rejects(load({ 'model.js': 'export const x = 1;' }), {
      code: 'FAILED_PRECONDITION',
      message: /model\.js: default export is missing/,
    });
    await assert.rejects(load({ 'model.js': `export default { signature: ${SIGNATURE} };` }), {
      code: 'FAILED_PRECONDITION',
      message: /model\.js: run is not a function/,
    });
    await assert.rejects(
      load({
        'model.js': `export default { signature: { inputs: [], outputs: [{ name: 'y', dtype: 'FLOAT', shape: [-1] }] }, run() {} };`,
      }),
      {
        code: 'INVALID_CONFIG',
        message: /model\.js \(signature\)[\s\S]*outputs\.0\.dtype/,
      },
    );
    await assert.rejects(load({ 'model.js': `export default () => { throw new Error('no licence'); };` }), {
      code: 'FAILED_PRECONDITION',
      message: /model\.js: its factory failed: no licence/,
    });
    await assert.rejects(load({}), { code: 'INVALID_CONFIG', message: /no module file .*model\.ts, model\.mts, model\.js, model\.mjs/ });
  });
});
