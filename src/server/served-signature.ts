/**
 * Signature lookups the transports share (REST TF Serving and OIP routes, the Kafka endpoint):
 * the loaded version's signature types TF Serving JSON, and a model's single input names the
 * tensor of a raw OIP binary body.
 */
import { InflowError } from '../errors.ts';
import type { ModelRepository } from '../repository/model-repository.ts';
import type { Signature, TensorSpec } from '../runtime/servable.ts';

/** The signature of a loaded version; TF Serving's NOT_FOUND message otherwise. */
export function servedSignature(repository: ModelRepository, model: string, version: number): Signature {
  const loaded = repository.get(model, version);
  if (!loaded) throw new InflowError('NOT_FOUND', `Servable not found for request: Specific(${model}, ${version})`);
  return loaded.servable.signature;
}

/** The single input of the version that would answer (latest when none is named), for raw binary bodies. */
export function singleInput(repository: ModelRepository, model: string, version: number | undefined): TensorSpec | undefined {
  const chosen = version ?? repository.available(model).at(-1);
  const inputs = chosen === undefined ? undefined : repository.get(model, chosen)?.servable.signature.inputs;
  return inputs?.length === 1 ? inputs[0] : undefined;
}
