/**
 * Prometheus metrics of the inference core, in Triton's spirit (nv_inference_request_success,
 * nv_inference_count, nv_inference_exec_count, queue/compute durations), labelled by model and
 * version. Each service owns a Registry (no global state), which the server exposes.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Latency buckets, seconds: 50 µs … 10 s. */
const LATENCY = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];
const BATCH = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/**
 * The `model` label value of requests for a model the repository does not know. Model names in
 * requests are chosen by callers: used as label values, every unknown name would become a new
 * time series kept for the life of the process (3 000 unique 8 000-character names grew
 * `/metrics` from 94 KB to 24 MB), so all of them share this one value.
 */
export const UNKNOWN_MODEL_LABEL = '(unknown)';

export interface InferenceMetrics {
  readonly registry: Registry;
  readonly requestSuccess: Counter<'model' | 'version'>;
  readonly requestFailure: Counter<'model' | 'version' | 'code'>;
  /** Rows inferred (Triton's inference_count). */
  readonly inferenceCount: Counter<'model' | 'version'>;
  /** Batches executed (Triton's inference_exec_count). */
  readonly execCount: Counter<'model' | 'version'>;
  readonly requestDuration: Histogram<'model' | 'version'>;
  readonly queueDuration: Histogram<'model' | 'version'>;
  readonly computeDuration: Histogram<'model' | 'version'>;
  readonly batchSize: Histogram<'model' | 'version'>;
  readonly shadowRequests: Counter<'model' | 'version' | 'shadow_version'>;
  readonly shadowAgreement: Counter<'model' | 'version' | 'shadow_version'>;
  readonly shadowFailures: Counter<'model' | 'version' | 'shadow_version'>;
  readonly shadowAbsDiff: Histogram<'model' | 'version' | 'shadow_version'>;
  readonly shadowDuration: Histogram<'model' | 'version' | 'shadow_version'>;
}

/** Creates the inference metrics in `registry` (a new one by default). */
export function createInferenceMetrics(registry: Registry = new Registry()): InferenceMetrics {
  const mv = ['model', 'version'] as const;
  const shadow = ['model', 'version', 'shadow_version'] as const;
  const registers = [registry];
  return {
    registry,
    requestSuccess: new Counter({
      name: 'inflow_inference_request_success_total',
      help: 'Inference requests answered',
      labelNames: mv,
      registers,
    }),
    requestFailure: new Counter({
      name: 'inflow_inference_request_failure_total',
      help: 'Inference requests that failed, by error code',
      labelNames: ['model', 'version', 'code'],
      registers,
    }),
    inferenceCount: new Counter({
      name: 'inflow_inference_count_total',
      help: 'Rows inferred (batch size summed)',
      labelNames: mv,
      registers,
    }),
    execCount: new Counter({ name: 'inflow_inference_exec_count_total', help: 'Batches executed by the model', labelNames: mv, registers }),
    requestDuration: new Histogram({
      name: 'inflow_inference_request_duration_seconds',
      help: 'Time from request to response inside the service',
      labelNames: mv,
      buckets: LATENCY,
      registers,
    }),
    queueDuration: new Histogram({
      name: 'inflow_inference_queue_duration_seconds',
      help: 'Time a request waited in the batcher',
      labelNames: mv,
      buckets: LATENCY,
      registers,
    }),
    computeDuration: new Histogram({
      name: 'inflow_inference_compute_duration_seconds',
      help: 'Time the model took per batch',
      labelNames: mv,
      buckets: LATENCY,
      registers,
    }),
    batchSize: new Histogram({
      name: 'inflow_inference_batch_size',
      help: 'Rows per executed batch',
      labelNames: mv,
      buckets: BATCH,
      registers,
    }),
    shadowRequests: new Counter({
      name: 'inflow_shadow_requests_total',
      help: 'Requests mirrored to a shadow version',
      labelNames: shadow,
      registers,
    }),
    shadowAgreement: new Counter({
      name: 'inflow_shadow_agreement_total',
      help: 'Shadow answers that agreed with the primary (same argmax / equal values)',
      labelNames: shadow,
      registers,
    }),
    shadowFailures: new Counter({
      name: 'inflow_shadow_failures_total',
      help: 'Shadow requests that failed',
      labelNames: shadow,
      registers,
    }),
    shadowAbsDiff: new Histogram({
      name: 'inflow_shadow_mean_abs_diff',
      help: 'Mean absolute difference between shadow and primary numeric outputs',
      labelNames: shadow,
      buckets: [0, 1e-6, 1e-4, 1e-3, 0.01, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    }),
    shadowDuration: new Histogram({
      name: 'inflow_shadow_duration_seconds',
      help: 'Time the shadow version took',
      labelNames: shadow,
      buckets: LATENCY,
      registers,
    }),
  };
}

/**
 * Registers prom-client's default process and Node.js runtime metrics on `registry` once:
 * `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_open_fds`,
 * `nodejs_eventloop_lag_*` (monitorEventLoopDelay, 10 ms resolution), `nodejs_heap_*`,
 * `nodejs_gc_duration_seconds`, … — the names Prometheus' Node.js dashboards expect. A second
 * call on the same registry does nothing.
 */
export function registerProcessMetrics(registry: Registry): void {
  if (registry.getSingleMetric('process_cpu_seconds_total')) return;
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });
}

/** One loaded version's state, as the repository reports it. */
export interface VersionReadiness {
  readonly model: string;
  readonly version: number;
  readonly ready: boolean;
}

/**
 * `inflow_model_ready{model,version}`: 1 for a version that serves, 0 for one loading or being
 * unloaded; a model with no version at all shows `version=""` 0. Read from `source` at each scrape.
 */
export function createModelReadyGauge(
  registry: Registry,
  source: () => Iterable<VersionReadiness | { model: string; version: undefined; ready: false }>,
): Gauge<'model' | 'version'> {
  const name = 'inflow_model_ready';
  const existing = registry.getSingleMetric(name);
  if (existing) registry.removeSingleMetric(name);
  return new Gauge({
    name,
    help: 'Whether a model version serves (1) or is loading / unloading (0); version "" = the model has no version',
    labelNames: ['model', 'version'],
    registers: [registry],
    collect() {
      this.reset();
      for (const v of source()) this.set({ model: v.model, version: v.version === undefined ? '' : String(v.version) }, v.ready ? 1 : 0);
    },
  });
}
