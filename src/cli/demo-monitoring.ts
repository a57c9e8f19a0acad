/**
 * `inflow demo --scene monitoring`: model monitoring and a guarded rollout, live. A stream of
 * labelled digits (the bundled held-out rows, replayed in a loop) is scored by a pipeline with
 * digits-mlp embedded, following the models topic and writing a prediction log; the labels arrive
 * later on their own topic. The live-accuracy monitor and the drift monitor (src/monitoring) watch
 * the prediction log. Part-way, the images shift one pixel to the right: the drift monitor raises
 * alerts against version 1's reference profile and its live accuracy drops. Two retrained versions
 * are published: a rollout of the broken one (shuffled output weights) is rolled back by its
 * guards, a rollout of the good one is promoted step by step — each with `inflow models rollout`,
 * as a user would run it. The dashboard (REST server over the embedded model) charts it all.
 *
 * Event time is simulated: event i is stamped T0 + i·TICK_MS, so the monitors' windows close
 * after a known number of events whatever the machine's speed; the rollout's steps are real time.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { InflowError } from '../errors.ts';
import type { ProducerRecord } from '../kafka/types.ts';
import { createAccuracyMonitor } from '../monitoring/accuracy-monitor.ts';
import { type DriftMonitor, type DriftReport, createDriftMonitor } from '../monitoring/drift-monitor.ts';
import type { AccuracyReport } from '../monitoring/label-join.ts';
import { monitorConfigSchema } from '../monitoring/monitor-config.ts';
import { createLogger } from '../observability/logger.ts';
import { setRuntimeLogger } from '../runtime/index.ts';
import type { DashboardAlert, MonitoringSnapshot } from '../server/dashboard/dashboard-monitoring.ts';
import { type RestServer, startRestServer } from '../server/rest/index.ts';
import { loadDigitsDataset } from './digits-dataset.ts';
import { openDemoKafka, portIsFree } from './demo-setup.ts';
import {
  MODEL,
  publishVersion,
  referenceProfiles,
  SHIFT_PIXELS,
  sceneTopics,
  shiftRight,
  startScenePipeline,
  VERSIONS,
} from './demo-monitoring-setup.ts';
import { runSceneRollout, type SceneRollout } from './demo-monitoring-rollout.ts';
import { publishControl, readModelsTopic } from '../delivery/index.ts';
import type { ProgressStream } from './progress.ts';

/** Simulated time between two events, ms: 100 events per simulated second. */
export const TICK_MS = 10;
/** Monitor windows (drift and accuracy), simulated ms: 1 000 events each. */
export const WINDOW_MS = 10_000;
/** The images shift from this event on (the start of the fourth window). */
export const SHIFT_AT = 3_000;
/** A label arrives this many events after its prediction (2 simulated seconds). */
const LABEL_LAG = 200;
/** Drift thresholds of the scene (KS and chi-square p-values strict: 75 features are tested per window). */
export const DRIFT_THRESHOLDS = { psi: 0.25, ksPValue: 1e-6, chiSquarePValue: 1e-6, jensenShannon: 0.2, minSamples: 100 } as const;
/** The scene gives up when nothing it waits for happens within this many events. */
const MAX_EVENTS = 200_000;

/** Flags of the scene (from `inflow demo`). */
export interface MonitoringDemoFlags {
  readonly kafka?: string | undefined;
  readonly rate?: string | undefined;
  readonly json?: boolean | undefined;
  readonly restPort?: string | undefined;
  readonly stay?: boolean | undefined;
}

function rateOf(text: string | undefined): number {
  if (text === undefined) return 1000;
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 50 || n > 100_000)
    throw new InflowError('INVALID_ARGUMENT', `--rate must be an integer 50-100000 for this scene, got "${text}"`);
  return n;
}

const pct = (x: number | undefined): string => (x === undefined ? '–' : `${(x * 100).toFixed(1)} %`);

/** A metrics endpoint for the monitor's registry (what `inflow monitor --metrics-port` serves). */
async function metricsServer(registry: Registry): Promise<{ url: string; server: Server }> {
  const server = createServer((_, res) => {
    void registry.metrics().then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`, server };
}

/**
 * The alerts as the dashboard lists them: a window's drift alerts of one version (one per feature
 * and statistic, often dozens) as one line naming the largest breach; rollbacks as they are.
 */
export function dashboardAlerts(alerts: readonly (DashboardAlert & Record<string, unknown>)[]): DashboardAlert[] {
  const out: DashboardAlert[] = [];
  const groups = new Map<string, { alert: DashboardAlert; count: number; worst: number; at: number }>();
  for (const a of alerts) {
    if (a.kind !== 'drift') {
      out.push({ kind: a.kind, model: a.model, version: a.version, at: a.at, text: a.text });
      continue;
    }
    const key = `${a.model}/${a.version}/${String((a.window as { start?: number } | undefined)?.start)}`;
    const ratio = Number(a.value) / Number(a.threshold);
    const g = groups.get(key);
    if (!g) {
      const entry = {
        alert: { kind: a.kind, model: a.model, version: a.version, at: a.at, text: a.text },
        count: 1,
        worst: ratio,
        at: out.length,
      };
      groups.set(key, entry);
      out.push(entry.alert);
      continue;
    }
    g.count++;
    if (a.statistic === 'psi' && ratio > g.worst) {
      g.worst = ratio;
      g.alert = { ...g.alert, text: a.text };
    }
    out[g.at] = { ...g.alert, text: `${g.count} breaches; largest: ${g.alert.text}` };
  }
  return out;
}

/** Runs the monitoring scene; resolves when it ended and everything it started is stopped. */
export async function monitoringDemo(flags: MonitoringDemoFlags, out: (line: string) => void): Promise<void> {
  const rate = rateOf(flags.rate);
  const progress: ProgressStream = flags.json ? process.stderr : process.stdout;
  const say = (line: string): void => void progress.write(`${line}\n`);
  const logger = createLogger({ name: 'inflow.demo', level: process.env.INFLOW_LOG_LEVEL ?? 'warn' });
  setRuntimeLogger(logger);
  const dataset = await loadDigitsDataset();
  const run = randomUUID().slice(0, 8);
  const topics = sceneTopics(run);
  // Simulated event time starts an hour ago on a window boundary (a broker refuses timestamps far ahead).
  const t0 = Math.floor((Date.now() - 3_600_000) / WINDOW_MS) * WINDOW_MS;
  const shiftTime = t0 + SHIFT_AT * TICK_MS;
  const stop = new AbortController();
  const undo: Array<() => Promise<unknown>> = [];
  try {
    const kafka = await openDemoKafka(flags.kafka, progress);
    undo.push(() => kafka.close());
    const client = kafka.client;
    const admin = client.admin();
    undo.push(() => admin.close());
    await admin.createTopics(Object.values(topics).map((topic) => ({ topic, partitions: 1 })));
    if (kafka.external) undo.push(() => admin.deleteTopics(Object.values(topics)));
    say(`inflow demo --scene monitoring on ${kafka.description} (topics prefixed inflow-demo-${run}-)`);
    say(
      `  stream: the ${dataset.pixels.length} held-out digits in a loop at ${rate}/s; labels follow ${LABEL_LAG} events later on their own topic`,
    );
    say(`  from event ${SHIFT_AT} on, every image arrives moved ${SHIFT_PIXELS} pixel to the right`);

    const profiles = await referenceProfiles(dataset.pixels, logger);
    await publishVersion(client, topics.models, 1, profiles.get(1) as Buffer);
    await publishControl({ client, topic: topics.models, model: MODEL, routing: { split: [{ version: 1, weight: 100 }] } });
    say(`  ${MODEL} version 1 (${VERSIONS[1].what}) published with its reference profile; 100 % of the traffic`);
    const pipeline = await startScenePipeline(run, topics, client, logger);
    undo.push(() => pipeline.close());

    // The monitors: drift against each version's profile, accuracy from the late labels.
    const monitorRegistry = new Registry();
    const config = monitorConfigSchema.parse({
      predictionLog: topics.predictions,
      groupId: `inflow-demo-monitor-${run}`,
      alertsTopic: topics.alerts,
      monitoringTopic: topics.monitoring,
      modelRepository: pipeline.repository,
      windowMs: WINDOW_MS,
      graceMs: 1000,
      models: { [MODEL]: { drift: DRIFT_THRESHOLDS } },
      accuracy: {
        labelsTopic: topics.labels,
        prediction: 'outputs.label',
        probabilities: 'outputs.probabilities',
        windowMs: WINDOW_MS,
        labelWindowMs: 5000,
        graceMs: 1000,
        deadLetterTopic: topics.monitorDlq,
      },
    });
    const driftReports: DriftReport[] = [];
    const accuracyReports: AccuracyReport[] = [];
    const drift: DriftMonitor = createDriftMonitor({ client, config, registry: monitorRegistry, onReport: (r) => driftReports.push(r) });
    const accuracy = createAccuracyMonitor({
      client,
      predictionLog: topics.predictions,
      groupId: config.groupId,
      monitoringTopic: topics.monitoring,
      accuracy: config.accuracy as NonNullable<typeof config.accuracy>,
      registry: monitorRegistry,
      commitIntervalMs: 250,
      onReport: (r) => accuracyReports.push(r),
    });
    const monitors = [drift.run(stop.signal), accuracy.run(stop.signal)].map((p) =>
      p.catch((error: unknown) => stop.abort(InflowError.from(error))),
    );
    undo.push(async () => {
      stop.abort();
      await Promise.all(monitors);
    });
    const monitorMetrics = await metricsServer(monitorRegistry);
    undo.push(() => new Promise((resolve) => monitorMetrics.server.close(resolve)));

    // Every alert on the alerts topic, for the story and the dashboard.
    const alerts: Array<Record<string, unknown> & DashboardAlert> = [];
    const alertConsumer = client.consumer({ groupId: `inflow-demo-alerts-${run}`, autoOffsetReset: 'earliest' });
    undo.push(() => alertConsumer.close());
    await alertConsumer.subscribe([topics.alerts]);
    const alertReading = (async () => {
      while (!stop.signal.aborted) {
        const records = await alertConsumer.poll({ maxRecords: 500, timeoutMs: 200, signal: stop.signal }).catch(() => []);
        for (const r of records) {
          const a = JSON.parse(r.value?.toString('utf8') ?? '{}') as Record<string, unknown>;
          const text =
            a.kind === 'drift'
              ? `${String(a.feature)} ${String(a.statistic)} ${Number(a.value).toPrecision(3)} past ${String(a.threshold)} (window of ${String(a.samples)}, ${new Date((a.window as { start: number }).start).toISOString().slice(11, 19)})`
              : typeof a.reason === 'string'
                ? a.reason
                : '';
          alerts.push({ ...a, kind: String(a.kind), model: String(a.model), version: Number(a.version), at: String(a.at), text });
        }
      }
    })();
    undo.push(() => alertReading);

    let restPort = flags.restPort === undefined ? undefined : Number(flags.restPort);
    if (restPort === undefined) restPort = (await portIsFree(8501)) ? 8501 : 0;
    const adminToken = randomBytes(12).toString('hex');
    const rest: RestServer = await startRestServer(pipeline.inference, {
      host: '127.0.0.1',
      port: restPort,
      admin: { token: adminToken },
      logger,
      dashboard: {
        title: 'inflow monitoring demo',
        historyIntervalMs: 1000,
        pipelines: () => [{ name: 'scorer', registry: pipeline.runner.metrics.registry, status: () => pipeline.runner.stats() }],
        monitoring: () => ({
          registry: monitorRegistry,
          thresholds: { psi: DRIFT_THRESHOLDS.psi, jensenShannon: DRIFT_THRESHOLDS.jensenShannon },
          alerts: () => dashboardAlerts(alerts),
        }),
      },
    });
    undo.push(() => rest.close());
    const restUrl = `http://127.0.0.1:${rest.port}`;
    const dashboard = `${restUrl}/dashboard/#admin=${adminToken}`;
    say(`dashboard: ${dashboard}`);

    await pipeline.runner.start();
    pipeline.runner.done.catch((error: unknown) => stop.abort(InflowError.from(error)));

    // The stream: events at `rate`, never more than 2 000 ahead of the pipeline.
    const producer = client.producer();
    undo.push(() => producer.close());
    let sent = 0;
    const consumed = async (): Promise<number> => (await pipeline.runner.metrics.recordsIn.get()).values.reduce((a, v) => a + v.value, 0);
    const streaming = (async () => {
      const started = performance.now();
      while (!stop.signal.aborted) {
        if (sent >= MAX_EVENTS)
          throw new InflowError(
            'DEADLINE_EXCEEDED',
            `the scene did not finish within ${MAX_EVENTS} events; see the log (INFLOW_LOG_LEVEL=info)`,
          );
        const due = Math.floor(((performance.now() - started) * rate) / 1000);
        if (due <= sent || sent - (await consumed()) > 2000) {
          await new Promise((resolve) => setTimeout(resolve, 10));
          continue;
        }
        const batch: ProducerRecord[] = [];
        for (; sent < due && batch.length < 200; sent++) {
          const row = sent % dataset.pixels.length;
          const image = dataset.pixels[row] as readonly number[];
          const timestamp = t0 + sent * TICK_MS;
          const pixels = sent >= SHIFT_AT ? shiftRight(image) : image;
          batch.push({
            topic: topics.digits,
            key: Buffer.from(`d-${sent}`),
            value: Buffer.from(JSON.stringify({ id: sent, pixels })),
            timestamp,
          });
          const labelled = sent - LABEL_LAG;
          if (labelled >= 0) {
            const label = dataset.labels[labelled % dataset.pixels.length] as number;
            batch.push({
              topic: topics.labels,
              key: Buffer.from(`d-${labelled}`),
              value: Buffer.from(JSON.stringify({ label })),
              timestamp,
            });
          }
        }
        await producer.send(batch);
      }
    })().catch((error: unknown) => stop.abort(InflowError.from(error)));
    undo.push(async () => {
      stop.abort();
      await streaming;
    });

    /** Resolves once `ready()` holds; rejects when the run stops first. */
    const until = async <T>(ready: () => T | undefined): Promise<T> => {
      for (;;) {
        if (stop.signal.aborted) throw InflowError.from(stop.signal.reason ?? new InflowError('CANCELLED', 'stopped'));
        const v = ready();
        if (v !== undefined) return v;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    const accuracyOf = (version: number, from: number, to = Number.POSITIVE_INFINITY) =>
      accuracyReports.find((r) => r.version === version && r.window.start >= from && r.window.end <= to && r.classification);

    // 1. Before the shift.
    const before = await until(() => accuracyOf(1, t0 + WINDOW_MS, shiftTime));
    const driftBefore = driftReports.filter((r) => r.version === 1 && r.window.end <= shiftTime);
    const largestPsi = (r: DriftReport | undefined) =>
      (r?.features ?? []).filter((f) => f.side === 'input').reduce((a, f) => (f.psi > a.psi ? f : a), { psi: 0, feature: '–' });
    say(
      `before the shift: version 1 live accuracy ${pct(before.classification?.accuracy)} (window of ${before.labelled} labelled predictions); ` +
        `${driftBefore.length} drift window(s), ${driftBefore.reduce((a, r) => a + (r.alerts ?? 0), 0)} alert(s), largest PSI ${largestPsi(driftBefore.at(-1)).psi.toFixed(3)}`,
    );

    // 2. The shift: drift alerts, accuracy drop.
    const firstAlert = await until(() => alerts.find((a) => a.kind === 'drift' && a.version === 1));
    say(`the shift (event ${SHIFT_AT}): drift alert for version 1: ${firstAlert.text}`);
    // The alert is the cue: two versions retrained on the moved images are published (loading while the labels come in).
    for (const v of [2, 3] as const) {
      await publishVersion(client, topics.models, v, profiles.get(v) as Buffer);
      say(`  ${MODEL} version ${v} published (${VERSIONS[v].what}) with its reference profile (the moved images)`);
    }
    const after = await until(() => accuracyOf(1, shiftTime));
    const driftAfter = await until(() => driftReports.find((r) => r.version === 1 && r.window.start >= shiftTime));
    say(
      `after the shift: version 1 live accuracy ${pct(after.classification?.accuracy)}; ${driftAfter.alerts ?? 0} drift alert(s) in the window, ` +
        `largest PSI ${largestPsi(driftAfter).psi.toFixed(3)} (${largestPsi(driftAfter).feature})`,
    );

    // 3. Rollouts of the two retrained versions; the broken one first.
    const common = {
      client,
      topics,
      metrics: [`${restUrl}/metrics`, monitorMetrics.url],
      inference: pipeline.inference,
      say,
      signal: stop.signal,
    };
    const worse: SceneRollout = await runSceneRollout({ ...common, target: 2 });
    const better: SceneRollout = await runSceneRollout({ ...common, target: 3 });
    const promotedAt = t0 + sent * TICK_MS;
    const final = await until(() => accuracyOf(3, promotedAt));
    say(`after the promotion: version 3 live accuracy ${pct(final.classification?.accuracy)} on the moved images`);

    // What the dashboard's monitoring panels show now (its own API, as the page reads it).
    const state = (await (await fetch(`${restUrl}/dashboard/api/state`)).json()) as { monitoring: MonitoringSnapshot | null };
    const routing = (await readModelsTopic({ client, topic: topics.models })).controls.get(MODEL)?.routing;
    const summary = {
      scene: 'monitoring',
      kafka: kafka.description,
      events: sent,
      shiftAt: SHIFT_AT,
      shiftTime,
      before: { version: 1, accuracy: before.classification?.accuracy, window: before.window, driftWindows: driftBefore.length },
      after: { version: 1, accuracy: after.classification?.accuracy, window: after.window },
      driftAlerts: alerts
        .filter((a) => a.kind === 'drift')
        .map((a) => ({ version: a.version, window: a.window, feature: a.feature, statistic: a.statistic, value: a.value })),
      firstDriftAlert: {
        feature: firstAlert.feature,
        statistic: firstAlert.statistic,
        value: firstAlert.value,
        threshold: firstAlert.threshold,
      },
      driftReportsBeforeShift: driftBefore.map((r) => ({
        version: r.version,
        window: r.window,
        alerts: r.alerts ?? 0,
        unavailable: r.unavailable,
      })),
      rollbacks: alerts.filter((a) => a.kind === 'rollback').map((a) => ({ version: a.version, reason: a.text })),
      worse,
      better,
      routing,
      dashboardMonitoring: state.monitoring,
      final: { version: 3, accuracy: final.classification?.accuracy, window: final.window },
      dashboard,
    };
    if (flags.json) out(JSON.stringify(summary));
    else {
      out('');
      out(
        `summary: ${sent} events; accuracy of version 1 ${pct(summary.before.accuracy)} → ${pct(summary.after.accuracy)} after the shift`,
      );
      out(`  version 2: ${worse.status} at ${worse.percent} % — ${worse.reason ?? ''}`);
      out(`  version 3: ${better.status} (steps ${better.steps.join(' → ')} %), live accuracy ${pct(summary.final.accuracy)}`);
    }
    if (flags.stay) {
      say(`the dashboard stays up: ${dashboard} — Ctrl-C stops`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
    }
  } finally {
    stop.abort();
    for (const step of undo.reverse())
      await step().catch((error: unknown) => logger.warn({ err: (error as Error).message }, 'stopping failed'));
    logger.flush();
  }
}
