/**
 * What the monitoring scene (./demo-monitoring.ts) stands on: the shifting digits stream, the
 * three versions of digits-mlp with the reference profiles published with them, and the scoring
 * pipeline that follows the models topic with digits-mlp embedded and writes a prediction log.
 *
 * The shift: from event `shiftAt` on, every image arrives moved SHIFT_PIXELS to the right (its
 * left column blank), as if the camera had moved. models/build.py trains version 3 on images moved
 * the same way (variants/digits-mlp-shifted) and writes version 2 as that model with its output
 * layer's weights shuffled (variants/digits-mlp-shuffled): a deliberately broken export.
 */
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { publishModel, startRepositorySync } from '../delivery/index.ts';
import { loadSyncPolicy } from '../delivery/sync-policy.ts';
import type { KafkaClient } from '../kafka/types.ts';
import { buildReferenceProfile, PROFILE_FILE, type ReferenceRow } from '../monitoring/reference-profile.ts';
import type { Logger } from '../observability/logger.ts';
import { loadServable } from '../runtime/index.ts';
import { createLocalInference, type LocalInference } from '../serving/local-inference.ts';
import { createStreamsRunner, type StreamsRunner } from '../streams/index.ts';
import { type BuiltPipeline, buildPipeline, validatePipelineConfig } from '../streams/pipeline/index.ts';
import type { Tensor } from '../tensor/tensor.ts';

const MODELS = join(import.meta.dirname, '..', '..', 'models');

/** Pixels an image moves to the right after the shift (models/build.py's SHIFT_PIXELS). */
export const SHIFT_PIXELS = 1;

/** The model the scene rolls out. */
export const MODEL = 'digits-mlp';

/** The scene's versions of digits-mlp: where each comes from and what it is. */
export const VERSIONS = {
  1: { dir: join(MODELS, 'repository', 'digits-mlp', '1'), shifted: false, what: 'trained on the images as they were' },
  2: {
    dir: join(MODELS, 'variants', 'digits-mlp-shuffled'),
    shifted: true,
    what: 'retrained on the moved images, its output weights shuffled (a broken export)',
  },
  3: { dir: join(MODELS, 'variants', 'digits-mlp-shifted'), shifted: true, what: 'retrained on the moved images' },
} as const;
export type SceneVersion = keyof typeof VERSIONS;

/** The model's config as published: every version loaded, so a split can move between them. */
const MODEL_CONFIG = {
  platform: 'onnx',
  versionPolicy: { all: true },
  batching: { maxBatchSize: 64, maxDelayMicros: 500 },
  runtime: { file: 'model.onnx' },
};

/** An 8×8 image (64 grey levels, row-major) moved `by` pixels to the right; the columns moved in are 0. */
export function shiftRight(pixels: readonly number[], by: number = SHIFT_PIXELS): number[] {
  const out = new Array<number>(64).fill(0);
  for (let r = 0; r < 8; r++) for (let c = by; c < 8; c++) out[r * 8 + c] = pixels[r * 8 + c - by] as number;
  return out;
}

/** Topic names of one scene run. */
export function sceneTopics(run: string) {
  const p = `inflow-demo-${run}-`;
  return {
    digits: `${p}digits`,
    labels: `${p}digit-labels`,
    scored: `${p}scored`,
    predictions: `${p}predictions`,
    dlq: `${p}dlq`,
    models: `${p}models`,
    rollouts: `${p}rollouts`,
    alerts: `${p}alerts`,
    monitoring: `${p}monitoring`,
    monitorDlq: `${p}monitor-dlq`,
  } as const;
}
export type SceneTopics = ReturnType<typeof sceneTopics>;

function numbers(t: Tensor | undefined, from: number, count: number): number[] {
  const out: number[] = [];
  for (let i = from; i < from + count; i++) out.push(Number((t?.data as ArrayLike<number | bigint> | undefined)?.[i] ?? Number.NaN));
  return out;
}

/**
 * Each version's reference data, shaped like prediction-log entries: the held-out images the
 * version was validated on (moved for versions 2 and 3) with the version's own answers, from
 * ONNX Runtime; the profile built from them is what its drift is measured against.
 */
export async function referenceProfiles(pixels: readonly (readonly number[])[], logger: Logger) {
  const dir = await mkdtemp(join(tmpdir(), 'inflow-demo-reference-'));
  let service: LocalInference | undefined;
  try {
    for (const [v, spec] of Object.entries(VERSIONS))
      await cp(spec.dir, join(dir, MODEL, v), { recursive: true, preserveTimestamps: true });
    await writeFile(join(dir, MODEL, 'config.yaml'), stringifyYaml(MODEL_CONFIG));
    service = await createLocalInference({ modelRepository: dir, load: loadServable, watch: false, settleMs: 0, logger });
    const profiles = new Map<SceneVersion, Buffer>();
    for (const [v, spec] of Object.entries(VERSIONS)) {
      const rows: ReferenceRow[] = [];
      const images = pixels.map((p) => (spec.shifted ? shiftRight(p) : [...p]));
      for (let at = 0; at < images.length; at += 64) {
        const batch = images.slice(at, at + 64);
        const r = await service.infer({
          model: MODEL,
          version: Number(v),
          inputs: { input: { dtype: 'FP32', shape: [batch.length, 64], data: Float32Array.from(batch.flat()) } },
        });
        batch.forEach((image, i) =>
          rows.push({
            inputs: { input: image },
            outputs: { label: numbers(r.outputs.label, i, 1)[0], probabilities: numbers(r.outputs.probabilities, i * 10, 10) },
          }),
        );
      }
      const profile = buildReferenceProfile(rows, {
        source: `the ${images.length} held-out digits${spec.shifted ? ', moved one pixel right' : ''}, answered by version ${v}`,
        categorical: ['label'],
      });
      profiles.set(Number(v) as SceneVersion, Buffer.from(JSON.stringify(profile)));
    }
    return profiles;
  } finally {
    await service?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Publishes `version` of digits-mlp with its reference profile to the scene's models topic. */
export async function publishVersion(client: KafkaClient, topic: string, version: SceneVersion, profile: Buffer): Promise<void> {
  await publishModel({
    client,
    topic,
    model: MODEL,
    version,
    modelDir: VERSIONS[version].dir,
    config: MODEL_CONFIG,
    extraFiles: [{ path: PROFILE_FILE, data: profile }],
    publisher: 'inflow-demo',
  });
}

/** The scoring pipeline, running, and the embedded inference service it follows the models topic with. */
export interface ScenePipeline {
  readonly built: BuiltPipeline;
  readonly runner: StreamsRunner;
  /** The embedded digits-mlp (its repository, router and metrics). */
  readonly inference: LocalInference;
  /** The folder the models topic is synced into (each version's reference profile too). */
  readonly repository: string;
  close(): Promise<void>;
}

/**
 * Builds the pipeline exactly as `inflow stream` would from this YAML: digits → predict with the
 * embedded digits-mlp (following the models topic, so a split published there applies) → scored,
 * every prediction with its inputs in the prediction log.
 */
export async function startScenePipeline(run: string, topics: SceneTopics, client: KafkaClient, logger: Logger): Promise<ScenePipeline> {
  const repository = await mkdtemp(join(tmpdir(), 'inflow-demo-models-'));
  let inference: LocalInference | undefined;
  const config = validatePipelineConfig(
    {
      applicationId: `inflow-demo-monitoring-${run}`,
      errors: { policy: 'dlq', deadLetterTopic: topics.dlq },
      limits: { maxInFlight: 1024, maxPollRecords: 500, commitIntervalMs: 200, lagIntervalMs: 1000 },
      models: { digits: { embedded: { modelRepository: repository, watch: true, modelsTopic: topics.models } } },
      pipeline: [
        { source: { topic: topics.digits, key: 'string', value: 'json' } },
        {
          predict: {
            name: 'predict',
            model: MODEL,
            using: 'digits',
            inputs: { input: { field: 'pixels', dtype: 'FP32', shape: [64] } },
            outputs: { label: { tensor: 'label' }, probabilities: { tensor: 'probabilities' } },
            maxBatch: 64,
            maxDelayMs: 2,
            predictionLog: { topic: topics.predictions, includeInputs: true },
          },
        },
        { select: { fields: ['id', 'label'] } },
        { to: { topic: topics.scored, value: 'json' } },
      ],
    },
    'the monitoring scene pipeline',
  );
  const closers: Array<() => Promise<unknown>> = [() => rm(repository, { recursive: true, force: true })];
  const close = async (): Promise<void> => {
    for (const c of closers.reverse())
      await c().catch((error: unknown) => logger.warn({ err: (error as Error).message }, 'closing failed'));
  };
  try {
    const built = await buildPipeline(config, {
      source: 'the monitoring scene pipeline',
      logger,
      syncModels: async (root, topic) => {
        const sync = await startRepositorySync({ client, topic, modelRepository: root, logger, policy: await loadSyncPolicy(undefined) });
        return {
          attach: (inferencer) => {
            inference = inferencer as LocalInference;
            sync.attach(inference.repository);
          },
          close: () => sync.close(),
        };
      },
    });
    closers.push(() => built.close());
    const runner = createStreamsRunner(built.topology, { ...built.runnerOptions, client, instanceId: `demo-${run}`, logger });
    closers.push(() => runner.close());
    if (!inference) throw new Error('the pipeline did not attach its embedded model to the models topic');
    return { built, runner, inference, repository, close };
  } catch (error) {
    await close();
    throw error;
  }
}
