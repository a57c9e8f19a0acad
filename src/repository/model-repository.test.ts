import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { InflowError } from '../errors.ts';
import type { Servable, ServableContext } from '../runtime/servable.ts';
import { createTensor } from '../tensor/tensor.ts';
import { createModelRepository, type LoadedVersion } from './model-repository.ts';

/** A fake platform: `weights.txt` holds a number k; the servable answers y = k·x. "broken" in it fails the load. */
function fakeLoader(log: string[]) {
  return async (platform: string, ctx: ServableContext): Promise<Servable> => {
    const { readFile } = await import('node:fs/promises');
    const text = (await readFile(join(ctx.dir, 'weights.txt'), 'utf8')).trim();
    if (text === 'broken') throw new InflowError('FAILED_PRECONDITION', `${join(ctx.dir, 'weights.txt')}: not a number`);
    const k = Number(text);
    log.push(`load ${ctx.model}/${ctx.version}=${k} (${platform})`);
    let closed = false;
    return {
      signature: { inputs: [{ name: 'x', dtype: 'FP32', shape: [-1, 1] }], outputs: [{ name: 'y', dtype: 'FP32', shape: [-1, 1] }] },
      async run(inputs) {
        if (closed) throw new InflowError('UNAVAILABLE', 'closed');
        if (text === 'warmup-fails') throw new InflowError('INTERNAL', 'model crashed');
        const x = inputs.x?.data as Float32Array;
        return {
          y: createTensor(
            'FP32',
            [x.length, 1],
            x.map((v) => v * k),
          ),
        };
      },
      async close() {
        closed = true;
        log.push(`close ${ctx.model}/${ctx.version}=${k}`);
      },
    };
  };
}

async function repo(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'inflow-repo-'));
  await writeFiles(root, files);
  return root;
}

async function writeFiles(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), text);
  }
}

const CONFIG = 'platform: module\nversionPolicy: { latest: 1 }\n';

async function predict(loaded: LoadedVersion | undefined, x: number): Promise<number | undefined> {
  const out = await loaded?.servable.run({ x: createTensor('FP32', [1, 1], new Float32Array([x])) });
  return (out?.y?.data as Float32Array | undefined)?.[0];
}

describe('model repository', () => {
  it('loads the latest version and swaps in a newer one before unloading the old', async () => {
    const log: string[] = [];
    const root = await repo({ 'm/config.yaml': CONFIG, 'm/1/weights.txt': '2' });
    const unloaded: number[] = [];
    const r = createModelRepository({ root, load: fakeLoader(log), settleMs: 0, beforeUnload: async (v) => void unloaded.push(v.version) });
    await r.refresh();
    assert.deepEqual(r.available('m'), [1]);
    assert.equal(await predict(r.get('m', 1), 3), 6);

    const seen: number[][] = [];
    r.onChange(() => seen.push(r.available('m')));
    await writeFiles(root, { 'm/2/weights.txt': '10' });
    await r.refresh();
    assert.deepEqual(r.available('m'), [2]);
    assert.equal(await predict(r.get('m', 2), 3), 30);
    assert.ok(
      seen.some((a) => a.includes(1) && a.includes(2)),
      'both versions were available at the switch: no gap',
    );
    assert.deepEqual(unloaded, [1]);
    assert.deepEqual(log, ['load m/1=2 (module)', 'load m/2=10 (module)', 'close m/1=2']);
    await r.close();
  });

  it('keeps serving the good version when a new one fails, shows the error, and retries when its files change', async () => {
    const log: string[] = [];
    const root = await repo({ 'm/config.yaml': CONFIG, 'm/1/weights.txt': '2', 'm/2/weights.txt': 'broken' });
    const r = createModelRepository({ root, load: fakeLoader(log), settleMs: 0 });
    await r.refresh();
    assert.deepEqual(r.available('m'), [1]);
    const status = r.status('m');
    assert.deepEqual(
      status?.versions.map((v) => [v.version, v.state]),
      [
        [1, 'AVAILABLE'],
        [2, 'END'],
      ],
    );
    assert.match(status?.versions[1]?.error?.message ?? '', /not a number/);

    await r.refresh(); // same broken files: not retried
    assert.equal(log.filter((l) => l.startsWith('load m/2')).length, 0);
    await writeFiles(root, { 'm/2/weights.txt': '5' });
    await r.refresh();
    assert.deepEqual(r.available('m'), [2]);
    assert.equal(r.status('m')?.versions.find((v) => v.version === 2)?.error, undefined);
    await r.close();
  });

  it('refuses a version whose warm-up fails', async () => {
    const root = await repo({ 'm/config.yaml': CONFIG, 'm/1/weights.txt': '2', 'm/2/weights.txt': 'warmup-fails' });
    const r = createModelRepository({ root, load: fakeLoader([]), settleMs: 0 });
    await r.refresh();
    assert.deepEqual(r.available('m'), [1]);
    assert.match(
      r.status('m')?.versions.find((v) => v.version === 2)?.error?.message ?? '',
      /warm-up of m version 2 failed: model crashed/,
    );
    await r.close();
  });

  it('keeps the last good config when config.yaml gets a typo, and reports it', async () => {
    const root = await repo({ 'm/config.yaml': CONFIG, 'm/1/weights.txt': '2' });
    const r = createModelRepository({ root, load: fakeLoader([]), settleMs: 0 });
    await r.refresh();
    await writeFiles(root, { 'm/config.yaml': 'platform: module\nversionPolicy: { lastest: 2 }\n' });
    await r.refresh();
    assert.deepEqual(r.available('m'), [1]);
    assert.match(r.status('m')?.configError?.message ?? '', /m\/config\.yaml[\s\S]*versionPolicy/);
    await r.close();
  });

  it('applies labels-independent policies: all and specific', async () => {
    const root = await repo({
      'a/config.yaml': 'platform: module\nversionPolicy: { all: true }\n',
      'a/1/weights.txt': '1',
      'a/2/weights.txt': '2',
      'b/config.yaml': 'platform: module\nversionPolicy: { specific: [1] }\n',
      'b/1/weights.txt': '1',
      'b/2/weights.txt': '2',
    });
    const r = createModelRepository({ root, load: fakeLoader([]), settleMs: 0 });
    await r.refresh();
    assert.deepEqual([r.available('a'), r.available('b')], [[1, 2], [1]]);
    await r.close();
  });

  it('does not load a version still being written, then loads it once settled', async () => {
    let clock = Date.now();
    const root = await repo({ 'm/config.yaml': CONFIG, 'm/1/weights.txt': '2' });
    const r = createModelRepository({ root, load: fakeLoader([]), settleMs: 60_000, now: () => clock });
    await r.refresh();
    assert.deepEqual(r.available('m'), []);
    clock += 61_000;
    await r.refresh();
    assert.deepEqual(r.available('m'), [1]);
    await r.close();
  });

  it('loads a fresh version at once when it carries the completion marker of a whole-folder install', async () => {
    const root = await repo({ 'm/config.yaml': CONFIG, 'm/1/weights.txt': '2', 'm/1/.inflow-complete': 'm 1 publish-1\n' });
    const r = createModelRepository({ root, load: fakeLoader([]), settleMs: 60_000 });
    await r.refresh();
    assert.deepEqual(r.available('m'), [1]);
    await r.close();
  });

  it('unloads versions and models removed from disk, and ignores unsafe folder names', async () => {
    const log: string[] = [];
    const root = await repo({
      'm/config.yaml': CONFIG,
      'm/1/weights.txt': '2',
      '.hidden/1/weights.txt': '1',
      'bad name/config.yaml': CONFIG,
    });
    const r = createModelRepository({ root, load: fakeLoader(log), settleMs: 0 });
    await r.refresh();
    assert.deepEqual(r.models(), ['m']);
    await rm(join(root, 'm'), { recursive: true });
    await r.refresh();
    assert.deepEqual(r.models(), []);
    assert.deepEqual(log, ['load m/1=2 (module)', 'close m/1=2']);
  });

  it('coalesces concurrent refreshes into one run after the current', async () => {
    const log: string[] = [];
    const root = await repo({ 'm/config.yaml': CONFIG, 'm/1/weights.txt': '2' });
    const r = createModelRepository({ root, load: fakeLoader(log), settleMs: 0 });
    await Promise.all([r.refresh(), r.refresh(), r.refresh()]);
    assert.deepEqual(log, ['load m/1=2 (module)']);
    await r.close();
  });
});

describe('model repository warm-up samples', () => {
  it('warms up with the request file named in config.yaml, and fails the version when the file is bad', async () => {
    const seen: number[] = [];
    const root = await repo({
      'm/config.yaml': 'platform: module\nwarmup: { samples: warmup.json, runs: 2 }\n',
      'm/warmup.json': JSON.stringify({ inputs: [{ name: 'x', shape: [1, 1], datatype: 'FP32', data: [7] }] }),
      'm/1/weights.txt': '2',
    });
    const load = fakeLoader([]);
    const r = createModelRepository({
      root,
      settleMs: 0,
      load: async (platform, ctx) => {
        const servable = await load(platform, ctx);
        return { ...servable, run: async (inputs) => (seen.push((inputs.x?.data as Float32Array)[0] as number), servable.run(inputs)) };
      },
    });
    await r.refresh();
    assert.deepEqual(seen, [7, 7]);
    assert.deepEqual(r.available('m'), [1]);
    await writeFiles(root, { 'm/warmup.json': '{"inputs": [{"name": "x"', 'm/2/weights.txt': '3' });
    await r.refresh();
    assert.deepEqual(r.available('m'), [1], 'a version whose warm-up file is broken does not replace the serving one');
    assert.match(r.status('m')?.versions.find((v) => v.version === 2)?.error?.message ?? '', /warm-up samples .*warmup\.json/);
    await r.close();
  });

  it('moves a label when config.yaml changes, without reloading versions', async () => {
    const log: string[] = [];
    const root = await repo({
      'm/config.yaml': 'platform: module\nversionPolicy: { all: true }\nlabels: { stable: 1 }\n',
      'm/1/weights.txt': '1',
      'm/2/weights.txt': '2',
    });
    const r = createModelRepository({ root, load: fakeLoader(log), settleMs: 0 });
    await r.refresh();
    await writeFiles(root, { 'm/config.yaml': 'platform: module\nversionPolicy: { all: true }\nlabels: { stable: 2 }\n' });
    await r.refresh();
    assert.deepEqual(r.config('m')?.labels, { stable: 2 });
    assert.equal(log.filter((l) => l.startsWith('load')).length, 2, 'no version was reloaded for a label move');
    await r.close();
  });
});

describe('model repository settle retry', () => {
  it('loads a version that was still being written at start-up once it settles, without a watcher', async () => {
    const root = await repo({ 'm/config.yaml': CONFIG, 'm/1/weights.txt': '2' });
    // The file looks written 1 s from now, so the first scan surely finds it unsettled.
    const future = new Date(Date.now() + 1000);
    await utimes(join(root, 'm/1/weights.txt'), future, future);
    const r = createModelRepository({ root, load: fakeLoader([]), settleMs: 100 });
    const loaded = new Promise<void>((resolve) => r.onChange(() => r.available('m').length > 0 && resolve()));
    await r.refresh();
    assert.deepEqual(r.available('m'), [], 'too fresh at the first look');
    await loaded;
    assert.deepEqual(r.available('m'), [1]);
    await r.close();
  });
});

describe('model repository explicit model control', () => {
  it('unloads a model on request, keeps it unloaded across refreshes, and loads it again', async () => {
    const log: string[] = [];
    const root = await repo({ 'm/config.yaml': CONFIG, 'm/1/weights.txt': '2' });
    const r = createModelRepository({ root, load: fakeLoader(log), settleMs: 0 });
    await r.refresh();
    await r.unload('m');
    assert.deepEqual([r.available('m'), r.unloaded()], [[], ['m']]);
    await r.refresh();
    assert.deepEqual(r.available('m'), [], 'a refresh does not bring it back');
    await r.load('m');
    assert.deepEqual([r.available('m'), r.unloaded()], [[1], []]);
    assert.deepEqual(log, ['load m/1=2 (module)', 'close m/1=2', 'load m/1=2 (module)']);
    await assert.rejects(r.load('nope'), { code: 'NOT_FOUND' });
    await assert.rejects(r.unload('nope'), { code: 'NOT_FOUND' });
    await r.close();
  });

  it('loads only the models it is told to and refuses to load another one on request', async () => {
    const log: string[] = [];
    const root = await repo({
      'a/config.yaml': CONFIG,
      'a/1/weights.txt': '2',
      'b/config.yaml': CONFIG,
      'b/1/weights.txt': '3',
    });
    const r = createModelRepository({ root, load: fakeLoader(log), settleMs: 0, now: () => Date.now() + 60_000, models: ['b', 'c'] });
    try {
      await r.refresh();
      assert.deepEqual(r.models(), ['b']);
      assert.deepEqual(log, ['load b/1=3 (module)']);
      assert.equal(await predict(r.get('b', 1), 2), 6);
      await assert.rejects(r.load('a'), { code: 'NOT_FOUND' });
      assert.deepEqual(r.models(), ['b']);
    } finally {
      await r.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});
