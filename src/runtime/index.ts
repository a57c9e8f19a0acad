/**
 * The runtime: backends that turn a model version's files into a {@link Servable}. The model
 * repository calls {@link loadServable} with a version folder and the `runtime:` section of the
 * model's config.yaml; each platform validates its own options (unknown keys are errors).
 */
import { z } from 'zod';
import { validateConfig } from '../config/load-config.ts';
import { InflowError } from '../errors.ts';
import { loadLookupServable, lookupOptionsSchema } from './lookup-servable.ts';
import { loadModuleServable, moduleOptionsSchema } from './module-servable.ts';
import { loadOnnxServable, onnxOptionsSchema } from './onnx-servable.ts';
import { type LoadStep, loadPipelineServable, pipelineOptionsSchema } from './pipeline-servable.ts';
import { isPlatform, Platform } from './platform.ts';
import type { Servable, ServableContext, ServableLoader } from './servable.ts';
import { loadTransformServable, transformOptionsSchema } from './transform-servable.ts';

export type { LookupOptions } from './lookup-servable.ts';
export type { ModuleContext, ModuleModel, ModuleOptions } from './module-servable.ts';
export type { OnnxOptions, OnnxServable } from './onnx-servable.ts';
export type { PipelineOptions } from './pipeline-servable.ts';
export type { RunOptions, Servable, ServableContext, ServableLoader, Signature, TensorSpec } from './servable.ts';
export type { TransformOptions } from './transform-servable.ts';
export { lookupOptionsSchema, moduleOptionsSchema, onnxOptionsSchema, pipelineOptionsSchema, transformOptionsSchema };
export { isPlatform, Platform };
export { runtimeLogger, setRuntimeLogger } from './runtime-logger.ts';

/** What a platform is: the schema of its options and its loader. */
export interface PlatformSpec {
  optionsSchema: z.ZodType;
  load: ServableLoader;
}

/**
 * Validates `options` with `platform`'s schema, reporting paths under `field` (`runtime.workers`).
 * @returns the options with defaults applied.
 * @throws InflowError INVALID_CONFIG naming `source`, the field and what was expected.
 */
export function validateRuntimeOptions(platform: Platform, options: unknown, source: string, field = 'runtime'): unknown {
  // Nest the schema under the field's path so every message names the full field.
  const keys = field.split('.');
  const schema = keys.reduceRight<z.ZodType>((inner, key) => z.strictObject({ [key]: inner }), platforms[platform].optionsSchema);
  const value = keys.reduceRight<unknown>((inner, key) => ({ [key]: inner }), options ?? {});
  let parsed: unknown = validateConfig(schema, value, source);
  for (const key of keys) parsed = (parsed as Record<string, unknown>)[key];
  return parsed;
}

const loadStep: LoadStep = (platform, context, source, field) =>
  platforms[platform].load({ ...context, options: validateRuntimeOptions(platform, context.options, source, field) });

/** Every platform. */
export const platforms: Record<Platform, PlatformSpec> = {
  onnx: { optionsSchema: onnxOptionsSchema, load: (context) => loadOnnxServable(context) },
  lookup: { optionsSchema: lookupOptionsSchema, load: loadLookupServable },
  transform: { optionsSchema: transformOptionsSchema, load: loadTransformServable },
  pipeline: { optionsSchema: pipelineOptionsSchema, load: (context) => loadPipelineServable(context, loadStep) },
  module: { optionsSchema: moduleOptionsSchema, load: loadModuleServable },
};

/**
 * Loads one model version: validates `context.options` (the `runtime:` section of config.yaml;
 * undefined counts as `{}`) with the platform's schema, then loads the files in `context.dir`.
 * @throws InflowError INVALID_CONFIG (unknown platform, bad options, missing or invalid files),
 *   FAILED_PRECONDITION (a file that cannot be loaded), CANCELLED (context.signal aborted).
 */
export async function loadServable(platform: string, context: ServableContext): Promise<Servable> {
  if (!isPlatform(platform)) {
    throw new InflowError(
      'INVALID_CONFIG',
      `model "${context.model}": unknown platform "${platform}"; expected one of ${Object.values(Platform).join(', ')}`,
    );
  }
  const source = `model "${context.model}" version ${context.version} (config.yaml, platform ${platform})`;
  const options = validateRuntimeOptions(platform, context.options, source);
  return platforms[platform].load({ ...context, options });
}
