/**
 * TF Serving's JSON shapes for model status (`GetModelStatusResponse` as proto3 JSON with snake_case
 * names and int64 as strings) and model metadata (the hand-assembled `metadata.signature_def`
 * nesting), derived from inflow's repository status and signatures.
 */
import { errorCodes, grpcStatusName } from '../../errors.ts';
import type { ModelStatus } from '../../repository/model-repository.ts';
import type { Signature, TensorSpec } from '../../runtime/servable.ts';
import { tfDataTypeOf } from '../../tensor/codecs/tensor-proto.ts';

/** `tensorflow.error.Code` name of an inflow error code (by its gRPC status; unknown codes are UNKNOWN). */
export function tfErrorCodeName(code: string): string {
  const spec = (errorCodes as Record<string, { grpc: number } | undefined>)[code];
  return spec ? grpcStatusName(spec.grpc) : 'UNKNOWN';
}

export interface TfModelStatusJson {
  model_version_status: Array<{ version: string; state: string; status: { error_code: string; error_message: string } }>;
}

/** `GET /v1/models/{m}[/versions/{v}]`: the versions given (all of the model's when `only` is absent). */
export function tfModelStatus(status: ModelStatus, only?: number): TfModelStatusJson {
  const versions = only === undefined ? status.versions : status.versions.filter((v) => v.version === only);
  return {
    model_version_status: versions.map((v) => ({
      version: String(v.version),
      state: v.state,
      status: v.error
        ? { error_code: tfErrorCodeName(v.error.code), error_message: v.error.message }
        : { error_code: 'OK', error_message: '' },
    })),
  };
}

function tensorInfo(spec: TensorSpec): unknown {
  return {
    dtype: tfDataTypeOf[spec.dtype],
    tensor_shape: { dim: spec.shape.map((d) => ({ size: String(d), name: '' })), unknown_rank: false },
    name: spec.name,
  };
}

/** `GET /v1/models/{m}[…]/metadata`: one `serving_default` predict signature. */
export function tfModelMetadata(model: string, version: number, signature: Signature): unknown {
  return {
    model_spec: { name: model, signature_name: '', version: String(version) },
    metadata: {
      signature_def: {
        signature_def: {
          serving_default: {
            inputs: Object.fromEntries(signature.inputs.map((s) => [s.name, tensorInfo(s)])),
            outputs: Object.fromEntries(signature.outputs.map((s) => [s.name, tensorInfo(s)])),
            method_name: 'tensorflow/serving/predict',
            defaults: {},
          },
        },
      },
    },
  };
}
