/**
 * Request-time features from the stream's state: a model configured with `features:` (see
 * model-config.ts) gets the inputs a request leaves out filled from a pipeline's store, read by
 * the request's entity key — so an RPC caller that sends only `card_id` is scored on the same
 * count and mean the stream computed, one definition of each feature for streaming and
 * request-time inference.
 *
 * The serving core does the filling; where the values come from is a {@link FeatureLookup} the
 * server gives it (over HTTP to a stream instance's interactive-query routes, or in process).
 */
import { InflowError } from '../errors.ts';
import type { FeaturesConfig } from '../repository/model-config.ts';
import type { Signature } from '../runtime/servable.ts';
import { createTensor, type Tensor, tensorStrings } from '../tensor/tensor.ts';

/** Reads one entity's stored value: undefined when the store has none. */
export type FeatureLookup = (features: FeaturesConfig, entityKey: string, signal: AbortSignal | undefined) => Promise<unknown>;

/** dtypes a filled input may have (store values are JSON numbers). */
const FILLABLE = { FP32: Float32Array, FP64: Float64Array, INT32: Int32Array } as const;

/**
 * `inputs` with the model's missing configured inputs filled by `lookup` and the entity key
 * input removed (unless the model itself takes it). Inputs the request sends are kept as sent.
 * Throws NOT_FOUND naming the entity when the store has no value for it, INVALID_ARGUMENT when
 * the entity key input is missing or a stored field is not a number.
 */
export async function fillFeatures(
  model: string,
  features: FeaturesConfig,
  signature: Signature,
  inputs: Readonly<Record<string, Tensor>>,
  lookup: FeatureLookup,
  signal?: AbortSignal,
): Promise<Record<string, Tensor>> {
  const modelTakesKey = signature.inputs.some((s) => s.name === features.entityKey);
  const out: Record<string, Tensor> = Object.fromEntries(
    Object.entries(inputs).filter(([name]) => modelTakesKey || name !== features.entityKey),
  );
  const missing = Object.keys(features.inputs).filter((name) => inputs[name] === undefined);
  if (missing.length === 0) return out;
  const keyTensor = inputs[features.entityKey];
  if (keyTensor === undefined) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      `model "${model}" needs input(s) ${missing.join(', ')}, or the entity key input "${features.entityKey}" (BYTES, one key per row) to read them from store "${features.store}"`,
    );
  }
  const keys = tensorStrings(keyTensor);
  const values = await Promise.all(keys.map((k) => lookup(features, k, signal)));
  values.forEach((v, i) => {
    if (v === undefined || v === null) {
      throw new InflowError('NOT_FOUND', `store "${features.store}" has no features for entity "${keys[i]}" (model "${model}")`, {
        details: { store: features.store, entity: keys[i] },
      });
    }
  });
  for (const name of missing) {
    const fields = features.inputs[name] as string[];
    const spec = signature.inputs.find((s) => s.name === name);
    const dtype = spec?.dtype ?? 'FP32';
    const ArrayType = FILLABLE[dtype as keyof typeof FILLABLE];
    if (ArrayType === undefined) {
      throw new InflowError(
        'FAILED_PRECONDITION',
        `input "${name}" of model "${model}" is ${dtype}; features fill FP32, FP64 or INT32 inputs`,
      );
    }
    const data = new ArrayType(keys.length * fields.length);
    values.forEach((v, row) => {
      fields.forEach((field, col) => {
        const x = (v as Record<string, unknown>)[field];
        if (typeof x !== 'number') {
          throw new InflowError(
            'INVALID_ARGUMENT',
            `store "${features.store}" value of entity "${keys[row]}" has no number "${field}" (for input "${name}" of model "${model}"); got ${JSON.stringify(x)}`,
          );
        }
        data[row * fields.length + col] = x;
      });
    });
    out[name] = createTensor(dtype, [keys.length, fields.length], data);
  }
  return out;
}
