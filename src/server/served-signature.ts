/**
 * Signature lookups the transports share (REST TF Serving and OIP routes, gRPC, the Kafka
 * endpoint): the loaded version's signature types TF Serving JSON, a model's single input names
 * the tensor of a raw OIP binary body, and the request gate checks inputs before they are decoded.
 */
import { InflowError } from '../errors.ts';
import type { ModelRepository } from '../repository/model-repository.ts';
import type { Signature, TensorSpec } from '../runtime/servable.ts';
import { createInputGate, type DecodeLimits } from '../serving/check-inputs.ts';
import type { TensorGate } from '../tensor/tensor.ts';

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

/**
 * The decode gate of a request to `model` (see createInputGate): checked against the named
 * version's signature, or — no version named — every ready version's (latest first: its
 * message is the one a caller sees), so a label or split that routes elsewhere is never refused.
 */
export function requestGate(repository: ModelRepository, model: string, version: number | undefined, limits: DecodeLimits): TensorGate {
  const versions = version === undefined ? [...repository.available(model)].reverse() : [version];
  const signatures: Signature[] = [];
  // A model filled from a store also takes its entity key input (one string per row).
  const entityKey = repository.config(model)?.features?.entityKey;
  for (const v of versions) {
    const loaded = repository.get(model, v);
    if (!loaded) continue;
    const sig = loaded.servable.signature;
    signatures.push(
      entityKey === undefined || sig.inputs.some((s) => s.name === entityKey)
        ? sig
        : { ...sig, inputs: [...sig.inputs, { name: entityKey, dtype: 'BYTES', shape: [-1] }] },
    );
  }
  return createInputGate(model, signatures, limits);
}
