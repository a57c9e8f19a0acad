/**
 * Fits a predict step's input mapping to the model's signature when the pipeline is built (for
 * embedded models, whose signature is known then): a mapping that names an input the model lacks,
 * leaves one out, or gives a row shape of the wrong rank fails at start with the expected shape,
 * instead of dead-lettering every record. A mapping without `shape` takes the model's row shape,
 * so 784 numbers feed a model declaring `[-1, 1, 784]` without the user reshaping by hand.
 */
import { InflowError } from '../../errors.ts';
import type { TensorSpec } from '../../runtime/servable.ts';
import type { PredictStepConfig } from './pipeline-config.ts';

type Inputs = PredictStepConfig['inputs'];

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * The step's inputs with row shapes filled from `signature` where the mapping gives none.
 * @param where prefixes messages (`pipeline.yaml: pipeline.1.predict`).
 * @throws InflowError INVALID_CONFIG naming the input, the model's declaration and what to write.
 */
export function fitInputsToSignature(inputs: Inputs, signature: readonly TensorSpec[], model: string, where: string): Inputs {
  // A source that does not report a signature (a test inferencer, say) is checked per record only.
  if (signature.length === 0) return inputs;
  const specs = new Map(signature.map((s) => [s.name, s]));
  const expected = signature.map((s) => `"${s.name}" ${s.dtype} ${shapeText(s.shape)}`).join(', ');
  for (const name of Object.keys(inputs)) {
    if (!specs.has(name)) {
      throw new InflowError('INVALID_CONFIG', `${where}.inputs.${name}: model "${model}" has no input "${name}"; its inputs: ${expected}`);
    }
  }
  const missing = signature.filter((s) => !Object.hasOwn(inputs, s.name));
  if (missing.length > 0) {
    throw new InflowError(
      'INVALID_CONFIG',
      `${where}.inputs: model "${model}" also needs ${missing.map((s) => `"${s.name}" ${s.dtype} ${shapeText(s.shape)}`).join(', ')}; map every input to a field`,
    );
  }
  const out: Record<string, Inputs[string]> = {};
  for (const [name, spec] of Object.entries(inputs)) {
    const declared = (specs.get(name) as TensorSpec).shape;
    // `.` with the tensor serde carries its own shape; an empty declared shape is ONNX's "any rank".
    if (spec.field === '.' || declared.length === 0) {
      out[name] = spec;
      continue;
    }
    const row = declared.slice(1);
    const hint = `model "${model}" declares ${specs.get(name)?.dtype} ${shapeText(declared)} (dim 0 the batch); expected shape: ${shapeText(row)}`;
    if (spec.shape === undefined) {
      // [-1, n] and [-1] are what the default (the flat list, a number) already gives.
      const needsShape = row.length > 1 && row.filter((d) => d === -1).length <= 1;
      out[name] = needsShape ? { ...spec, shape: row } : spec;
      continue;
    }
    if (spec.shape.length !== row.length) {
      const batchIncluded = spec.shape.length === declared.length ? ' (shape is the row shape, without the batch dimension)' : '';
      throw new InflowError(
        'INVALID_CONFIG',
        `${where}.inputs.${name}.shape: ${shapeText(spec.shape)} does not fit${batchIncluded}: ${hint}`,
      );
    }
    if (spec.shape.some((d, i) => d !== -1 && row[i] !== -1 && d !== row[i])) {
      throw new InflowError('INVALID_CONFIG', `${where}.inputs.${name}.shape: ${shapeText(spec.shape)} does not fit: ${hint}`);
    }
    out[name] = spec;
  }
  return out;
}
