/**
 * The dashboard's data: one JSON snapshot of the models (versions and their state, labels,
 * routing) and of the cumulative metrics of the server and of the in-process pipelines. The page
 * polls it and turns the difference between two snapshots into rates and percentiles, so the
 * server keeps no per-viewer state and a snapshot costs one pass over the registries. A bounded
 * ring of snapshots (./dashboard-history.ts) lets a new page chart the last minutes at once.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import type { LocalInference } from '../../serving/local-inference.ts';
import { type MonitoringSnapshot, monitoringSnapshot } from './dashboard-monitoring.ts';
import type { DashboardOptions } from './dashboard-options.ts';

/** A histogram summed over its label sets: cumulative counts per upper bound (seconds or rows). */
export interface HistogramSnapshot {
  /** Upper bounds, ascending (+Inf left out: its count is `count`). */
  readonly le: number[];
  /** Cumulative observations ≤ each bound. */
  readonly counts: number[];
  readonly sum: number;
  readonly count: number;
}

/** A model as the dashboard shows it. */
export interface ModelSnapshot {
  readonly name: string;
  readonly versions: { version: number; state: string; error?: string }[];
  readonly labels: Record<string, number>;
  readonly split: { version: number; weight: number }[] | null;
  readonly shadow: { version: number; fraction: number } | null;
  readonly configError?: string;
}

/** A pipeline's cumulative counters. */
export interface PipelineSnapshot {
  readonly name: string;
  readonly state: string;
  readonly inFlight: number;
  readonly recordsIn: number;
  readonly recordsOut: number;
  readonly deadLettered: number;
  readonly skipped: number;
  readonly retries: number;
  /** Sum over the input partitions, records. */
  readonly lag: number;
  readonly batch: HistogramSnapshot;
  /** Input record timestamp → outputs acknowledged, seconds. */
  readonly endToEnd: HistogramSnapshot;
  /** Consumer lag per input partition, records, keyed `topic[partition]`. */
  readonly lagByPartition: Record<string, number>;
}

/** One model's server-side timings (summed over its versions), seconds. */
export interface ModelTimings {
  /** Request in → answer, inside the service. */
  readonly latency: HistogramSnapshot;
  /** Wait in the dynamic batcher. */
  readonly queue: HistogramSnapshot;
  /** The model's run per batch. */
  readonly compute: HistogramSnapshot;
}

/** This process: cumulative CPU, memory now, event-loop delay since the history's last sample. */
export interface ProcessSnapshot {
  /** User + system CPU since start, seconds. */
  readonly cpuSeconds: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  /** 99th percentile of the event-loop delay, ms (null before any was measured). */
  readonly eventLoopDelayP99Ms: number | null;
}

/** What `/dashboard/api/state` answers. */
export interface DashboardSnapshot {
  /** Milliseconds since the epoch. */
  readonly time: number;
  readonly title: string;
  /** Whether the admin API is on (the page then offers to edit splits). */
  readonly admin: boolean;
  readonly models: ModelSnapshot[];
  readonly server: {
    readonly success: number;
    readonly failures: number;
    /** Successful requests per `model vN`. */
    readonly byVersion: Record<string, number>;
    readonly rows: number;
    readonly latency: HistogramSnapshot;
    /** Latency, batch queue and compute per model. */
    readonly byModel: Record<string, ModelTimings>;
    readonly batch: HistogramSnapshot;
    /** Mirrored requests, shadow answers compared with the primary's, of those the agreeing ones, and failures. */
    readonly shadow: { readonly requests: number; readonly compared: number; readonly agreement: number; readonly failures: number };
  };
  readonly pipelines: PipelineSnapshot[];
  /** The model monitor's live accuracy, drift and alerts (./dashboard-monitoring.ts); null without one. */
  readonly monitoring: MonitoringSnapshot | null;
  readonly process: ProcessSnapshot;
}

interface MetricValue {
  value: number;
  labels: Partial<Record<string, string | number>>;
  metricName?: string;
}
type Metrics = Map<string, MetricValue[]>;

async function collect(registry: Registry): Promise<Metrics> {
  const all = (await registry.getMetricsAsJSON()) as unknown as { name: string; values: MetricValue[] }[];
  return new Map(all.map((m) => [m.name, m.values]));
}

function total(metrics: Metrics, name: string): number {
  return (metrics.get(name) ?? []).reduce((a, v) => a + (Number.isFinite(v.value) ? v.value : 0), 0);
}

/** Sums a prom-client histogram over every label set except `le`. */
export function histogram(metrics: Metrics, name: string): HistogramSnapshot {
  const buckets = new Map<number, number>();
  let sum = 0;
  let count = 0;
  for (const v of metrics.get(name) ?? []) {
    if (v.metricName === `${name}_sum`) sum += v.value;
    else if (v.metricName === `${name}_count`) count += v.value;
    else if (v.metricName === `${name}_bucket`) {
      const le = Number(v.labels.le);
      if (Number.isFinite(le)) buckets.set(le, (buckets.get(le) ?? 0) + v.value);
    }
  }
  const le = [...buckets.keys()].sort((a, b) => a - b);
  return { le, counts: le.map((b) => buckets.get(b) ?? 0), sum, count };
}

/** {@link histogram} per value of `label` (e.g. per model). */
function histogramsBy(metrics: Metrics, name: string, label: string): Map<string, HistogramSnapshot> {
  const groups = new Map<string, MetricValue[]>();
  for (const v of metrics.get(name) ?? []) {
    const key = String(v.labels[label] ?? '');
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(v);
  }
  return new Map([...groups].map(([key, values]) => [key, histogram(new Map([[name, values]]), name)]));
}

/** Event-loop delay of this process (perf_hooks, 10 ms resolution), started with the first snapshot. */
let loopDelay: ReturnType<typeof monitorEventLoopDelay> | undefined;

/** Starts a new event-loop delay interval (the history calls it after each sample). */
export function resetEventLoopDelay(): void {
  loopDelay?.reset();
}

function processSnapshot(): ProcessSnapshot {
  if (!loopDelay) {
    loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
  }
  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  return {
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    // Nanoseconds → ms; the histogram reads 0 / NaN until it recorded a delay.
    eventLoopDelayP99Ms: loopDelay.count > 0 ? loopDelay.percentile(99) / 1e6 : null,
  };
}

function models(inference: LocalInference): ModelSnapshot[] {
  const repository = inference.repository;
  return repository.models().map((name) => {
    const status = repository.status(name);
    const route = inference.router.state(name);
    return {
      name,
      versions: (status?.versions ?? []).map((v) => ({
        version: v.version,
        state: v.state,
        ...(v.error ? { error: `${v.error.code}: ${v.error.message}` } : {}),
      })),
      labels: route?.labels ?? status?.config?.labels ?? {},
      split: route?.split ? route.split.map((s) => ({ version: s.version, weight: s.weight })) : null,
      shadow: route?.shadow ? { version: route.shadow.version, fraction: route.shadow.fraction } : null,
      ...(status?.configError ? { configError: `${status.configError.code}: ${status.configError.message}` } : {}),
    };
  });
}

/** Builds a snapshot of the server (its inference service) and of the configured pipelines. */
export async function dashboardSnapshot(inference: LocalInference, options: DashboardOptions, admin: boolean): Promise<DashboardSnapshot> {
  const server = await collect(inference.metrics.registry);
  const byVersion: Record<string, number> = {};
  for (const v of server.get('inflow_inference_request_success_total') ?? []) {
    const key = `${String(v.labels.model)} v${String(v.labels.version)}`;
    byVersion[key] = (byVersion[key] ?? 0) + v.value;
  }
  const pipelines = await Promise.all(
    (options.pipelines?.() ?? []).map(async (p): Promise<PipelineSnapshot> => {
      const m = await collect(p.registry);
      const status = p.status?.();
      return {
        name: p.name,
        state: status?.state ?? 'running',
        inFlight: status?.inFlight ?? total(m, 'inflow_stream_in_flight_records'),
        recordsIn: total(m, 'inflow_stream_records_in_total'),
        recordsOut: total(m, 'inflow_stream_records_out_total'),
        deadLettered: total(m, 'inflow_stream_dead_letter_total'),
        skipped: total(m, 'inflow_stream_skipped_total'),
        retries: total(m, 'inflow_stream_predict_retries_total'),
        lag: total(m, 'inflow_stream_consumer_lag'),
        batch: histogram(m, 'inflow_stream_predict_batch_size'),
        endToEnd: histogram(m, 'inflow_stream_end_to_end_seconds'),
        lagByPartition: Object.fromEntries(
          (m.get('inflow_stream_consumer_lag') ?? []).map((v) => [`${String(v.labels.topic)}[${String(v.labels.partition)}]`, v.value]),
        ),
      };
    }),
  );
  const monitor = options.monitoring?.();
  const monitoring = monitor ? await monitoringSnapshot(monitor) : null;
  const latency = histogramsBy(server, 'inflow_inference_request_duration_seconds', 'model');
  const queue = histogramsBy(server, 'inflow_inference_queue_duration_seconds', 'model');
  const compute = histogramsBy(server, 'inflow_inference_compute_duration_seconds', 'model');
  const empty: HistogramSnapshot = { le: [], counts: [], sum: 0, count: 0 };
  const byModel: Record<string, ModelTimings> = {};
  for (const model of new Set([...latency.keys(), ...queue.keys(), ...compute.keys()])) {
    byModel[model] = { latency: latency.get(model) ?? empty, queue: queue.get(model) ?? empty, compute: compute.get(model) ?? empty };
  }
  return {
    time: Date.now(),
    title: options.title ?? 'inflow',
    admin,
    models: models(inference),
    server: {
      success: total(server, 'inflow_inference_request_success_total'),
      failures: total(server, 'inflow_inference_request_failure_total'),
      byVersion,
      rows: total(server, 'inflow_inference_count_total'),
      latency: histogram(server, 'inflow_inference_request_duration_seconds'),
      byModel,
      batch: histogram(server, 'inflow_inference_batch_size'),
      shadow: {
        requests: total(server, 'inflow_shadow_requests_total'),
        // A shadow answer's duration is observed when it is compared: its count is the denominator of agreement.
        compared: histogram(server, 'inflow_shadow_duration_seconds').count,
        agreement: total(server, 'inflow_shadow_agreement_total'),
        failures: total(server, 'inflow_shadow_failures_total'),
      },
    },
    pipelines,
    monitoring,
    process: processSnapshot(),
  };
}
