/**
 * The dashboard in a real browser (headless Chromium through playwright-core): the page loads
 * without console errors, its charts update under load, a split change made on the page takes
 * effect in the server's router (and requests route accordingly), and a screenshot is saved.
 * Needs Debian's chromium at /usr/bin/chromium: skipped without it, except under CI=true.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { demoRepository } from '../src/cli/demo-setup.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { loadServable, setRuntimeLogger } from '../src/runtime/index.ts';
import { type RunningModelServer, startModelServer } from '../src/server/model-server.ts';
import { createStreamsMetrics } from '../src/streams/index.ts';

const CHROMIUM = '/usr/bin/chromium';
const missing = !existsSync(CHROMIUM);
if (missing && process.env.CI === 'true')
  throw new Error(`${CHROMIUM} is missing: the dashboard test needs Debian's chromium (apt-get install -y chromium)`);

const TOKEN = 'dashboard-test-admin-token';
const PIXELS = [
  0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11,
  0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0,
];

/** One OIP REST inference with a routing key; answers the version that served it. */
async function infer(url: string, key: string): Promise<number> {
  const res = await fetch(`${url}/v2/models/digits-mlp/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-routing-key': key },
    body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], data: PIXELS }] }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return Number(((await res.json()) as { model_version: string }).model_version);
}

describe('dashboard in headless Chromium', { skip: missing && `no ${CHROMIUM}: apt-get install -y chromium` }, () => {
  let repo: { root: string; remove(): Promise<void> } | undefined;
  let server: RunningModelServer | undefined;
  let browser: Browser | undefined;
  let url = '';
  // A pipeline's metrics as the demo passes them (a runner's registry), moved by the test's load.
  const pipeline = createStreamsMetrics();

  before(async () => {
    setRuntimeLogger(silentLogger);
    repo = await demoRepository();
    server = await startModelServer({
      modelRepository: repo.root,
      load: loadServable,
      watch: false,
      grpc: false,
      rest: {
        host: '127.0.0.1',
        port: 0,
        admin: { token: TOKEN },
        dashboard: {
          title: 'test',
          historyIntervalMs: 100,
          pipelines: () => [{ name: 'scorer', registry: pipeline.registry, status: () => ({ state: 'running', inFlight: 0 }) }],
        },
      },
    });
    url = `http://${server.restAddress ?? ''}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await repo?.remove();
  });

  it('loads without console errors, charts live load, and applies a split made on the page', async () => {
    const page: Page = await (browser as Browser).newPage({ viewport: { width: 1280, height: 1100 } });
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => void problems.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => void problems.push(`request failed: ${r.url()}`));

    // Load: a bounded stream of keyed requests while the page watches (stopped below).
    let stop = false;
    let sent = 0;
    const load = (async () => {
      while (!stop && sent < 20_000) {
        await Promise.all(Array.from({ length: 4 }, (_, i) => infer(url, `user-${sent + i}`)));
        sent += 4;
        pipeline.recordsIn.inc({ pipeline: 'scorer' }, 4);
        pipeline.recordsOut.inc({ pipeline: 'scorer', topic: 'out' }, 4);
        pipeline.batchSize.observe({ pipeline: 'scorer', node: 'predict' }, 4);
        pipeline.endToEnd.observe({ pipeline: 'scorer' }, 0.003);
        pipeline.consumerLag.set({ pipeline: 'scorer', topic: 'in', partition: '0' }, sent % 50);
      }
    })();
    try {
      await page.goto(`${url}/dashboard?refresh=250#admin=${TOKEN}`);
      assert.equal(new URL(page.url()).pathname, '/dashboard/', 'redirected to the page with a trailing slash');
      // Charts update: several refreshes with traffic seen on the server and in the pipeline.
      await page.waitForFunction(
        () => {
          type Last = { throughput: Record<string, number>; shadow: { agreement: number | null } };
          const d = (globalThis as unknown as { __dashboard?: { updates: number; last: Last | null } }).__dashboard;
          return (
            d !== undefined &&
            d.updates >= 4 &&
            (d.last?.throughput['server req'] ?? 0) > 0 &&
            (d.last?.throughput['scorer in'] ?? 0) > 0 &&
            d.last?.shadow.agreement != null
          );
        },
        undefined,
        { timeout: 20_000 },
      );
      const last = await page.evaluate(
        () => (globalThis as unknown as { __dashboard: { last: Record<string, Record<string, number | null>> } }).__dashboard.last,
      );
      assert.ok((last.latency?.['server p50'] ?? 0) > 0, `a server latency percentile is charted: ${JSON.stringify(last.latency)}`);
      assert.ok((last.batch?.server ?? 0) >= 1, 'a server batch size is charted');
      assert.equal(last.shadow?.agreement, 100, 'the shadow (a copy of version 1) agrees with every answer it was compared with');
      assert.ok(
        Object.keys(last.versions ?? {}).some((k) => k.startsWith('digits-mlp v')),
        'traffic by version is charted',
      );
      assert.equal((await page.locator('#chart-throughput canvas').count()) > 0, true, 'uPlot drew the throughput chart');
      const row = page.locator('tr[data-model="digits-mlp"]');
      assert.match((await row.textContent()) ?? '', /v1 AVAILABLE.*v2 AVAILABLE/);
      assert.match((await row.textContent()) ?? '', /v1 90 \/ v2 10 · shadow v2 10 %/);
      assert.match((await page.locator('tr[data-pipeline="scorer"]').textContent()) ?? '', /running/);

      // The split, edited on the page: every request to version 2.
      await row.locator('input[data-version="1"]').fill('0');
      await row.locator('input[data-version="2"]').fill('100');
      await row.locator('select.shadow-version').selectOption('');
      await row.locator('button.apply').click();
      await page
        .locator('tr[data-model="digits-mlp"] .msg.ok')
        .waitFor({ timeout: 5000 })
        .catch(() => undefined);
      const state = server?.inference.router.state('digits-mlp');
      assert.deepEqual(state?.split, [{ version: 2, weight: 100 }], 'the router took the split from the page');
      assert.equal(state?.shadow, undefined, 'the shadow was removed on the page');
      const versions = await Promise.all(Array.from({ length: 40 }, (_, i) => infer(url, `after-${i}`)));
      assert.deepEqual(new Set(versions), new Set([2]), 'requests route by the new split');
      // A string: it runs in the page, where `document` exists (this file is typed for Node).
      await page.waitForFunction(`document.querySelector('tr[data-model="digits-mlp"] .current')?.textContent === 'v2 100'`, undefined, {
        timeout: 5000,
      });

      const shot = join(process.env.TMPDIR ?? tmpdir(), `inflow-dashboard-${Date.now()}.png`);
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`dashboard screenshot: ${shot}`);
      assert.deepEqual(problems, [], 'no console errors, page errors or failed requests');
    } finally {
      stop = true;
      await load;
      await page.close();
    }
  });

  it('charts the last minutes from the server-side history as soon as a page opens: per-model latency, queue vs compute, lag per partition, process', async () => {
    // Traffic before any page is open: only the server's history has seen it.
    for (let i = 0; i < 40; i++) {
      await infer(url, `history-${i}`);
      pipeline.recordsIn.inc({ pipeline: 'scorer' }, 1);
      pipeline.endToEnd.observe({ pipeline: 'scorer' }, 12);
      pipeline.consumerLag.set({ pipeline: 'scorer', topic: 'in', partition: '3' }, 7);
    }
    const history = (await (await fetch(`${url}/dashboard/api/history`)).json()) as unknown[];
    assert.ok(history.length >= 5, `the server kept snapshots (${history.length})`);
    const page: Page = await (browser as Browser).newPage({ viewport: { width: 1280, height: 1600 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => void problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    try {
      // A long refresh: the charts' points come from the history, not from live polling.
      await page.goto(`${url}/dashboard/?refresh=60000`);
      await page.waitForFunction(
        () => ((globalThis as unknown as { __dashboard?: { fromHistory: number } }).__dashboard?.fromHistory ?? 0) >= 4,
        undefined,
        { timeout: 10_000 },
      );
      const d = await page.evaluate(
        () =>
          (globalThis as unknown as { __dashboard: { history: number; last: Record<string, Record<string, number | null>> } }).__dashboard,
      );
      assert.ok(d.history >= 5, 'the page read the history');
      const models = Object.keys(d.last.models ?? {});
      assert.ok(models.includes('digits-mlp p50') && models.includes('digits-mlp p99'), `per-model latency: ${models.join(', ')}`);
      assert.ok(
        Object.keys(d.last.queue ?? {}).some((k) => k.endsWith('queue')) &&
          Object.keys(d.last.queue ?? {}).some((k) => k.endsWith('compute')),
        'queue vs compute per model',
      );
      assert.equal(d.last.lag?.['scorer in[3]'], 7, 'lag per partition');
      assert.ok((d.last.memory?.rss ?? 0) > 0, 'process memory');
      assert.ok('cpu' in (d.last.cpu ?? {}), 'process CPU');
      assert.ok('p99' in (d.last.loop ?? {}), 'event-loop delay');
      for (const id of ['models', 'queue', 'e2e', 'lag', 'cpu', 'memory', 'loop']) {
        assert.equal((await page.locator(`#chart-${id} canvas`).count()) > 0, true, `chart ${id} is drawn`);
      }
      const shot = join(process.env.TMPDIR ?? tmpdir(), `inflow-dashboard-history-${Date.now()}.png`);
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`dashboard screenshot (history): ${shot}`);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });
});
