/**
 * OpenTelemetry tracing, off by default. {@link startTracing} (the CLI calls it at start when the
 * standard `OTEL_*` environment variables ask for traces) registers the SDK: a tracer provider
 * with a batch span processor and the OTLP/HTTP protobuf exporter, the AsyncLocalStorage context
 * manager and the W3C Trace Context propagator. Until then {@link tracingActive} is false and
 * every hook in the transports and the streams runtime returns at its first line: the SDK is not
 * even loaded (dynamic import), so tracing off costs one boolean test per hop.
 *
 * Environment (OpenTelemetry SDK configuration, https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/):
 * - `OTEL_SDK_DISABLED=true` — off whatever else is set.
 * - `OTEL_TRACES_EXPORTER` — `otlp` turns tracing on, `console` prints spans to stdout, `none` (the
 *   default here, unlike the spec's `otlp`: inflow never sends data anywhere unasked). Setting
 *   `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` alone also turns it on.
 * - `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`, `_HEADERS`, `_TIMEOUT` — read by the exporter itself.
 *   `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL` must be `http/protobuf` (the default).
 * - `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` — the resource.
 * - `OTEL_TRACES_SAMPLER` (`always_on`, `always_off`, `traceidratio`, `parentbased_always_on` —
 *   the default —, `parentbased_always_off`, `parentbased_traceidratio`) and `OTEL_TRACES_SAMPLER_ARG`.
 * - `OTEL_BSP_SCHEDULE_DELAY` (ms), `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`.
 */
import {
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type * as Sdk from '@opentelemetry/sdk-trace';
import type { Sampler, SpanExporter } from '@opentelemetry/sdk-trace';
import { InflowError } from '../errors.ts';

/** What {@link startTracing} started; `shutdown` flushes the spans still queued. */
export interface TracingHandle {
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** Options of {@link startTracing}. */
export interface TracingOptions {
  /** Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** `service.name` when `OTEL_SERVICE_NAME` is unset (e.g. `inflow-serve`). */
  readonly serviceName?: string;
  /** An SDK span exporter instead of the one the environment names (tests, custom backends). */
  readonly exporter?: unknown;
}

let active = false;
let tracer: Tracer | undefined;

/** True once {@link startTracing} registered the SDK (and until its handle shut down). */
export function tracingActive(): boolean {
  return active;
}

/** inflow's tracer (the API's no-op tracer while tracing is off). */
export function inflowTracer(): Tracer {
  tracer ??= trace.getTracer('inflow');
  return tracer;
}

/** Which exporter the environment asks for, or undefined when tracing stays off. */
export function tracesExporterFromEnv(env: Readonly<Record<string, string | undefined>>): 'otlp' | 'console' | undefined {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return undefined;
  const names = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
  for (const name of names) {
    if (name !== 'otlp' && name !== 'console' && name !== 'none') {
      throw new InflowError('INVALID_ARGUMENT', `OTEL_TRACES_EXPORTER is "${name}"; expected otlp, console or none`);
    }
  }
  if (names.includes('none')) return undefined;
  if (names.includes('otlp')) return 'otlp';
  if (names.includes('console')) return 'console';
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return 'otlp';
  return undefined;
}

function positiveInt(env: Readonly<Record<string, string | undefined>>, name: string): number | undefined {
  const text = env[name];
  if (text === undefined || text.trim() === '') return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InflowError('INVALID_ARGUMENT', `${name} is "${text}"; expected a positive integer`);
  return n;
}

type SdkModule = typeof Sdk;

function samplerFromEnv(sdk: SdkModule, env: Readonly<Record<string, string | undefined>>): Sampler {
  const name = (env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on').trim().toLowerCase();
  const argText = env.OTEL_TRACES_SAMPLER_ARG;
  const ratio = (): number => {
    const r = argText === undefined || argText.trim() === '' ? 1 : Number(argText);
    if (!(r >= 0 && r <= 1))
      throw new InflowError('INVALID_ARGUMENT', `OTEL_TRACES_SAMPLER_ARG is "${argText}"; expected a ratio from 0 to 1`);
    return r;
  };
  switch (name) {
    case 'always_on':
      return new sdk.AlwaysOnSampler();
    case 'always_off':
      return new sdk.AlwaysOffSampler();
    case 'traceidratio':
      return new sdk.TraceIdRatioBasedSampler(ratio());
    case 'parentbased_always_on':
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(ratio()) });
    default:
      throw new InflowError(
        'INVALID_ARGUMENT',
        `OTEL_TRACES_SAMPLER is "${name}"; expected always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio`,
      );
  }
}

/**
 * Starts tracing when the environment asks for it (see the module comment), or always when
 * `options.exporter` is given; returns undefined when it stays off. Bad `OTEL_*` values throw
 * INVALID_ARGUMENT naming the variable. Once per process: a second call while active throws.
 */
export async function startTracing(options: TracingOptions = {}): Promise<TracingHandle | undefined> {
  const env = options.env ?? process.env;
  const kind = options.exporter ? 'custom' : tracesExporterFromEnv(env);
  if (kind === undefined) return undefined;
  if (active) throw new InflowError('FAILED_PRECONDITION', 'tracing is already started in this process');
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const p = env[name];
    if (p !== undefined && p.trim() !== '' && p.trim() !== 'http/protobuf') {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `${name} is "${p}"; inflow exports traces over http/protobuf only (the collector's OTLP HTTP port, 4318)`,
      );
    }
  }
  const [sdk, { AsyncLocalStorageContextManager }, { W3CTraceContextPropagator, CompositePropagator, W3CBaggagePropagator }, resources] =
    await Promise.all([
      import('@opentelemetry/sdk-trace'),
      import('@opentelemetry/context-async-hooks'),
      import('@opentelemetry/core'),
      import('@opentelemetry/resources'),
    ]);
  let exporter: SpanExporter;
  if (kind === 'custom') exporter = options.exporter as SpanExporter;
  else if (kind === 'console') exporter = new sdk.ConsoleSpanExporter();
  else {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-proto');
    exporter = new OTLPTraceExporter();
  }
  const serviceName = env.OTEL_SERVICE_NAME || options.serviceName || 'inflow';
  const resource = resources
    .resourceFromAttributes({ 'service.name': serviceName })
    .merge(resources.detectResources({ detectors: [resources.resourceAttributesEnvDetector, resources.serviceNameEnvDetector] }));
  const scheduledDelayMillis = positiveInt(env, 'OTEL_BSP_SCHEDULE_DELAY');
  const maxQueueSize = positiveInt(env, 'OTEL_BSP_MAX_QUEUE_SIZE');
  const maxExportBatchSize = positiveInt(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE');
  const processor = new sdk.BatchSpanProcessor({
    exporter,
    ...(scheduledDelayMillis !== undefined ? { scheduledDelayMillis } : {}),
    ...(maxQueueSize !== undefined ? { maxQueueSize } : {}),
    ...(maxExportBatchSize !== undefined ? { maxExportBatchSize } : {}),
  });
  const provider = new sdk.TracerProvider({ resource, sampler: samplerFromEnv(sdk, env), spanProcessors: [processor] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
  trace.setGlobalTracerProvider(provider);
  tracer = trace.getTracer('inflow');
  active = true;
  // Export failures (collector away, the exporter's concurrent-export limit while a full queue is
  // flushed) drop spans; they must never fail the command that is being traced.
  const dropped = (): undefined => undefined;
  return {
    forceFlush: () => provider.forceFlush().catch(dropped),
    async shutdown() {
      active = false;
      await provider.shutdown().catch(dropped);
      trace.disable();
      propagation.disable();
      context.disable();
      tracer = undefined;
    },
  };
}

/** The W3C trace context of headers read through `get` (HTTP headers, gRPC metadata, Kafka headers). */
export function extractContext(get: (name: string) => string | undefined, parent: Context = context.active()): Context {
  return propagation.extract(parent, undefined, {
    get: (_carrier, key) => get(key),
    keys: () => ['traceparent', 'tracestate', 'baggage'],
  });
}

/** Writes the W3C trace context of `ctx` (traceparent, tracestate, baggage) through `set`. */
export function injectContext(set: (name: string, value: string) => void, ctx: Context = context.active()): void {
  propagation.inject(ctx, undefined, { set: (_carrier, key, value) => set(key, value) });
}

/** Ends `span` with an error status and the error recorded (OpenTelemetry's exception event). */
export function endWithError(span: Span, error: unknown): void {
  const e = error as { message?: string; code?: string };
  span.recordException(error instanceof Error ? error : String(error));
  if (typeof e?.code === 'string') span.setAttribute('error.type', e.code);
  span.setStatus({ code: SpanStatusCode.ERROR, message: e?.message ?? String(error) });
  span.end();
}

/** The active span's trace id and span id for log lines (empty while tracing is off). */
export function traceFields(): { trace_id?: string; span_id?: string } {
  if (!active) return {};
  const span = trace.getActiveSpan();
  if (!span) return {};
  const c = span.spanContext();
  return { trace_id: c.traceId, span_id: c.spanId };
}

/**
 * Starts the SERVER span of an incoming call whose W3C trace context is read through `get`
 * (HTTP headers, gRPC metadata); returns the span and the context to run the call in.
 */
export function startServerSpan(
  name: string,
  get: (name: string) => string | undefined,
  attributes: Record<string, string | number>,
): { span: Span; context: Context } {
  const parent = extractContext(get, ROOT_CONTEXT);
  const span = inflowTracer().startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
  return { span, context: trace.setSpan(parent, span) };
}

/** Starts a CLIENT span (child of the active context) and returns it with the context to inject. */
export function startClientSpan(name: string, attributes: Record<string, string | number>): { span: Span; context: Context } {
  const span = inflowTracer().startSpan(name, { kind: SpanKind.CLIENT, attributes });
  return { span, context: trace.setSpan(context.active(), span) };
}

/**
 * Runs `fn` in a span `name` (INTERNAL, child of the active context) that ends when `fn` returns,
 * or when the promise it returns settles; an error ends it with an error status.
 */
export function inSpan<T>(name: string, fn: () => T, attributes?: Record<string, string | number>): T {
  const span = inflowTracer().startSpan(name, attributes ? { attributes } : {});
  let out: T;
  try {
    out = context.with(trace.setSpan(context.active(), span), fn);
  } catch (e) {
    endWithError(span, e);
    throw e;
  }
  if (out instanceof Promise) {
    return out.then(
      (v: unknown) => {
        span.end();
        return v;
      },
      (e: unknown) => {
        endWithError(span, e);
        throw e;
      },
    ) as T;
  }
  span.end();
  return out;
}
