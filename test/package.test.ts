/**
 * The published package: `npm pack` builds dist/ (prepack) and packs it; installed under
 * node_modules — where Node does not strip TypeScript types — the `inflow` command runs and the
 * public entry points load, including what they read at run time (.proto files for gRPC, the
 * onnxruntime worker script). Dependencies are linked from this checkout's node_modules.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');

describe('the npm package', () => {
  let dir: string;
  let installed: string;

  before(async () => {
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
