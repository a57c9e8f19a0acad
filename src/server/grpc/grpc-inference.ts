/**
 * What the gRPC transport needs from the inference core: the Inferencer calls, the metrics
 * registry, and (for TF Serving's GetModelStatus and OIP's repository extension) the model
 * repository when the service is local. (The message types of the gRPC services are generated from
 * the .proto files: src/protocol/generated, by scripts/gen-proto.sh.)
 */
import type { ModelRepository } from '../../repository/model-repository.ts';
import type { InferenceService } from '../../serving/inference-service.ts';

/** An InferenceService (usually a LocalInference, whose repository gives per-version states). */
export type GrpcInference = Pick<InferenceService, 'infer' | 'metadata' | 'ready' | 'metrics'> & {
  readonly repository?: ModelRepository;
};
