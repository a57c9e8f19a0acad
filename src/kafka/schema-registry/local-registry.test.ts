import assert from 'node:assert/strict';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { APICURIO_VERSION, ensureRegistryApp } from './local-registry.ts';

describe('local Schema Registry launcher', () => {
  it('says Maven is needed, or SCHEMA_REGISTRY_URL, when mvn is missing', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'inflow-registry-cache-'));
    await assert.rejects(ensureRegistryApp({ cacheDir, mvn: join(cacheDir, 'no-such-mvn') }), {
      code: 'DOWNLOAD_FAILED',
      message: /Maven \(mvn\) is needed to fetch Apicurio Registry.*SCHEMA_REGISTRY_URL/,
    });
  });

  it('uses a completed cache folder without running Maven again', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'inflow-registry-cache-'));
    const dir = join(cacheDir, `apicurio-registry-${APICURIO_VERSION}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, '.complete'), 'done\n');
    let fetched = false;
    const got = await ensureRegistryApp({ cacheDir, mvn: join(cacheDir, 'no-such-mvn'), onFetch: () => (fetched = true) });
    assert.equal(got, dir);
    assert.equal(fetched, false);
  });

  it('redoes a fetch that never completed (no marker) instead of using a half-unpacked folder', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'inflow-registry-cache-'));
    const dir = join(cacheDir, `apicurio-registry-${APICURIO_VERSION}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `apicurio-registry-app-${APICURIO_VERSION}-runner.jar`), 'half');
    let fetched = false;
    await assert.rejects(ensureRegistryApp({ cacheDir, mvn: join(cacheDir, 'no-such-mvn'), onFetch: () => (fetched = true) }), {
      code: 'DOWNLOAD_FAILED',
    });
    assert.equal(fetched, true);
  });
});
