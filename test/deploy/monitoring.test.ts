/**
 * The chart's monitoring objects (ServiceMonitor, PodMonitor, PrometheusRule, the Grafana
 * dashboard ConfigMap), rendered by the real helm for every mode and validated against the
 * Prometheus Operator schemas; and every metric the dashboard and the alert rules query exists
 * in what inflow really exposes: a model server's /metrics scraped over HTTP, plus the stream
 * runner's registry (what `inflow stream --metrics-port` serves beside it).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { parseAllDocuments } from 'yaml';
import { registerProcessMetrics } from '../../src/observability/metrics.ts';
import { loadServable } from '../../src/runtime/index.ts';
import { startModelServer } from '../../src/server/model-server.ts';
import { createStreamsMetrics } from '../../src/streams/runtime/streams-metrics.ts';
import { modelRepository } from '../streams/fixtures/streams-fixtures.ts';
import { helm, repoRoot } from './helm-binary.ts';
import { validateObject } from './manifest-schemas.ts';

const chart = join(repoRoot, 'deploy/helm/inflow');
const dashboardFile = join(chart, 'dashboards/inflow.json');
const ALL_ON = {
  monitoring: {
    serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' } },
    podMonitor: { enabled: true },
    prometheusRule: { enabled: true },
    grafanaDashboard: { enabled: true },
  },
};
/** The smallest values of each mode that render (as the chart's examples need). */
const MODES: Record<string, object> = {
  standalone: { mode: 'standalone' },
  'self-contained': { mode: 'self-contained', kafka: { bootstrapServers: ['k:9092'] }, stream: { pipeline: {} } },
  sidecar: {},
  kserve: { mode: 'kserve' },
};

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

let work: string;
before(() => {
  work = mkdtempSync(join(tmpdir(), 'inflow-monitoring-test-'));
});
after(() => rmSync(work, { recursive: true, force: true }));

async function render(values: object[]): Promise<K8sObject[]> {
  const files = values.map((v, i) => {
    const f = join(work, `values-${i}-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(f, JSON.stringify(v));
    return f;
  });
  const r = await helm(['template', 'rel', chart, '--kube-version', '1.31.0', ...files.flatMap((f) => ['-f', f])]);
  assert.equal(r.code, 0, r.stderr);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

/** Values of the chart's example for `mode` plus `extra`. */
function example(mode: string): string {
  return join(chart, 'examples', `${mode}.yaml`);
}

async function renderExample(mode: string, extra: object): Promise<K8sObject[]> {
  const f = join(work, `extra-${mode}-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(f, JSON.stringify(extra));
  const r = await helm(['template', 'rel', chart, '--kube-version', '1.31.0', '-f', example(mode), '-f', f]);
  assert.equal(r.code, 0, r.stderr);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

const MONITORING_KINDS = ['ServiceMonitor', 'PodMonitor', 'PrometheusRule'];

describe('the chart with monitoring on', () => {
  it('renders nothing for monitoring by default', async () => {
    for (const mode of Object.keys(MODES)) {
      const objects = await renderExample(mode, {});
      assert.deepEqual(
        objects.filter((o) => MONITORING_KINDS.includes(o.kind) || o.metadata.name.endsWith('grafana-dashboard')).map((o) => o.kind),
        [],
        mode,
      );
    }
  });

  it('renders valid ServiceMonitor / PodMonitor / PrometheusRule objects for every mode, each scraping the port its pods expose', async () => {
    const expected: Record<string, string[]> = {
      standalone: ['ServiceMonitor', 'PrometheusRule'],
      'self-contained': ['PodMonitor', 'PrometheusRule'],
      sidecar: ['PodMonitor', 'PrometheusRule'],
      kserve: ['PrometheusRule'],
    };
    for (const mode of Object.keys(expected)) {
      const objects = await renderExample(mode, ALL_ON);
      const kinds = objects.filter((o) => MONITORING_KINDS.includes(o.kind)).map((o) => o.kind);
      assert.deepEqual(kinds.sort(), [...(expected[mode] ?? [])].sort(), mode);
      for (const o of objects) {
        if (!MONITORING_KINDS.includes(o.kind) && o.kind !== 'ConfigMap') continue;
        assert.deepEqual(await validateObject(o), [], `${mode}: ${o.kind} ${o.metadata.name}`);
      }
      const sm = objects.find((o) => o.kind === 'ServiceMonitor');
      if (sm) {
        assert.equal(sm.metadata.labels?.release, 'kube-prometheus-stack', 'extra labels reach the ServiceMonitor');
        const service = objects.find((o) => o.kind === 'Service' && o.metadata.name === 'rel-inflow-server') as K8sObject;
        const ports = (service.spec?.ports as { name: string }[]).map((p) => p.name);
        for (const e of sm.spec?.endpoints as { port: string }[]) assert.ok(ports.includes(e.port), `the Service has port ${e.port}`);
        const selector = (sm.spec?.selector as { matchLabels: Record<string, string> }).matchLabels;
        assert.deepEqual(selector, service.spec?.selector, 'the ServiceMonitor selects the server Service');
      }
      const pm = objects.find((o) => o.kind === 'PodMonitor');
      if (pm) {
        const deployment = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'rel-inflow-stream') as K8sObject;
        const template = deployment.spec?.template as {
          metadata: { labels: Record<string, string> };
          spec: { containers: { ports?: { name: string }[] }[]; initContainers?: { ports?: { name: string }[] }[] };
        };
        const podPorts = [...template.spec.containers, ...(template.spec.initContainers ?? [])].flatMap((c) =>
          (c.ports ?? []).map((p) => p.name),
        );
        const endpoints = (pm.spec?.podMetricsEndpoints as { port: string }[]).map((e) => e.port);
        assert.deepEqual(endpoints, mode === 'sidecar' ? ['metrics', 'http'] : ['metrics']);
        for (const port of endpoints) assert.ok(podPorts.includes(port), `${mode}: the stream pod has port ${port}`);
        const selector = (pm.spec?.selector as { matchLabels: Record<string, string> }).matchLabels;
        for (const [k, v] of Object.entries(selector)) assert.equal(template.metadata.labels[k], v, `${mode}: pods carry ${k}`);
      }
    }
  });

  it('refuses an unknown monitoring value, naming it', async () => {
    const f = join(work, 'bad.json');
    writeFileSync(f, JSON.stringify({ monitoring: { serviceMonitor: { enabeld: true } } }));
    const r = await helm(['template', 'rel', chart, '--kube-version', '1.31.0', '-f', f]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /enabeld/);
  });

  it('ships the Grafana dashboard file unchanged in a ConfigMap labelled for the Grafana sidecar', async () => {
    const objects = await render([MODES.standalone as object, ALL_ON]);
    const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'rel-inflow-grafana-dashboard') as K8sObject;
    assert.ok(cm, 'the dashboard ConfigMap');
    assert.equal(cm.metadata.labels?.grafana_dashboard, '1');
    assert.deepEqual(JSON.parse(cm.data?.['inflow.json'] ?? ''), JSON.parse(readFileSync(dashboardFile, 'utf8')));
  });
});

/** Metric names in PromQL text: inflow_*, process_*, nodejs_* identifiers. */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b((?:inflow|process|nodejs)_[a-zA-Z0-9_]+)\b/g)].map((m) => m[1] as string);
}

describe('the Grafana dashboard and the alert rules', () => {
  let exposed: Set<string>;
  let serverText: string;

  before(async () => {
    // What a real server exposes over HTTP (process metrics included) …
    const server = await startModelServer({
      modelRepository: await modelRepository(['digits-mlp']),
      load: loadServable,
      rest: { host: '127.0.0.1', port: 0 },
      grpc: { host: '127.0.0.1', port: 0 },
      watch: false,
      shutdownGraceMs: 100,
    });
    let text: string;
    try {
      // One call of each transport, so every labelled series has a sample too.
      const body = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], data: new Array(64).fill(0) }] });
      const res = await fetch(`http://${server.restAddress}/v2/models/digits-mlp/infer`, { method: 'POST', body });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      text = await (await fetch(`http://${server.restAddress}/metrics`)).text();
      serverText = text;
    } finally {
      await server.close();
    }
    // … and what a stream process adds (its runner's registry, with the process metrics).
    const registry = new Registry();
    createStreamsMetrics(registry);
    registerProcessMetrics(registry);
    text += await registry.metrics();
    exposed = new Set<string>();
    for (const line of text.split('\n')) {
      const m = /^# TYPE (\S+) (\S+)/.exec(line);
      if (!m) continue;
      const [, name, type] = m as unknown as [string, string, string];
      exposed.add(name);
      if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exposed.add(name + s);
      if (type === 'summary') for (const s of ['_sum', '_count']) exposed.add(name + s);
    }
  });

  it('has the model server expose process and Node.js metrics and a ready gauge per model version', () => {
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_heap_size_used_bytes',
    ]) {
      assert.match(serverText, new RegExp(`^${name} `, 'm'), `the server's /metrics has ${name}`);
    }
    assert.match(serverText, /^inflow_model_ready\{model="digits-mlp",version="1"\} 1$/m);
  });

  it('queries only metrics inflow exposes, and shows the panels the issue asks for', () => {
    const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as {
      panels: { type: string; title: string; targets?: { expr: string }[]; fieldConfig?: { defaults?: { unit?: string } } }[];
    };
    const panels = dashboard.panels.filter((p) => p.type !== 'row');
    const used = new Set<string>();
    for (const p of panels) {
      assert.ok(p.targets && p.targets.length > 0, `panel "${p.title}" has queries`);
      assert.ok(p.fieldConfig?.defaults?.unit, `panel "${p.title}" has a unit`);
      for (const t of p.targets) for (const n of metricNames(t.expr)) used.add(n);
    }
    const missing = [...used].filter((n) => !exposed.has(n));
    assert.deepEqual(missing, [], 'every metric the dashboard queries is exposed');
    for (const needed of [
      'inflow_inference_request_duration_seconds_bucket',
      'inflow_inference_queue_duration_seconds_bucket',
      'inflow_inference_compute_duration_seconds_bucket',
      'inflow_stream_consumer_lag',
      'inflow_stream_end_to_end_seconds_bucket',
      'inflow_model_ready',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_p99_seconds',
    ]) {
      assert.ok(used.has(needed), `the dashboard shows ${needed}`);
    }
  });

  it('alerts only on metrics inflow exposes: lag, dead-letter rate, error ratio, model not ready, Kafka disconnected', async () => {
    const objects = await renderExample('sidecar', ALL_ON);
    const rule = objects.find((o) => o.kind === 'PrometheusRule') as K8sObject;
    const rules = (rule.spec?.groups as { rules: { alert: string; expr: string }[] }[]).flatMap((g) => g.rules);
    assert.deepEqual(rules.map((r) => r.alert).sort(), [
      'InflowConsumerLagHigh',
      'InflowDeadLetterRate',
      'InflowInferenceErrorRatio',
      'InflowKafkaDisconnected',
      'InflowModelNotReady',
    ]);
    const missing = rules.flatMap((r) => metricNames(r.expr)).filter((n) => !exposed.has(n));
    assert.deepEqual(missing, [], 'every metric the alerts query is exposed');
  });
});
