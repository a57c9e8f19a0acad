/**
 * The main script of the single executable (Node SEA; build-sea.sh bundles it to CommonJS). A
 * SEA's main script can require only built-in modules and cannot load native addons from memory,
 * so on first start it extracts the bundled agent, onnxruntime-node (with its native addon) and the
 * models next to the executable, then runs the agent from there with the ordinary module loader:
 *
 *   <dir of the executable>/.inflow-edge-<content hash>/  app/edge.js, app/onnx-worker.js, app/node_modules/…
 *   <dir of the executable>/models/                       the model repository (extracted once, never
 *                                                         overwritten: delivered versions are written there)
 *
 * INFLOW_EDGE_HOME moves both. A half-extracted folder is never used: it is written to a temp
 * folder and renamed into place.
 */
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { getAsset, getRawAsset } from 'node:sea';

interface Manifest {
  readonly version: string;
  readonly arch: string;
  /** Of the runtime files: names the folder they are extracted to. */
  readonly hash: string;
  /** Asset keys: `runtime/…` and `models/…` paths. */
  readonly files: readonly string[];
}

interface Boot {
  start(argv: string[], info: { version: string; home: string; models: string }): Promise<number>;
}

const manifest = JSON.parse(getAsset('manifest.json', 'utf8')) as Manifest;
const base = process.env.INFLOW_EDGE_HOME ?? dirname(process.execPath);
const home = join(base, `.inflow-edge-${manifest.hash}`);
const models = join(base, 'models');

function extract(prefix: string, target: string): void {
  const tmp = `${target}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  for (const key of manifest.files) {
    if (!key.startsWith(prefix)) continue;
    const file = join(tmp, key.slice(prefix.length));
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, new Uint8Array(getRawAsset(key)));
  }
  try {
    renameSync(tmp, target);
  } catch (error) {
    // Another process extracted it first: use theirs.
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(target)) throw error;
  }
}

if (!existsSync(home)) extract('runtime/', home);
if (!existsSync(models)) extract('models/', models);
process.env.ORT_DISABLE_TELEMETRY ??= '1';
// A file on disk loaded with the ordinary loader may import() ESM (the SEA main script may not).
const boot = createRequire(join(home, 'app', 'boot.cjs'))('./boot.cjs') as Boot;
boot.start(process.argv.slice(2), { version: manifest.version, home, models }).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`inflow-edge: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
