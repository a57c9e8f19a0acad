/**
 * Schema of `<repo>/<model>/config.yaml`: the one file that says how a model is served.
 * Unknown keys are errors; `runtime:` is validated by the platform's own schema (src/runtime).
 *
 * ```yaml
 * platform: onnx                       # onnx | lookup | transform | pipeline | module
 * versionPolicy: { latest: 1 }         # or { all: true } or { specific: [1, 3] }
 * labels: { stable: 1, canary: 2 }     # label → version
 * batching: { maxBatchSize: 64, maxDelayMicros: 500 }
 * routing: { split: [{ version: 1, weight: 90 }, { version: 2, weight: 10 }], shadow: { version: 2, fraction: 0.1 } }
 * warmup: { rows: 1, runs: 1 }
 * runtime: { file: model.onnx }        # platform options
 * features:                            # fill missing inputs from a pipeline's store (interactive queries)
 *   from: http://stream-0:9464         #   an `inflow stream --metrics-port` instance (it redirects to the key's owner)
 *   store: card-features               #   the store, keyed by the entity key
 *   entityKey: card_id                 #   the request input (BYTES, one key per row) naming the entity; not passed to the model
 *   inputs: { features: [count, mean] } #  model input ← the stored value's fields, in order (one row per entity)
 * ```
 */
import { z } from 'zod';

/** Model names: URL- and path-safe, no traversal (`..`, `/`), at most 128 characters. */
export const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Version folders are decimal integers (TF Serving's layout). */
export const VERSION_DIR = /^(0|[1-9]\d{0,15})$/;
const LABEL = /^[A-Za-z][A-Za-z0-9._-]{0,63}$/;

const version = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const versionPolicySchema = z.union([
  z.strictObject({ latest: z.number().int().min(1) }),
  z.strictObject({ all: z.literal(true) }),
  z.strictObject({ specific: z.array(version).min(1) }),
]);
export type VersionPolicy = z.output<typeof versionPolicySchema>;

export const batchingSchema = z
  .strictObject({
    /** Rows per batch. */
    maxBatchSize: z.number().int().min(1).default(64),
    /** How long the first queued row waits for company, µs; 0 batches what arrived together or queued while a batch ran. */
    maxDelayMicros: z.number().int().min(0).max(10_000_000).default(0),
    /** Rows that may wait; more are rejected with RESOURCE_EXHAUSTED. */
    maxQueueSize: z.number().int().min(1).default(4096),
    preferredBatchSizes: z.array(z.number().int().min(1)).optional(),
    /** Batches in flight at once per version. */
    // 2 overlaps the main thread's work on one batch with the model's work on another (measured:
    // +26 % rows/s for digits-mlp at 64 callers, bench/serving/inference-throughput.ts).
    maxConcurrentBatches: z.number().int().min(1).default(2),
    /** With no batch in flight, a request does not wait out maxDelayMicros (batch when busy, not when idle). */
    idleDispatch: z.boolean().default(true),
  })
  // Checked here so a bad combination fails the config load, not the first request.
  .refine((b) => b.maxQueueSize >= b.maxBatchSize, { message: 'maxQueueSize must be at least maxBatchSize', path: ['maxQueueSize'] })
  .refine((b) => (b.preferredBatchSizes ?? []).every((n) => n <= b.maxBatchSize), {
    message: 'preferredBatchSizes must not exceed maxBatchSize',
    path: ['preferredBatchSizes'],
  });
export type BatchingConfig = z.output<typeof batchingSchema>;

export const routingSchema = z.strictObject({
  split: z
    .array(z.strictObject({ version, weight: z.number().min(0) }))
    .min(1)
    .optional(),
  shadow: z.strictObject({ version, fraction: z.number().min(0).max(1) }).optional(),
});
export type RoutingConfig = z.output<typeof routingSchema>;

export const warmupSchema = z.strictObject({
  /**
   * An Open Inference Protocol JSON request (`{"inputs": [{name, shape, datatype, data}]}`) in the
   * model folder, used as the warm-up input instead of generated zeros — for models whose
   * lookups or rules reject zeros and empty strings.
   */
  samples: z
    .string()
    .regex(/^[^/\\]+(\/[^/\\]+)*$/, 'expected a relative path inside the model folder')
    .refine((p) => !p.split('/').includes('..'), 'must not leave the model folder')
    .optional(),
  /** Rows per warm-up call (inputs are generated from the signature: zeros, empty strings). */
  rows: z.number().int().min(1).max(4096).default(1),
  /** Warm-up calls before the version is AVAILABLE; 0 disables warm-up. */
  runs: z.number().int().min(0).max(1000).default(1),
});

/** Inputs filled from a pipeline's state store by the request's entity key (src/serving/feature-fill.ts). */
export const featuresSchema = z.strictObject({
  /** An `inflow stream --metrics-port` instance of the pipeline; one that does not own a key redirects to the one that does. */
  from: z.url({ protocol: /^https?$/, error: 'expected the http(s) URL of an `inflow stream --metrics-port` instance' }),
  /** The store to read, keyed by the entity key. */
  store: z.string().min(1),
  /** The request input (BYTES, one key per row) naming the entity; not passed to the model unless it is one of its inputs. */
  entityKey: z.string().min(1),
  /** Model input → the stored value's fields, in order (one row per entity); filled only when the request leaves the input out. */
  inputs: z
    .record(z.string().min(1), z.array(z.string().min(1)).min(1))
    .refine((o) => Object.keys(o).length > 0, 'name at least one input'),
});
export type FeaturesConfig = z.output<typeof featuresSchema>;

export const modelConfigSchema = z.strictObject({
  platform: z.enum(['onnx', 'lookup', 'transform', 'pipeline', 'module']),
  versionPolicy: versionPolicySchema.default({ latest: 1 }),
  labels: z.record(z.string().regex(LABEL, 'expected a label like "stable" or "canary"'), version).default({}),
  batching: batchingSchema.default(batchingSchema.parse({})),
  routing: routingSchema.optional(),
  warmup: warmupSchema.default(warmupSchema.parse({})),
  runtime: z.record(z.string(), z.unknown()).default({}),
  /** Fill inputs a request leaves out from a pipeline's state store (interactive queries), by the request's entity key. */
  features: featuresSchema.optional(),
});
export type ModelConfig = z.output<typeof modelConfigSchema>;

/** Applies a version policy to the versions on disk (ascending result). */
export function selectVersions(policy: VersionPolicy, versions: readonly number[]): number[] {
  const sorted = [...new Set(versions)].sort((a, b) => a - b);
  if ('latest' in policy) return sorted.slice(-policy.latest);
  if ('all' in policy) return sorted;
  const wanted = new Set(policy.specific);
  return sorted.filter((v) => wanted.has(v));
}
