/**
 * TF Serving gRPC Classify, Regress and MultiInference over the inference core: the request's
 * `Input` (ExampleList or ExampleListWithContext of tensorflow.Example) mapped onto the model's
 * signature as ../tf-example.ts defines, the results shaped as TF's ClassificationResult /
 * RegressionResult (../tf-example-results.ts). MultiInference runs all its tasks on one inference.
 */
import { InflowError } from '../../errors.ts';
import type { Example__Output } from '../../protocol/generated/tensorflow/Example.ts';
import type { Feature__Output } from '../../protocol/generated/tensorflow/Feature.ts';
import type { ClassificationResult } from '../../protocol/generated/tensorflow/serving/ClassificationResult.ts';
import type { Input__Output } from '../../protocol/generated/tensorflow/serving/Input.ts';
import type { ModelSpec, ModelSpec__Output } from '../../protocol/generated/tensorflow/serving/ModelSpec.ts';
import type { PredictionServiceHandlers } from '../../protocol/generated/tensorflow/serving/PredictionService.ts';
import type { RegressionResult } from '../../protocol/generated/tensorflow/serving/RegressionResult.ts';
import type { Signature } from '../../runtime/servable.ts';
import { DEFAULT_SIGNATURE_NAME } from '../../tensor/codecs/index.ts';
import { checkExampleCount, parseInt64, type TfExample, type TfFeature, withContext } from '../tf-example.ts';
import {
  type ExampleTarget,
  type ExampleTaskResults,
  runExampleTasks,
  type TfClass,
  type TfExampleTask,
  TfMethodName,
} from '../tf-example-results.ts';
import type { CallContext, UnaryImpls } from './grpc-call.ts';
import type { GrpcInference } from './grpc-inference.ts';

/** The tf.Example methods of PredictionService, typed by the generated code. */
type ExampleImpls = Pick<UnaryImpls<PredictionServiceHandlers>, 'Classify' | 'Regress' | 'MultiInference'>;

function featureOf(name: string, message: Feature__Output, where: string): TfFeature {
  if (message.float_list) return { kind: 'float', values: message.float_list.value };
  if (message.int64_list) {
    return { kind: 'int64', values: message.int64_list.value.map((v) => parseInt64(v, `${where}: feature "${name}"`)) };
  }
  if (message.bytes_list) return { kind: 'bytes', values: message.bytes_list.value };
  // A Feature with no list set holds no values (TF reads it as an empty list).
  return { kind: 'float', values: [] };
}

function exampleOf(message: Example__Output, where: string): TfExample {
  const features = message?.features?.feature ?? {};
  return new Map(Object.entries(features).map(([name, f]) => [name, featureOf(name, f, where)]));
}

/** The Examples of an Input (context merged into each); INVALID_ARGUMENT when there are none. */
export function examplesFromInput(input: Input__Output | undefined): TfExample[] {
  if (input?.example_list_with_context) {
    const { examples, context } = input.example_list_with_context;
    checkExampleCount(examples.length);
    return withContext(
      examples.map((e, i) => exampleOf(e, `example ${i}`)),
      context ? exampleOf(context, 'context') : undefined,
    );
  }
  if (input?.example_list) {
    const examples = input.example_list.examples;
    checkExampleCount(examples.length);
    return examples.map((e, i) => exampleOf(e, `example ${i}`));
  }
  throw new InflowError(
    'INVALID_ARGUMENT',
    'Input is empty; expected input.example_list or input.example_list_with_context with tf.Examples',
  );
}

/** What the handlers need from tfserving-service.ts (its ModelSpec rules, shared with Predict). */
export interface TfExampleSpecs {
  /** Reads a ModelSpec (signature_name checked); INVALID_ARGUMENT / FAILED_PRECONDITION as Predict. */
  readSpec(spec: ModelSpec__Output | undefined): ExampleTarget;
  /** The version a label names (the target's version otherwise; undefined = latest). */
  resolveVersion(target: ExampleTarget): Promise<number | undefined>;
  modelSpecOut(model: string, version: number, signature: string): ModelSpec;
}

const classificationResult = (classifications: TfClass[][]): ClassificationResult => ({
  classifications: classifications.map((classes) => ({ classes })),
});
const regressionResult = (values: number[]): RegressionResult => ({ regressions: values.map((value) => ({ value })) });

/** The Classify, Regress and MultiInference implementations of PredictionService. */
export function createTfExampleHandlers(inference: GrpcInference, specs: TfExampleSpecs): ExampleImpls {
  /** The signature of the version that will answer (the latest when unversioned), with TF's not-found text. */
  async function signatureOf(target: ExampleTarget): Promise<{ target: ExampleTarget; signature: Signature }> {
    const version = await specs.resolveVersion(target);
    try {
      const metadata = await inference.metadata(target.model, version);
      // A label is pinned to the version whose signature the Examples fill.
      return { target: { model: target.model, ...(version !== undefined ? { version } : {}) }, signature: metadata };
    } catch (error) {
      if (!(error instanceof InflowError && error.code === 'NOT_FOUND')) throw error;
      const which = version === undefined ? `Latest(${target.model})` : `Specific(${target.model}, ${version})`;
      throw new InflowError('NOT_FOUND', `Servable not found for request: ${which}`, { cause: error });
    }
  }

  async function run(
    spec: ModelSpec__Output | undefined,
    input: Input__Output | undefined,
    tasks: ReadonlySet<TfExampleTask>,
    context: CallContext,
  ): Promise<ExampleTaskResults> {
    const resolved = await signatureOf(specs.readSpec(spec));
    const examples = examplesFromInput(input);
    return runExampleTasks((r, o) => inference.infer(r, o), { ...resolved, examples, tasks }, { signal: context.signal });
  }

  return {
    async Classify(request, context) {
      const results = await run(request.model_spec, request.input, new Set(['classify']), context);
      return {
        model_spec: specs.modelSpecOut(results.model, results.version, DEFAULT_SIGNATURE_NAME),
        result: classificationResult(results.classifications ?? []),
      };
    },
    async Regress(request, context) {
      const results = await run(request.model_spec, request.input, new Set(['regress']), context);
      return {
        model_spec: specs.modelSpecOut(results.model, results.version, DEFAULT_SIGNATURE_NAME),
        result: regressionResult(results.regressions ?? []),
      };
    },
    async MultiInference(request, context) {
      const tasks = request.tasks;
      const first = tasks[0];
      if (!first) throw new InflowError('INVALID_ARGUMENT', 'MultiInferenceRequest has no tasks; expected at least one InferenceTask');
      const methods: TfExampleTask[] = [];
      const where = JSON.stringify(specs.readSpec(first.model_spec));
      for (const [i, task] of tasks.entries()) {
        const target = specs.readSpec(task.model_spec);
        if (JSON.stringify(target) !== where) {
          throw new InflowError(
            'INVALID_ARGUMENT',
            `All ModelSpecs in a MultiInferenceRequest must access the same model, version and label; task ${i} names ${JSON.stringify(target)}, task 0 ${where}`,
          );
        }
        const method = (Object.keys(TfMethodName) as TfExampleTask[]).find((m) => TfMethodName[m] === task.method_name);
        if (method === undefined) {
          throw new InflowError(
            'INVALID_ARGUMENT',
            `Unsupported signature method_name: ${task.method_name ?? ''}; expected "${TfMethodName.classify}" or "${TfMethodName.regress}"`,
          );
        }
        if (methods.includes(method)) {
          throw new InflowError(
            'INVALID_ARGUMENT',
            `Duplicate evaluation of signature: ${DEFAULT_SIGNATURE_NAME} (task ${i} repeats ${task.method_name}); expected each method at most once`,
          );
        }
        methods.push(method);
      }
      const results = await run(first.model_spec, request.input, new Set(methods), context);
      const modelSpec = specs.modelSpecOut(results.model, results.version, DEFAULT_SIGNATURE_NAME);
      return {
        results: methods.map((method) =>
          method === 'classify'
            ? { model_spec: modelSpec, classification_result: classificationResult(results.classifications ?? []) }
            : { model_spec: modelSpec, regression_result: regressionResult(results.regressions ?? []) },
        ),
      };
    },
  };
}
