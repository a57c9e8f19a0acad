/**
 * The transform platform: declarative feature transforms from `transform.yaml` in the version
 * folder (schema and example in transform-config.ts, ops in transform-ops.ts), pure TypeScript,
 * one typed-array loop per step over the whole batch.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { parseConfigText, validateConfig } from '../config/load-config.ts';
import { InflowError } from '../errors.ts';
import type { Tensor } from '../tensor/tensor.ts';
import type { RunOptions, Servable, ServableContext, Signature, TensorSpec } from './servable.ts';
import { checkInputs, selectOutputs, throwIfAborted } from './signature-check.ts';
import { type TransformFile, transformFileSchema } from './transform-config.ts';
import { type PlannedStep, planStep } from './transform-ops.ts';
import { readVersionFile, versionFile } from './version-file.ts';

/** Options of the transform platform. */
export const transformOptionsSchema = z.strictObject({
  /** The transform definition, relative to the version folder. */
  file: versionFile.default('transform.yaml'),
});
export type TransformOptions = z.output<typeof transformOptionsSchema>;

/** A validated, planned transform. */
export interface TransformPlan {
  signature: Signature;
  steps: PlannedStep[];
}

/**
 * Checks a parsed transform file beyond its schema (names resolve, parameter lengths fit the
 * features) and plans its steps.
 * @throws InflowError INVALID_CONFIG naming `source` and the field (`steps.2.mean`).
 */
export function planTransform(file: TransformFile, source: string): TransformPlan {
  const env = new Map<string, TensorSpec>();
  for (const [i, input] of file.inputs.entries()) {
    if (env.has(input.name)) throw configError(source, `inputs.${i}.name`, `"${input.name}" is declared twice`);
    env.set(input.name, input);
  }
  const steps = file.steps.map((step, i) => {
    const planned = planStep(step, env, (field, message) => {
      throw configError(source, `steps.${i}.${field}`, `${message} (op ${step.op})`);
    });
    env.set(planned.output.name, planned.output);
    return planned;
  });
  const outputNames = file.outputs ?? [steps.at(-1)?.output.name ?? ''];
  const outputs = outputNames.map((name, i) => {
    const spec = env.get(name);
    if (!spec) throw configError(source, `outputs.${i}`, `"${name}" is not defined by any step or input`);
    return spec;
  });
  return { signature: { inputs: file.inputs, outputs }, steps };
}

function configError(source: string, field: string, message: string): InflowError {
  return new InflowError('INVALID_CONFIG', `invalid configuration in ${source}:\n  ${field}: ${message}`, { details: { source, field } });
}

/** A servable that runs a planned transform. */
export function createTransformServable(plan: TransformPlan, where: string): Servable {
  const { signature, steps } = plan;
  return {
    signature,
    async run(inputs: Readonly<Record<string, Tensor>>, options: RunOptions = {}): Promise<Record<string, Tensor>> {
      throwIfAborted(options.signal, where);
      checkInputs(signature, inputs, where);
      const wanted = selectOutputs(signature, options.outputs, where);
      const values = new Map<string, Tensor>(Object.entries(inputs));
      let rows: number | undefined;
      for (const [name, tensor] of values) {
        rows ??= tensor.shape[0];
        if (tensor.shape[0] !== rows)
          throw new InflowError(
            'INVALID_ARGUMENT',
            `${where}: input "${name}" has ${tensor.shape[0]} rows, the others ${rows}; dim 0 is the batch`,
          );
      }
      // Only the steps the wanted outputs depend on run (a failing log step must not fail a call that does not need it).
      const need = new Set(wanted);
      const plan = steps.toReversed().filter((step) => need.has(step.output.name) && step.inputs.every((name) => need.add(name)));
      for (const step of plan.toReversed()) values.set(step.output.name, step.apply(values, where));
      return Object.fromEntries(wanted.map((name) => [name, values.get(name) as Tensor]));
    },
    async close(): Promise<void> {},
  };
}

/** Loads `transform.yaml` (or `options.file`) of a version. */
export async function loadTransformServable(context: ServableContext): Promise<Servable> {
  const options = transformOptionsSchema.parse(context.options);
  const path = resolve(context.dir, options.file);
  const file = validateConfig(transformFileSchema, parseConfigText(await readVersionFile(path, 'transform file'), path), path);
  return createTransformServable(planTransform(file, path), `model "${context.model}" v${context.version}`);
}
