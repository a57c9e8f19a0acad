/**
 * The one interface every deployment mode calls (docs/architecture.md): the local InferenceService, the
 * remote clients, the Kafka endpoint. Transports translate wire formats to and from these.
 */
import type { TensorSpec } from '../runtime/servable.ts';
import type { Tensor } from '../tensor/tensor.ts';

export interface InferRequest {
  model: string;
  /** A specific version; excludes `label`. */
  version?: number;
  /** A version label (`stable`, `canary`, …); excludes `version`. */
  label?: string;
  /** Caller's id, echoed back (OIP `id`). */
  id?: string;
  inputs: Record<string, Tensor>;
  /** Only these outputs (all when absent). */
  outputs?: string[];
}

export interface InferResponse {
  model: string;
  /** The version that answered. */
  version: number;
  id?: string;
  outputs: Record<string, Tensor>;
}

export interface InferOptions {
  signal?: AbortSignal;
  /** Routing key: the same key always reaches the same version of a weighted split. */
  key?: string;
  /**
   * A route already chosen with this inferencer's {@link Inferencer.route} (the streams predict
   * operator routes each record by its key, then batches records that share a route); the
   * request then goes to `route.version` and is mirrored to `route.shadow` when set.
   */
  route?: ResolvedRoute;
}

/** Where one request goes: the version that answers, and the shadow version it is mirrored to. */
export interface ResolvedRoute {
  version: number;
  shadow?: number;
}

export interface ModelMetadata {
  name: string;
  platform: string;
  /** Versions that can answer now, ascending. */
  versions: number[];
  labels: Record<string, number>;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

/** Everything that can answer an inference request. */
export interface Inferencer {
  infer(request: InferRequest, options?: InferOptions): Promise<InferResponse>;
  metadata(model: string, version?: number): Promise<ModelMetadata>;
  ready(model?: string): Promise<boolean>;
  close(): Promise<void>;
  /**
   * Inferencers that route locally (the InferenceService) say where a request would go, so a
   * caller that batches many keys can keep weighted splits sticky per key. Remote ones route
   * on their server and leave this out.
   */
  route?(model: string, target: { version?: number; label?: string; key?: string }): ResolvedRoute;
}
