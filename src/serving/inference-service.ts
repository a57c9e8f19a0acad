/**
 * InferenceService: the local Inferencer. model repository → router (version / label / weighted
 * split sticky by key / shadow) → dynamic batcher per loaded version → servable. Every
 * transport (REST, gRPC, Kafka) and the embedded stream operator call this.
 */
import { InflowError } from '../errors.ts';
import { context } from '@opentelemetry/api';
import { inflowTracer, inSpan, tracingActive } from '../observability/tracing.ts';
import type { InferenceMetrics } from '../observability/metrics.ts';
import { createInferenceMetrics, createModelReadyGauge, UNKNOWN_MODEL_LABEL } from '../observability/metrics.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';
import type { RoutingConfig } from '../repository/model-config.ts';
import type { LoadedVersion, ModelRepository } from '../repository/model-repository.ts';
import type { Servable } from '../runtime/servable.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { checkInputs } from './check-inputs.ts';
import { createDynamicBatcher, type DynamicBatcher, type RequestTimings } from './dynamic-batcher.ts';
import { type FeatureLookup, fillFeatures } from './feature-fill.ts';
import { createRouter, type RouteState, type Router } from './router.ts';
import { compareOutputs } from './shadow-compare.ts';
import type { InferOptions, InferRequest, InferResponse, Inferencer, ModelMetadata } from './types.ts';

export interface InferenceServiceOptions {
  repository: ModelRepository;
  metrics?: InferenceMetrics;
  logger?: Logger;
  /** Randomness for unkeyed splits and shadow sampling (tests inject one). */
  random?: () => number;
  /** Reads the stored features of models configured with `features:` (their missing inputs are filled from it). */
  featureLookup?: FeatureLookup;
}

export interface InferenceService extends Inferencer {
  readonly metrics: InferenceMetrics;
  readonly router: Router;
  /** Changes a model's split / shadow at run time (overrides config.yaml's `routing`); undefined restores the config's. */
  setRouting(model: string, routing: RoutingConfig | undefined): void;
  /**
   * Moves a label at run time (a rollout or rollback without editing config.yaml); `undefined`
   * drops the override so config.yaml's label applies again. The version must be AVAILABLE.
   */
  setLabel(model: string, label: string, version: number | undefined): void;
  /**
   * Waits for the shadow requests started so far (tests and graceful shutdown; shadows never
   * delay the primary answer).
   */
  settleShadows(): Promise<void>;
  /** Drains and forgets a version's batcher; the repository calls it before unloading the version. */
  unload(loaded: LoadedVersion): Promise<void>;
}

const seconds = (micros: number): number => micros / 1e6;

export function createInferenceService(options: InferenceServiceOptions): InferenceService {
  const repository = options.repository;
  const metrics = options.metrics ?? createInferenceMetrics();
  createModelReadyGauge(metrics.registry, function* () {
    for (const model of repository.models()) {
      const versions = repository.status(model)?.versions ?? [];
      if (versions.length === 0) yield { model, version: undefined, ready: false };
      for (const v of versions) yield { model, version: v.version, ready: v.state === 'AVAILABLE' };
    }
  });
  const log = options.logger ?? silentLogger;
  const router = createRouter(options.random ? { random: options.random } : {});
  const batchers = new Map<Servable, DynamicBatcher>();
  const overrides = new Map<string, RoutingConfig>();
  const labelOverrides = new Map<string, Map<string, number>>();
  const shadows = new Set<Promise<void>>();
  let closed = false;

  /** config.yaml's labels with the run-time moves on top. */
  function effectiveLabels(model: string): Record<string, number> {
    return { ...repository.config(model)?.labels, ...Object.fromEntries(labelOverrides.get(model) ?? []) };
  }

  function syncRoute(model: string): void {
    const ready = repository.available(model);
    const config = repository.config(model);
    if (!config || ready.length === 0) {
      if (router.state(model)) router.remove(model);
      if (!config) return;
    }
    const readySet = new Set(ready);
    const routing = overrides.get(model) ?? config.routing;
    const split = routing?.split?.filter((s) => readySet.has(s.version) && s.weight > 0);
    const state: RouteState = { ready, labels: effectiveLabels(model) };
    if (split && split.length > 0) state.split = split;
    if (routing?.shadow && readySet.has(routing.shadow.version)) state.shadow = routing.shadow;
    try {
      router.update(model, state);
    } catch (error) {
      log.error({ model, err: error }, 'routing update rejected; keeping the previous routing');
    }
  }
  const unsubscribe = repository.onChange(syncRoute);
  for (const model of repository.models()) syncRoute(model);

  function batcherFor(loaded: LoadedVersion): DynamicBatcher {
    let batcher = batchers.get(loaded.servable);
    if (batcher) return batcher;
    const labels = { model: loaded.model, version: String(loaded.version) };
    const servable = loaded.servable;
    batcher = createDynamicBatcher((inputs, o) => servable.run(inputs, o.outputs ? { outputs: o.outputs } : {}), loaded.config.batching, {
      onBatch(info) {
        metrics.execCount.inc(labels);
        metrics.inferenceCount.inc(labels, info.rows);
        metrics.batchSize.observe(labels, info.rows);
        metrics.computeDuration.observe(labels, seconds(info.computeMicros));
        for (const q of info.queueMicros) metrics.queueDuration.observe(labels, seconds(q));
      },
    });
    batchers.set(servable, batcher);
    return batcher;
  }

  /** The batcher's timings of one request as `queue` and `compute` spans (child of the active span), ending now. */
  function traceTimings(submitted: number): (t: RequestTimings) => void {
    const parent = context.active();
    return (t) => {
      const tracer = inflowTracer();
      const computeStart = submitted + t.queueMicros / 1000;
      tracer.startSpan('queue', { startTime: submitted }, parent).end(computeStart);
      tracer
        .startSpan('compute', { startTime: computeStart, attributes: { 'inflow.batch.rows': t.batchRows } }, parent)
        .end(computeStart + t.computeMicros / 1000);
    };
  }

  /** Resolves, checks and runs one request on one version; retries once when the version was swapped out mid-way. */
  async function runOn(
    model: string,
    version: number,
    request: InferRequest,
    signal: AbortSignal | undefined,
  ): Promise<Record<string, Tensor>> {
    for (let attempt = 0; ; attempt++) {
      const loaded = repository.get(model, version);
      if (!loaded) throw new InflowError('NOT_FOUND', `Servable not found for request: Specific(${model}, ${version})`);
      const features = loaded.config.features;
      let inputs = request.inputs;
      if (features !== undefined) {
        if (options.featureLookup === undefined) {
          throw new InflowError(
            'FAILED_PRECONDITION',
            `model "${model}" reads features from store "${features.store}", but this server has no feature lookup`,
          );
        }
        inputs = await fillFeatures(model, features, loaded.servable.signature, inputs, options.featureLookup, signal);
      }
      checkInputs(model, loaded.servable.signature, inputs, request.outputs);
      try {
        return await batcherFor(loaded).submit(inputs, {
          ...(signal ? { signal } : {}),
          ...(request.outputs ? { outputs: request.outputs } : {}),
          ...(tracingActive() ? { onTimings: traceTimings(performance.now()) } : {}),
        });
      } catch (error) {
        // A version being unloaded closes its batcher; the router already points elsewhere.
        if (attempt === 0 && (error as InflowError).code === 'UNAVAILABLE' && repository.get(model, version) !== loaded) continue;
        throw error;
      }
    }
  }

  function mirror(request: InferRequest, primaryVersion: number, shadowVersion: number, primary: Record<string, Tensor>): void {
    const labels = { model: request.model, version: String(primaryVersion), shadow_version: String(shadowVersion) };
    metrics.shadowRequests.inc(labels);
    const started = performance.now();
    const task = runOn(request.model, shadowVersion, request, undefined)
      .then((outputs) => {
        metrics.shadowDuration.observe(labels, (performance.now() - started) / 1000);
        const result = compareOutputs(primary, outputs);
        if (result.agree) metrics.shadowAgreement.inc(labels);
        if (result.meanAbsDiff !== undefined) metrics.shadowAbsDiff.observe(labels, result.meanAbsDiff);
      })
      .catch((error: unknown) => {
        metrics.shadowFailures.inc(labels);
        log.debug({ err: error, ...labels }, 'shadow request failed');
      })
      .finally(() => shadows.delete(task));
    shadows.add(task);
  }

  /**
   * A model that is in the repository but has no version ready yet (its first version is still
   * loading or settling) is a passing state: UNAVAILABLE (retriable: clients and pipelines retry)
   * instead of NOT_FOUND (which sends a stream record to the dead-letter topic). A model unloaded
   * on request stays NOT_FOUND.
   */
  function stillLoading(request: InferRequest, e: InflowError): InflowError {
    if (e.code !== 'NOT_FOUND' || request.version !== undefined) return e;
    const model = request.model;
    if (!repository.config(model) || repository.available(model).length > 0 || repository.unloaded().includes(model)) return e;
    return new InflowError('UNAVAILABLE', `model ${model} has no version ready yet (loading); retry shortly`, { cause: e });
  }

  async function infer(request: InferRequest, inferOptions: InferOptions): Promise<InferResponse> {
    if (closed) throw new InflowError('UNAVAILABLE', 'the inference service is shut down');
    const started = performance.now();
    let version: number | undefined;
    try {
      inferOptions.signal?.throwIfAborted();
      const target = {
        ...(request.version !== undefined ? { version: request.version } : {}),
        ...(request.label !== undefined ? { label: request.label } : {}),
        ...(inferOptions.key !== undefined ? { key: inferOptions.key } : {}),
      };
      const route = inferOptions.route ?? router.resolve(request.model, target);
      version = route.version;
      const outputs = await runOn(request.model, route.version, request, inferOptions.signal);
      if (route.shadow !== undefined && route.shadow !== route.version) mirror(request, route.version, route.shadow, outputs);
      const labels = { model: request.model, version: String(route.version) };
      metrics.requestSuccess.inc(labels);
      metrics.requestDuration.observe(labels, (performance.now() - started) / 1000);
      return { model: request.model, version: route.version, ...(request.id !== undefined ? { id: request.id } : {}), outputs };
    } catch (error) {
      const e = stillLoading(request, InflowError.from(error));
      // Only models the repository knows become label values (caller-chosen names would grow /metrics without bound).
      const model = repository.config(request.model) ? request.model : UNKNOWN_MODEL_LABEL;
      metrics.requestFailure.inc({ model, version: version === undefined ? '' : String(version), code: e.code });
      throw e;
    }
  }

  return {
    metrics,
    router,
    infer(request, inferOptions: InferOptions = {}): Promise<InferResponse> {
      // Tracing on: the service's span; its queue and compute children come from the batcher's timings.
      if (tracingActive()) return inSpan(`infer ${request.model}`, () => infer(request, inferOptions), { 'inflow.model': request.model });
      return infer(request, inferOptions);
    },
    route(model, target) {
      return router.resolve(model, target);
    },
    async metadata(model, version): Promise<ModelMetadata> {
      const config = repository.config(model);
      const versions = repository.available(model);
      const chosen = version ?? versions.at(-1);
      const loaded = chosen === undefined ? undefined : repository.get(model, chosen);
      if (!config || !loaded) {
        throw new InflowError(
          'NOT_FOUND',
          version === undefined ? `Could not find any versions of model ${model}` : `Could not find version ${version} of model ${model}`,
        );
      }
      return {
        name: model,
        platform: config.platform,
        versions,
        labels: effectiveLabels(model),
        inputs: loaded.servable.signature.inputs,
        outputs: loaded.servable.signature.outputs,
      };
    },
    async ready(model) {
      if (closed) return false;
      if (model !== undefined) return repository.available(model).length > 0;
      const unloaded = new Set(repository.unloaded());
      const models = repository.models().filter((m) => repository.config(m) !== undefined && !unloaded.has(m));
      return models.every((m) => repository.available(m).length > 0);
    },
    setRouting(model, routing) {
      if (routing) overrides.set(model, routing);
      else overrides.delete(model);
      syncRoute(model);
    },
    setLabel(model, label, version) {
      if (!repository.config(model)) throw new InflowError('NOT_FOUND', `model ${model} is not in the repository`);
      if (!/^[A-Za-z][A-Za-z0-9._-]{0,63}$/.test(label)) {
        throw new InflowError('INVALID_ARGUMENT', `invalid label "${label}"; expected a name like "stable" or "canary"`);
      }
      const labels = labelOverrides.get(model) ?? new Map<string, number>();
      if (version === undefined) labels.delete(label);
      else {
        const available = repository.available(model);
        if (!available.includes(version)) {
          throw new InflowError(
            'FAILED_PRECONDITION',
            `version ${version} of model ${model} is not AVAILABLE (available: [${available.join(', ')}]); a label can only point at a serving version`,
          );
        }
        labels.set(label, version);
      }
      labelOverrides.set(model, labels);
      syncRoute(model);
    },
    async settleShadows() {
      await Promise.all([...shadows]);
    },
    async unload(loaded) {
      const batcher = batchers.get(loaded.servable);
      if (!batcher) return;
      await batcher.close();
      batchers.delete(loaded.servable);
    },
    async close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      await Promise.all([...shadows]);
      await Promise.all([...batchers.values()].map((b) => b.close()));
      batchers.clear();
    },
  };
}
