/**
 * TF Serving's ClassificationResult and RegressionResult from a signature's outputs, and the run
 * of Classify / Regress / MultiInference tasks over the inference core (one inference for all
 * tasks of a request). Which outputs answer (see src/server/README.md, "tf.Example inputs"):
 *
 * - **Classify**: the scores are a floating-point output `[-1, C]` (`scores`, else
 *   `probabilities`, else the only one); each Example gets all C classes in the model's order,
 *   `(label, score)`. A class is labelled by a BYTES `[-1, C]` output (`classes`, TF's convention)
 *   when the model has one; else by its index (`"0"` … `"C-1"`), except that the predicted class
 *   is labelled with its name when the model has a BYTES `[-1]` output (the predicted class name)
 *   and an integer `[-1]` output (the predicted index). A model without scores but with a
 *   `[-1]` class output (BYTES or integer) answers that one class with score 0, as TF does for a
 *   signature with classes only.
 * - **Regress**: a floating-point output `[-1]` or `[-1, 1]` (`outputs`, else `value`, else the
 *   only one) gives each Example's value.
 */
import { InflowError } from '../errors.ts';
import type { TensorSpec } from '../runtime/servable.ts';
import type { InferOptions, InferRequest, InferResponse } from '../serving/types.ts';
import { halfBitsToFloat } from '../tensor/codecs/index.ts';
import type { DType } from '../tensor/dtype.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { examplesToInputs, type TfExample } from './tf-example.ts';

/** One class of one Example (TF's `tensorflow.serving.Class`). */
export interface TfClass {
  label: string;
  score: number;
}

/** The tasks a request runs: `classify`, `regress` (MultiInference may ask for both). */
export type TfExampleTask = 'classify' | 'regress';

/** TF's method names of the tasks, as MultiInference's InferenceTask.method_name carries them. */
export const TfMethodName = {
  classify: 'tensorflow/serving/classify',
  regress: 'tensorflow/serving/regress',
} as const;

const FLOAT: ReadonlySet<DType> = new Set<DType>(['FP16', 'FP32', 'FP64']);
const INTEGER: ReadonlySet<DType> = new Set<DType>(['INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'UINT64']);

const shapeText = (s: TensorSpec): string => `${s.name} ${s.dtype} [${s.shape.join(', ')}]`;
const outputsText = (outputs: readonly TensorSpec[]): string => outputs.map(shapeText).join(', ') || 'none';

/** Picks among candidates: the first preferred name present, else the only candidate; undefined when none. */
function pick(model: string, what: string, candidates: TensorSpec[], preferred: readonly string[]): TensorSpec | undefined {
  for (const name of preferred) {
    const found = candidates.find((c) => c.name === name);
    if (found) return found;
  }
  if (candidates.length > 1) {
    throw new InflowError(
      'FAILED_PRECONDITION',
      `model "${model}" has several ${what} outputs (${outputsText(candidates)}); expected one, or one named ${preferred.map((p) => `"${p}"`).join(' or ')}`,
    );
  }
  return candidates[0];
}

/** The outputs that answer Classify. */
export interface ClassifyPlan {
  /** FP [-1, C]. */
  scores?: TensorSpec;
  /** BYTES [-1, C]: per-class labels. */
  classes?: TensorSpec;
  /** BYTES [-1]: the predicted class's name. */
  predictedName?: TensorSpec;
  /** Integer [-1]: the predicted class's index (or, without scores, BYTES/integer [-1]: the class). */
  predicted?: TensorSpec;
}

/** Which outputs answer Classify; FAILED_PRECONDITION saying what was expected when none can. */
export function classifyPlan(model: string, outputs: readonly TensorSpec[]): ClassifyPlan {
  const rank = (n: number) => (s: TensorSpec) => s.shape.length === n;
  const scores = pick(
    model,
    'score',
    outputs.filter((s) => FLOAT.has(s.dtype) && rank(2)(s)),
    ['scores', 'probabilities'],
  );
  const classes = pick(
    model,
    'class-label',
    outputs.filter((s) => s.dtype === 'BYTES' && rank(2)(s)),
    ['classes'],
  );
  const names = outputs.filter((s) => s.dtype === 'BYTES' && rank(1)(s));
  const indices = outputs.filter((s) => INTEGER.has(s.dtype) && rank(1)(s));
  if (scores) {
    const plan: ClassifyPlan = { scores };
    if (classes) plan.classes = classes;
    else if (names.length > 0 && indices.length > 0) {
      const predictedName = pick(model, 'class-name', names, ['classes', 'class']);
      const predicted = pick(model, 'class-index', indices, ['label', 'labels']);
      if (predictedName && predicted) Object.assign(plan, { predictedName, predicted });
    }
    return plan;
  }
  if (classes) return { classes };
  const predicted = pick(model, 'class', [...names, ...indices], ['classes', 'class', 'label']);
  if (predicted) return { predicted };
  throw new InflowError(
    'FAILED_PRECONDITION',
    `model "${model}" has no output to classify with (it has ${outputsText(outputs)}); expected a floating-point scores output [-1, C] such as "probabilities", or a class output [-1]`,
  );
}

/** The output that answers Regress; FAILED_PRECONDITION saying what was expected when none can. */
export function regressPlan(model: string, outputs: readonly TensorSpec[]): TensorSpec {
  const candidates = outputs.filter((s) => FLOAT.has(s.dtype) && (s.shape.length === 1 || (s.shape.length === 2 && s.shape[1] === 1)));
  const chosen = pick(model, 'regression', candidates, ['outputs', 'value']);
  if (chosen) return chosen;
  throw new InflowError(
    'FAILED_PRECONDITION',
    `model "${model}" has no output to regress with (it has ${outputsText(outputs)}); expected one floating-point output of shape [-1] or [-1, 1]`,
  );
}

const utf8 = new TextDecoder();

/** Element `i` of a tensor as a number (FP16 from its bits). */
function numberAt(tensor: Tensor, i: number): number {
  const value = (tensor.data as ArrayLike<number | bigint>)[i] as number | bigint;
  return tensor.dtype === 'FP16' ? halfBitsToFloat(value as number) : Number(value);
}

/** Element `i` of a tensor as a label: UTF-8 for BYTES, the decimal number otherwise. */
function labelAt(tensor: Tensor, i: number): string {
  const value = (tensor.data as ArrayLike<Uint8Array | number | bigint>)[i];
  return value instanceof Uint8Array ? utf8.decode(value) : String(value);
}

function output(outputs: Readonly<Record<string, Tensor>>, spec: TensorSpec, rows: number): Tensor {
  const tensor = outputs[spec.name];
  if (!tensor || tensor.shape[0] !== rows) {
    throw new InflowError('INTERNAL', `output "${spec.name}" is missing or does not have ${rows} rows`);
  }
  return tensor;
}

/** The classes of each of `rows` Examples from the outputs a {@link ClassifyPlan} names. */
export function classificationsOf(outputs: Readonly<Record<string, Tensor>>, plan: ClassifyPlan, rows: number): TfClass[][] {
  const scores = plan.scores && output(outputs, plan.scores, rows);
  const classes = plan.classes && output(outputs, plan.classes, rows);
  const predicted = plan.predicted && output(outputs, plan.predicted, rows);
  const predictedName = plan.predictedName && output(outputs, plan.predictedName, rows);
  const width = scores?.shape[1] ?? classes?.shape[1] ?? 1;
  if (scores && classes && classes.shape[1] !== width) {
    throw new InflowError('INTERNAL', `outputs "${plan.scores?.name}" and "${plan.classes?.name}" have different class counts`);
  }
  const result: TfClass[][] = [];
  for (let row = 0; row < rows; row++) {
    if (!scores && !classes && predicted) {
      result.push([{ label: labelAt(predicted, row), score: 0 }]);
      continue;
    }
    const named = predicted && predictedName ? Number(labelAt(predicted, row)) : -1;
    const entries: TfClass[] = [];
    for (let c = 0; c < width; c++) {
      const at = row * width + c;
      let label = classes ? labelAt(classes, at) : String(c);
      if (c === named && predictedName) label = labelAt(predictedName, row);
      entries.push({ label, score: scores ? numberAt(scores, at) : 0 });
    }
    result.push(entries);
  }
  return result;
}

/** The value of each of `rows` Examples from the output {@link regressPlan} chose. */
export function regressionsOf(outputs: Readonly<Record<string, Tensor>>, spec: TensorSpec, rows: number): number[] {
  const tensor = output(outputs, spec, rows);
  return Array.from({ length: rows }, (_, i) => numberAt(tensor, i));
}

/** What {@link runExampleTasks} answers, per task asked. */
export interface ExampleTaskResults {
  model: string;
  version: number;
  classifications?: TfClass[][];
  regressions?: number[];
}

/** Where the request goes: the model and, optionally, a version or label (as InferRequest). */
export type ExampleTarget = Pick<InferRequest, 'model' | 'version' | 'label'>;

/**
 * Runs the tasks on the Examples with one inference: plans the outputs from `outputs` (the
 * signature of the version that will answer), builds the inputs, infers only the outputs needed.
 */
export async function runExampleTasks(
  infer: (request: InferRequest, options?: InferOptions) => Promise<InferResponse>,
  request: {
    target: ExampleTarget;
    signature: { inputs: readonly TensorSpec[]; outputs: readonly TensorSpec[] };
    examples: readonly TfExample[];
    tasks: ReadonlySet<TfExampleTask>;
  },
  options: InferOptions = {},
): Promise<ExampleTaskResults> {
  const { target, signature, examples, tasks } = request;
  const classify = tasks.has('classify') ? classifyPlan(target.model, signature.outputs) : undefined;
  const regress = tasks.has('regress') ? regressPlan(target.model, signature.outputs) : undefined;
  const needed = new Set<string>();
  for (const spec of [classify?.scores, classify?.classes, classify?.predicted, classify?.predictedName, regress]) {
    if (spec) needed.add(spec.name);
  }
  const inputs = examplesToInputs(examples, signature.inputs);
  const response = await infer({ ...target, inputs, outputs: [...needed] }, options);
  const results: ExampleTaskResults = { model: response.model, version: response.version };
  if (classify) results.classifications = classificationsOf(response.outputs, classify, examples.length);
  if (regress) results.regressions = regressionsOf(response.outputs, regress, examples.length);
  return results;
}
