/**
 * The published package: `npm pack` builds dist/ (prepack) and packs it; installed under
 * node_modules — where Node does not strip TypeScript types — the `inflow` command runs and the
 * public entry points load, including what they read at run time (.proto files for gRPC, the
 * onnxruntime worker script). Dependencies are linked from this checkout's node_modules.
 *
 * The README's TypeScript snippets run verbatim twice: in the repository after `npm ci` (whose
 * `prepare` links dist/ to the sources) and in a project that installed the packed package. One
 * file, in this order, because packing rebuilds dist/ under the repository's snippets.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');

/** The fenced ```ts blocks of README.md, in order. */
async function readmeSnippets(): Promise<string[]> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  return [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1] ?? '');
}

/**
 * Runs one snippet as a user would (`node snippet.ts` in `cwd`), without a Kafka cluster (the
 * snippets fall back to the in-process log) and without INFLOW_LOG_LEVEL: a library is silent
 * unless its caller passes a logger, so stderr must hold no log lines. Answers stdout.
 */
async function runSnippet(file: string, cwd: string): Promise<string> {
  const env: NodeJS.ProcessEnv = { ...process.env, ORT_DISABLE_TELEMETRY: '1' };
  delete env.KAFKA_BOOTSTRAP_SERVERS;
  delete env.INFLOW_LOG_LEVEL;
  const { stdout, stderr } = await run(process.execPath, [file], { cwd, env, timeout: 60_000 });
  assert.doesNotMatch(stderr, /^\{.*"level"/m, `${file} logged to stderr: ${stderr}`);
  return stdout;
}

/** What each README snippet prints, in order: the Kafka layer, then the inference core. */
const SNIPPET_OUTPUT = [/orders\/\d@0 o-1 → \{"total": 3\}/, /^digits-mlp v1: label \d$/m];

describe("the README's TypeScript snippets in the repository", () => {
  it('run verbatim after npm ci, importing the package by its name, and exit', async () => {
    const linked = await readFile(join(ROOT, 'dist', 'kafka', 'index.js'), 'utf8').catch(() => '');
    assert.ok(linked, 'dist/ holds the package entry points (npm ci runs scripts/link-dist.ts as its prepare step)');
    const snippets = await readmeSnippets();
    assert.equal(snippets.length, SNIPPET_OUTPUT.length, 'one expected output per ```ts block of README.md');
    // Inside the repository (nearest package.json is inflow's) so `inflow/…` resolves to the package itself.
    await mkdir(join(ROOT, '.cache'), { recursive: true });
    const dir = await mkdtemp(join(ROOT, '.cache', 'readme-snippets-'));
    try {
      for (const [i, snippet] of snippets.entries()) {
        await writeFile(join(dir, `snippet-${i}.ts`), snippet);
        assert.match(await runSnippet(join(dir, `snippet-${i}.ts`), ROOT), SNIPPET_OUTPUT[i] ?? /never/);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the npm package', () => {
  let dir: string;
  let installed: string;
  let wasLinked = false;

  before(async () => {
    wasLinked = (await readFile(join(ROOT, 'dist', 'index.js'), 'utf8').catch(() => '')).includes('link-dist');
    dir = await mkdtemp(join(tmpdir(), 'inflow-package-'));
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
    const [packed] = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
    assert.ok(packed, 'npm pack reported the tarball');
    const paths = packed.files.map((f) => f.path);
    assert.ok(
      paths.includes('dist/cli/main.js') && paths.includes('dist/protocol/inference/grpc_service.proto'),
      'dist/ with its assets is packed',
    );
    assert.deepEqual(
      paths.filter((p) => p.startsWith('src/') || /\.test\.|fixtures\//.test(p)),
      [],
      'no sources, tests or fixtures',
    );
    const modules = join(dir, 'app', 'node_modules');
    installed = join(modules, 'inflow');
    await mkdir(installed, { recursive: true });
    await run('tar', ['-xzf', join(dir, packed.filename), '-C', installed, '--strip-components=1']);
    for (const name of await readdir(join(ROOT, 'node_modules'))) {
      if (name !== '.bin' && name !== 'inflow' && !name.startsWith('.'))
        await symlink(join(ROOT, 'node_modules', name), join(modules, name));
    }
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    // Leave the checkout as npm ci left it: dist/ linked to the sources, not a build that goes stale.
    if (wasLinked) await run(process.execPath, [join(ROOT, 'scripts', 'link-dist.ts')], { cwd: ROOT });
  });

  it('runs every TypeScript snippet of the README verbatim in a project that installed it, and they exit', async () => {
    const snippets = await readmeSnippets();
    for (const [i, snippet] of snippets.entries()) {
      const file = join(dir, 'app', `snippet-${i}.ts`);
      await writeFile(file, snippet);
      assert.match(await runSnippet(file, join(dir, 'app')), SNIPPET_OUTPUT[i] ?? /never/);
    }
  });

  it('runs the inflow command from node_modules', async () => {
    const { stdout } = await run(process.execPath, [join(installed, 'bin', 'inflow.js'), '--help']);
    assert.match(stdout, /^inflow — machine-learning models in Apache Kafka applications/);
  });

  it('serves a model of its own repository over REST and gRPC from the compiled entry points', async () => {
    const app = join(dir, 'app', 'probe.mjs');
    await writeFile(
      app,
      `import { startModelServer } from 'inflow/server';
import { loadServable } from 'inflow/runtime';
import { createRemoteInferencer } from 'inflow/client';
import { createTensor } from 'inflow/tensor';
import { join } from 'node:path';
const repo = join(import.meta.dirname, 'node_modules', 'inflow', 'models', 'repository');
const server = await startModelServer({ modelRepository: repo, load: loadServable, rest: { host: '127.0.0.1', port: 0 }, grpc: { host: '127.0.0.1', port: 0 }, watch: false });
const remote = createRemoteInferencer({ protocol: 'oip-grpc', url: server.grpcAddress });
const out = await remote.infer({ model: 'digits-mlp', inputs: { input: createTensor('FP32', [1, 64], new Float32Array(64)) } });
const ready = await fetch(\`http://\${server.restAddress}/v2/health/ready\`);
console.log(JSON.stringify({ ready: ready.status, outputs: Object.keys(out.outputs).sort() }));
await remote.close();
await server.close();
`,
    );
    const { stdout } = await run(process.execPath, [app], { env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' } });
    assert.deepEqual(JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}'), { ready: 200, outputs: ['label', 'probabilities'] });
  });
});
