/**
 * A servable: one loaded model version that turns named input tensors into named output
 * tensors (TF Serving's term). Every backend (onnx, lookup, transform, pipeline, module)
 * implements it; the repository loads them and the serving layer batches calls into them.
 */
import type { DType } from '../tensor/dtype.ts';
import type { Tensor } from '../tensor/tensor.ts';

/** One input or output of a signature. `-1` marks a dynamic dimension; dim 0 is the batch. */
export interface TensorSpec {
  name: string;
  dtype: DType;
  shape: number[];
}

/** What a servable takes and gives (TF Serving's SignatureDef, OIP's model metadata). */
export interface Signature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export interface RunOptions {
  signal?: AbortSignal;
  /** Only these outputs are needed (all when absent). */
  outputs?: readonly string[];
}

/** A loaded model version. */
export interface Servable {
  readonly signature: Signature;
  /**
   * Runs one batch: dim 0 of every input is the batch; every output has the same dim 0, row i
   * answering input row i. Must not block the event loop for long (onnx runs in a worker).
   */
  run(inputs: Readonly<Record<string, Tensor>>, options?: RunOptions): Promise<Record<string, Tensor>>;
  /** Releases everything the version holds (sessions, workers, memory). */
  close(): Promise<void>;
}

/** What a loader gets. `options` were validated by the platform's schema. */
export interface ServableContext {
  /** Folder of this version: `<repo>/<model>/<version>/`. */
  dir: string;
  model: string;
  version: number;
  options: unknown;
  signal?: AbortSignal;
}

/** Loads one version of one platform. Throws InflowError (INVALID_CONFIG, FAILED_PRECONDITION, …) with the file named. */
export type ServableLoader = (context: ServableContext) => Promise<Servable>;
