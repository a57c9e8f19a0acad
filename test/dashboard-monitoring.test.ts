/**
 * The dashboard's monitoring panels in a real browser (headless Chromium through playwright-core):
 * live accuracy per model version and drift per version against its threshold are charted from a
 * monitor's metrics (the same gauges and counters the drift and accuracy monitors set), the
 * features past their threshold and the latest alerts are listed, and a dashboard without a
 * monitor shows no monitoring section. Needs Debian's chromium at /usr/bin/chromium: skipped
 * without it, except under CI=true.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { Registry } from 'prom-client';
import { demoRepository } from '../src/cli/demo-setup.ts';
import { createAccuracyMetrics } from '../src/monitoring/accuracy-metrics.ts';
import type { AccuracyReport } from '../src/monitoring/label-join.ts';
import { createMonitoringMetrics } from '../src/monitoring/monitoring-metrics.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { loadServable, setRuntimeLogger } from '../src/runtime/index.ts';
import type { DashboardAlert, DashboardMonitoring } from '../src/server/dashboard/dashboard-monitoring.ts';
import { type RunningModelServer, startModelServer } from '../src/server/model-server.ts';

const CHROMIUM = '/usr/bin/chromium';
const missing = !existsSync(CHROMIUM);
if (missing && process.env.CI === 'true')
  throw new Error(`${CHROMIUM} is missing: the dashboard test needs Debian's chromium (apt-get install -y chromium)`);

/** A closed window's accuracy report for `version`, as the accuracy monitor makes it. */
function report(version: number, accuracy: number): AccuracyReport {
  return {
    kind: 'accuracy-report',
    model: 'digits-mlp',
    version,
    window: { start: 0, end: 10_000 },
    predictions: 100,
    labelled: 100,
    unlabelledShare: 0,
    classification: { accuracy, classes: [], confusion: { labels: [], matrix: [] } },
  };
}

interface Seen {
  monitoring?: { accuracy: Record<string, number>; drift: Record<string, number> };
}

describe('dashboard monitoring panels in headless Chromium', { skip: missing && `no ${CHROMIUM}: apt-get install -y chromium` }, () => {
  let repo: { root: string; remove(): Promise<void> } | undefined;
  let server: RunningModelServer | undefined;
  let browser: Browser | undefined;
  let url = '';
  const registry = new Registry();
  const drift = createMonitoringMetrics(registry);
  const accuracy = createAccuracyMetrics(registry);
  const alerts: DashboardAlert[] = [];
  let monitor: DashboardMonitoring | undefined;

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
        dashboard: { title: 'monitoring test', historyIntervalMs: 100, monitoring: () => monitor },
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

  it('shows no monitoring section without a monitor, then charts accuracy and drift per version, breaches and alerts once one is there', async () => {
    const page: Page = await (browser as Browser).newPage({ viewport: { width: 1280, height: 1400 } });
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => void problems.push(`page error: ${e.message}`));
    try {
      await page.goto(`${url}/dashboard/?refresh=200`);
      await page.waitForFunction(() => ((globalThis as unknown as { __dashboard?: { updates: number } }).__dashboard?.updates ?? 0) >= 2);
      assert.equal(await page.locator('#monitoring-section').isVisible(), false, 'no monitor: no monitoring section');

      // Before the shift: version 1 accurate, nothing drifts.
      monitor = { registry, thresholds: { psi: 0.25, jensenShannon: 0.2 }, alerts: () => alerts };
      accuracy.record(report(1, 0.975));
      drift.driftStatistic.set({ model: 'digits-mlp', version: '1', feature: 'input[39]', statistic: 'psi' }, 0.01);
      await page.waitForFunction(
        () => (globalThis as unknown as { __dashboard: Seen }).__dashboard.monitoring?.accuracy['digits-mlp v1'] === 97.5,
        undefined,
        { timeout: 10_000 },
      );
      assert.equal(await page.locator('#monitoring-section').isVisible(), true);
      assert.match((await page.locator('#breaches').textContent()) ?? '', /no feature past its threshold/);

      // After it: version 1's accuracy drops, a feature drifts past the threshold, alerts are listed.
      accuracy.record(report(1, 0.464));
      accuracy.record(report(3, 0.98));
      drift.driftStatistic.set({ model: 'digits-mlp', version: '1', feature: 'input[39]', statistic: 'psi' }, 4.967);
      drift.driftStatistic.set({ model: 'digits-mlp', version: '1', feature: 'label', statistic: 'jensen_shannon' }, 0.31);
      drift.driftAlerts.inc({ model: 'digits-mlp', version: '1', statistic: 'psi' });
      alerts.push(
        {
          kind: 'drift',
          model: 'digits-mlp',
          version: 1,
          at: new Date().toISOString(),
          text: '96 breaches; largest: input[39] psi 4.97 past 0.25',
        },
        {
          kind: 'rollback',
          model: 'digits-mlp',
          version: 2,
          at: new Date().toISOString(),
          text: 'live-accuracy: live accuracy of version 2 9.72 %',
        },
      );
      await page.waitForFunction(
        () => {
          const m = (globalThis as unknown as { __dashboard: Seen }).__dashboard.monitoring;
          return Math.abs((m?.accuracy['digits-mlp v1'] ?? 0) - 46.4) < 1e-9 && m?.drift['digits-mlp v1 PSI'] === 4.967;
        },
        undefined,
        { timeout: 10_000 },
      );
      const seen = await page.evaluate(() => (globalThis as unknown as { __dashboard: Seen }).__dashboard.monitoring);
      assert.deepEqual(
        Object.entries(seen?.accuracy ?? {}).map(([k, v]) => [k, Math.round(v * 1e6) / 1e6]),
        [
          ['digits-mlp v1', 46.4],
          ['digits-mlp v3', 98],
        ],
      );
      assert.deepEqual(seen?.drift, { 'digits-mlp v1 JS': 0.31, 'JS threshold': 0.2, 'digits-mlp v1 PSI': 4.967, 'PSI threshold': 0.25 });
      for (const id of ['accuracy', 'drift']) assert.equal(await page.locator(`#chart-${id} canvas`).count(), 1, `chart ${id} is drawn`);
      await page.waitForFunction(`document.querySelectorAll('#alerts tbody tr.rollback').length === 1`, undefined, { timeout: 5000 });
      const breaches = (await page.locator('#breaches tbody').textContent()) ?? '';
      assert.match(breaches, /digits-mlp v1\s*input\[39\]\s*psi\s*4\.967\s*0\.25/);
      assert.match(breaches, /label\s*jensen_shannon/);
      const rows = await page.locator('#alerts tbody tr').allTextContents();
      assert.match(rows[0] ?? '', /rollback.*digits-mlp v2.*live-accuracy/, 'newest first');
      assert.match(rows[1] ?? '', /drift.*digits-mlp v1.*input\[39\] psi 4\.97/);

      const shot = join(process.env.TMPDIR ?? tmpdir(), `inflow-dashboard-monitoring-${Date.now()}.png`);
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`dashboard screenshot (monitoring): ${shot}`);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });
});
