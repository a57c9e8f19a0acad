/**
 * What the gRPC transport needs from the inference core: the Inferencer calls, the metrics
 * registry, and (for TF Serving's GetModelStatus and OIP's repository extension) the model
 * repository when the service is local.
 */
import type { ModelRepository } from '../../repository/model-repository.ts';
import type { InferenceService } from '../../serving/inference-service.ts';

/** An InferenceService (usually a LocalInference, whose repository gives per-version states). */
export type GrpcInference = Pick<InferenceService, 'infer' | 'metadata' | 'ready' | 'metrics'> & {
  readonly repository?: ModelRepository;
};

/** int64 as @grpc/proto-loader gives it with `longs: String` (numbers accepted too). */
export type Int64 = string | number;

/** A tensorflow.serving.ModelSpec message object. */
export interface ModelSpecMessage {
  name?: string;
  version?: { value?: Int64 } | null;
  version_label?: string;
  signature_name?: string;
}
