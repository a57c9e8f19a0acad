/**
 * The folders of src/ are layers (docs/architecture.md); imports only go down. This test reads every
 * module's imports and fails on one that goes up, and on a Kafka client library imported
 * outside src/kafka.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = dirname(fileURLToPath(import.meta.url));

/** Lowest first. `errors.ts` is the floor; `config` may throw its errors. */
export const LAYERS = [
  'errors.ts',
  'config',
  'observability',
  'protocol',
  'tensor',
  'runtime',
  'repository',
  'serving',
  'kafka',
  'delivery',
  'client',
  'streams',
  'monitoring',
  'server',
  'edge',
  'cli',
] as const;

/**
 * The folders of src/streams are layers too, lowest first: state stores (engines, changelog
 * records; no topology), the API users build topologies with, the runtime that executes them, the test driver over the runtime, and YAML pipelines over all.
 * Files directly in src/streams (the package entry) may import any of them; tests anywhere may
 * import the test driver.
 */
export const STREAMS_LAYERS = ['state', 'api', 'runtime', 'testing', 'pipeline'] as const;

/** Streams sub-layer rank of a file, or undefined outside src/streams' folders. */
function streamsRank(file: string): number | undefined {
  const parts = relative(SRC, file).split(/[\\/]/);
  if (parts[0] !== 'streams' || parts.length < 3) return undefined;
  const i = STREAMS_LAYERS.indexOf(parts[1] as (typeof STREAMS_LAYERS)[number]);
  if (i < 0) throw new Error(`src/streams/${parts[1]} is not a streams layer; add it to STREAMS_LAYERS on purpose`);
  return i;
}

const KAFKA_LIBRARIES = ['@platformatic/kafka', '@confluentinc/kafka-javascript', 'kafkajs'];

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : /\.ts$/.test(e.name) ? [join(dir, e.name)] : [],
  );
}

/** Layer rank of a file under src/, or undefined for the package entry (src/index.ts). */
function rank(file: string): number | undefined {
  let top = relative(SRC, file).split(/[\\/]/)[0] ?? '';
  if (top === 'index.ts' || top === 'layers.test.ts') return undefined;
  if (top === 'errors.test.ts') top = 'errors.ts';
  const i = LAYERS.indexOf(top as (typeof LAYERS)[number]);
  if (i < 0) throw new Error(`src/${top} is not a layer of docs/architecture.md; add it to LAYERS on purpose`);
  return i;
}

/** Test-only modules (each left out of the package by a `files` pattern in package.json). */
const TEST_ONLY_EXCLUDES = ['!dist/**/*.test.*', '!dist/**/fixtures/**', '!dist/**/*.fixture.*', '!dist/server/grpc/grpc-test-client.*'];
/** Node's test modules: only tests and their helpers import them. */
const TEST_MODULES = new Set(['node:assert', 'node:assert/strict', 'node:test', 'assert', 'assert/strict']);

/** Whether a path relative to src/ is test-only (see TEST_ONLY_EXCLUDES). */
function testOnly(path: string): boolean {
  const p = path.split(/[\\/]/).join('/');
  return (
    /\.test\.[^/]*$/.test(p) || /(^|\/)fixtures\//.test(p) || /\.fixture\.[^/]*$/.test(p) || /^server\/grpc\/grpc-test-client\./.test(p)
  );
}

const importPattern = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(importPattern)].map((m) => m[1] ?? m[2] ?? '');
}

describe('layering', () => {
  it('every module imports only its own layer or the ones below', () => {
    const violations: string[] = [];
    for (const file of files(SRC).filter((f) => !f.endsWith('layers.test.ts'))) {
      const from = rank(file);
      for (const spec of imports(file)) {
        if (!spec.startsWith('.')) continue;
        const target = resolve(dirname(file), spec);
        if (relative(SRC, target).startsWith('..')) {
          violations.push(`${relative(SRC, file)} imports ${spec}, outside src/`);
          continue;
        }
        if (relative(SRC, target) === 'index.ts') {
          violations.push(`${relative(SRC, file)} imports the package entry src/index.ts`);
          continue;
        }
        const to = rank(target);
        if (from !== undefined && to !== undefined && to > from) {
          violations.push(`${relative(SRC, file)} (${LAYERS[from]}) imports ${relative(SRC, target)} (${LAYERS[to]}), a higher layer`);
        }
        const sFrom = streamsRank(file);
        const sTo = streamsRank(target);
        // Tests beside the code may use the test driver and its fixtures.
        const testUsesDriver = file.endsWith('.test.ts') && STREAMS_LAYERS[sTo ?? 0] === 'testing';
        if (sFrom !== undefined && sTo !== undefined && sTo > sFrom && !testUsesDriver) {
          violations.push(
            `${relative(SRC, file)} (streams/${STREAMS_LAYERS[sFrom]}) imports ${relative(SRC, target)} (streams/${STREAMS_LAYERS[sTo]}), a higher streams layer`,
          );
        }
      }
    }
    assert.deepEqual(violations, []);
  });

  it('only src/kafka imports a Kafka client library', () => {
    const violations = files(SRC)
      .filter((f) => !relative(SRC, f).startsWith('kafka'))
      .flatMap((f) =>
        imports(f)
          .filter((s) => KAFKA_LIBRARIES.some((l) => s === l || s.startsWith(`${l}/`)))
          .map((s) => `${relative(SRC, f)} → ${s}`),
      );
    assert.deepEqual(violations, []);
  });

  it('no module that ships imports node:assert, node:test or a test-only module', () => {
    const violations: string[] = [];
    for (const file of files(SRC).filter((f) => !testOnly(relative(SRC, f)))) {
      for (const spec of imports(file)) {
        const target = spec.startsWith('.') ? relative(SRC, resolve(dirname(file), spec)) : undefined;
        if (TEST_MODULES.has(spec) || (target !== undefined && testOnly(target))) violations.push(`${relative(SRC, file)} → ${spec}`);
      }
    }
    assert.deepEqual(violations, [], 'move the helper into a fixtures/ folder (not packed) and import it from tests only');
  });

  it("keeps the test-only patterns in step with what package.json's files leave out of the package", () => {
    const pkg = JSON.parse(readFileSync(join(SRC, '..', 'package.json'), 'utf8')) as { files: string[] };
    for (const excluded of TEST_ONLY_EXCLUDES) assert.ok(pkg.files.includes(excluded), `package.json files lists ${excluded}`);
  });

  it('detects an upward import (the check itself can fail)', () => {
    const sample = "import { x } from '../cli/main.ts';\nexport { y } from './z.ts';\nconst m = await import('../server/a.ts');";
    const found = [...sample.matchAll(importPattern)].map((m) => m[1] ?? m[2]);
    assert.deepEqual(found, ['../cli/main.ts', './z.ts', '../server/a.ts']);
    assert.ok((rank(join(SRC, 'cli', 'main.ts')) ?? -1) > (rank(join(SRC, 'kafka', 'types.ts')) ?? 99));
    assert.ok((streamsRank(join(SRC, 'streams', 'testing', 'a.ts')) ?? -1) > (streamsRank(join(SRC, 'streams', 'runtime', 'b.ts')) ?? 99));
    assert.equal(streamsRank(join(SRC, 'streams', 'index.ts')), undefined);
    assert.ok(testOnly('monitoring/fixtures/accuracy-golden.ts') && testOnly('streams/testing/faulty-client.fixture.ts'));
    assert.ok(!testOnly('monitoring/label-join.ts') && !testOnly('streams/testing/test-driver.ts'));
  });
});
