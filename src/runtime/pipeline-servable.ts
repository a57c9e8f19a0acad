/**
 * The pipeline platform: a chain of servables served as one model. `pipeline.yaml` in the version
 * folder lists the steps; their artifacts lie in the same folder.
 *
 * ```yaml
 * steps:
 *   - name: scale                       # optional, default step<i>
 *     platform: transform
 *     options: { file: transform.yaml }  # the platform's runtime options
 *     inputs: { features: input }        # step input ← tensor name (default: the same name)
 *   - platform: onnx
 *     options: { file: gbt.onnx }
 *     outputs: { label: class_id }       # step output → tensor name (default: the same name)
 * outputs: [class_id]                    # default: the last step's outputs
 * ```
 *
 * Tensor names form one namespace: a step input that no earlier step produces becomes an input of
 * the pipeline (so the signature is the first step's inputs after mapping, plus any other
 * unproduced ones); every name is produced once. Per call only the steps the wanted outputs
 * depend on run, one after another; their errors keep their codes.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { parseConfigText, validateConfig } from '../config/load-config.ts';
import { InflowError } from '../errors.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { Platform } from './platform.ts';
import type { RunOptions, Servable, ServableContext, Signature, TensorSpec } from './servable.ts';
import { checkInputs, describeSpec, selectOutputs, throwIfAborted } from './signature-check.ts';
import { readVersionFile, versionFile } from './version-file.ts';

/** Options of the pipeline platform. */
export const pipelineOptionsSchema = z.strictObject({
  file: versionFile.default('pipeline.yaml'),
});
export type PipelineOptions = z.output<typeof pipelineOptionsSchema>;

const names = z.record(z.string().min(1), z.string().min(1));

export const pipelineFileSchema = z.strictObject({
  steps: z
    .array(
      z.strictObject({
        name: z.string().min(1).optional(),
        // No nested pipelines: a pipeline.yaml naming itself would recurse forever.
        platform: z.enum([Platform.ONNX, Platform.LOOKUP, Platform.TRANSFORM, Platform.MODULE]),
        options: z.unknown().optional(),
        inputs: names.optional(),
        outputs: names.optional(),
      }),
    )
    .min(1),
  outputs: z.array(z.string().min(1)).min(1).optional(),
});
export type PipelineFile = z.output<typeof pipelineFileSchema>;

/** Validates a step's options (naming `source` and `field` in errors) and loads it. */
export type LoadStep = (platform: Platform, context: ServableContext, source: string, field: string) => Promise<Servable>;

interface Step {
  name: string;
  servable: Servable;
  /** [step input, tensor name] */
  inputs: [string, string][];
  /** [step output, tensor name] */
  outputs: [string, string][];
}

function dimsFit(a: readonly number[], b: readonly number[]): boolean {
  if (a.length === 0 || b.length === 0) return true;
  return a.length === b.length && a.every((d, i) => d === -1 || b[i] === -1 || d === b[i]);
}

function configError(source: string, field: string, message: string): InflowError {
  return new InflowError('INVALID_CONFIG', `invalid configuration in ${source}:\n  ${field}: ${message}`, { details: { source, field } });
}

/**
 * Wires loaded steps into one servable (checks every connection's dtype and shape).
 * @throws InflowError INVALID_CONFIG naming `source` and the field.
 */
export function createPipelineServable(file: PipelineFile, servables: readonly Servable[], source: string, where: string): Servable {
  const env = new Map<string, TensorSpec>();
  const pipelineInputs: TensorSpec[] = [];
  const steps: Step[] = file.steps.map((def, i) => {
    const servable = servables[i] as Servable;
    const name = def.name ?? `step${i}`;
    const own = new Set(servable.signature.inputs.map((s) => s.name));
    for (const key of Object.keys(def.inputs ?? {})) {
      if (!own.has(key))
        throw configError(
          source,
          `steps.${i}.inputs.${key}`,
          `step "${name}" has no input "${key}"; it has ${[...own].map((n) => `"${n}"`).join(', ')}`,
        );
    }
    const inputs = servable.signature.inputs.map((spec): [string, string] => {
      const from = def.inputs?.[spec.name] ?? spec.name;
      const known = env.get(from);
      if (!known) {
        const input = { ...spec, name: from };
        env.set(from, input);
        pipelineInputs.push(input);
      } else if (known.dtype !== spec.dtype || !dimsFit(known.shape, spec.shape)) {
        throw configError(
          source,
          `steps.${i}.inputs.${spec.name}`,
          `"${from}" is ${describeSpec(known)} but step "${name}" expects ${describeSpec(spec)}`,
        );
      }
      return [spec.name, from];
    });
    const produced = new Set(servable.signature.outputs.map((s) => s.name));
    for (const key of Object.keys(def.outputs ?? {})) {
      if (!produced.has(key))
        throw configError(
          source,
          `steps.${i}.outputs.${key}`,
          `step "${name}" has no output "${key}"; it has ${[...produced].map((n) => `"${n}"`).join(', ')}`,
        );
    }
    const outputs = servable.signature.outputs.map((spec): [string, string] => {
      const to = def.outputs?.[spec.name] ?? spec.name;
      if (env.has(to))
        throw configError(
          source,
          `steps.${i}.outputs`,
          `"${to}" is already defined; rename this step's output "${spec.name}" (outputs: { ${spec.name}: another_name })`,
        );
      env.set(to, { ...spec, name: to });
      return [spec.name, to];
    });
    return { name, servable, inputs, outputs };
  });
  const outputNames = file.outputs ?? steps.at(-1)?.outputs.map(([, to]) => to) ?? [];
  const signature: Signature = {
    inputs: pipelineInputs,
    outputs: outputNames.map((n, i) => {
      const spec = env.get(n);
      if (!spec)
        throw configError(
          source,
          `outputs.${i}`,
          `"${n}" is not produced by any step; known: ${[...env.keys()].map((k) => `"${k}"`).join(', ')}`,
        );
      return spec;
    }),
  };

  return {
    signature,
    async run(inputs: Readonly<Record<string, Tensor>>, options: RunOptions = {}): Promise<Record<string, Tensor>> {
      throwIfAborted(options.signal, where);
      checkInputs(signature, inputs, where);
      const wanted = selectOutputs(signature, options.outputs, where);
      // Backwards: which steps, and which of their outputs, the wanted outputs need.
      const need = new Set(wanted);
      const plan: { step: Step; outputs: [string, string][] }[] = [];
      for (const step of steps.toReversed()) {
        const outputs = step.outputs.filter(([, to]) => need.has(to));
        if (outputs.length === 0) continue;
        plan.unshift({ step, outputs });
        for (const [, from] of step.inputs) need.add(from);
      }
      const values = new Map<string, Tensor>(Object.entries(inputs));
      for (const { step, outputs } of plan) {
        throwIfAborted(options.signal, where);
        const stepInputs = Object.fromEntries(step.inputs.map(([own, from]) => [own, values.get(from) as Tensor]));
        const result = await step.servable.run(stepInputs, {
          outputs: outputs.map(([own]) => own),
          ...(options.signal ? { signal: options.signal } : {}),
        });
        for (const [own, to] of outputs) {
          const tensor = result[own];
          if (!tensor) throw new InflowError('INTERNAL', `${where}: step "${step.name}" returned no output "${own}"`);
          values.set(to, tensor);
        }
      }
      return Object.fromEntries(wanted.map((n) => [n, values.get(n) as Tensor]));
    },
    async close(): Promise<void> {
      await Promise.allSettled(steps.map((s) => s.servable.close()));
    },
  };
}

/** Loads `pipeline.yaml` (or `options.file`) and every step in it. */
export async function loadPipelineServable(context: ServableContext, loadStep: LoadStep): Promise<Servable> {
  const options = pipelineOptionsSchema.parse(context.options);
  const path = resolve(context.dir, options.file);
  const file = validateConfig(pipelineFileSchema, parseConfigText(await readVersionFile(path, 'pipeline file'), path), path);
  const loaded: Servable[] = [];
  try {
    for (const [i, step] of file.steps.entries()) {
      throwIfAborted(context.signal, `model "${context.model}" v${context.version}`);
      const name = step.name ?? `step${i}`;
      const stepContext: ServableContext = { ...context, model: `${context.model}/${name}`, options: step.options ?? {} };
      try {
        loaded.push(await loadStep(step.platform, stepContext, path, `steps.${i}.options`));
      } catch (error) {
        const cause = InflowError.from(error);
        throw new InflowError(cause.code, `pipeline ${path}, step ${i} "${name}" (${step.platform}): ${cause.message}`, { cause });
      }
    }
    return createPipelineServable(file, loaded, path, `model "${context.model}" v${context.version}`);
  } catch (error) {
    await Promise.allSettled(loaded.map((s) => s.close()));
    throw error;
  }
}
