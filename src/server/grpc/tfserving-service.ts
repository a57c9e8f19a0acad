/**
 * TF Serving's gRPC API over the inference core: `tensorflow.serving.PredictionService`
 * (Predict, GetModelMetadata; Classify/Regress/MultiInference answer UNIMPLEMENTED) and
 * `tensorflow.serving.ModelService` (GetModelStatus; HandleReloadConfigRequest with `admin`: the
 * pushed model list decides which repository models are loaded — see {@link reloadConfig}).
 * Messages follow TF Serving's where it has canonical ones.
 */
import { createInputGate, DEFAULT_DECODE_LIMITS, type DecodeLimits } from '../../serving/check-inputs.ts';
import { requestGate } from '../served-signature.ts';
import { errorCodes, GrpcStatus, InflowError } from '../../errors.ts';
import type { Code } from '../../protocol/generated/tensorflow/error/Code.ts';
import type { DataType } from '../../protocol/generated/tensorflow/DataType.ts';
import type { ModelServiceHandlers } from '../../protocol/generated/tensorflow/serving/ModelService.ts';
import type { ModelSpec, ModelSpec__Output } from '../../protocol/generated/tensorflow/serving/ModelSpec.ts';
import type { PredictionServiceHandlers } from '../../protocol/generated/tensorflow/serving/PredictionService.ts';
import type { ReloadConfigRequest__Output } from '../../protocol/generated/tensorflow/serving/ReloadConfigRequest.ts';
import type { ReloadConfigResponse } from '../../protocol/generated/tensorflow/serving/ReloadConfigResponse.ts';
import type { SignatureDefMap } from '../../protocol/generated/tensorflow/serving/SignatureDefMap.ts';
import type { TensorInfo } from '../../protocol/generated/tensorflow/TensorInfo.ts';
import type { TensorProto } from '../../protocol/generated/tensorflow/TensorProto.ts';
import type { VersionState } from '../../repository/model-repository.ts';
import type { TensorSpec } from '../../runtime/servable.ts';
import type { InferRequest } from '../../serving/types.ts';
import { DEFAULT_SIGNATURE_NAME, type TensorProtoObject, tensorFromProto, tensorToProto, tfDataTypeOf } from '../../tensor/codecs/index.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import type { UnaryImpl, UnaryImpls } from './grpc-call.ts';
import { grpcStatusName } from './grpc-call.ts';
import type { GrpcInference } from './grpc-inference.ts';
import { loadGrpcProtos, SIGNATURE_DEF_MAP_TYPE_URL } from './grpc-protos.ts';
import { createTfExampleHandlers } from './tfserving-examples.ts';

/** The unary methods of PredictionService and ModelService, typed by the generated code. */
type PredictionImpls = UnaryImpls<PredictionServiceHandlers>;
type ModelImpls = UnaryImpls<ModelServiceHandlers>;

/** Where a ModelSpec points. */
interface Target {
  model: string;
  version?: number;
  label?: string;
}

function invalid(message: string): InflowError {
  return new InflowError('INVALID_ARGUMENT', message);
}

/** Reads a ModelSpec; `signature` checks signature_name against the one signature inflow models have. */
function readSpec(spec: ModelSpec__Output | undefined, checkSignature: boolean): Target {
  if (!spec) throw invalid('Missing ModelSpec');
  const model = spec.name ?? '';
  if (model === '') throw invalid('ModelSpec.name is empty; expected the name of a model');
  const target: Target = { model };
  const raw = spec.version?.value;
  if (spec.version) {
    const version = Number(raw ?? 0);
    if (!Number.isSafeInteger(version)) throw invalid(`ModelSpec.version ${String(raw)} is out of range; expected an integer below 2^53`);
    target.version = version;
  }
  if (spec.version_label !== undefined && spec.version_label !== '') {
    if (target.version !== undefined) {
      // A proto oneof keeps the last one on the wire; a hand-made message may carry both.
      throw invalid(`Both model version (${target.version}) and model version label (${spec.version_label}) cannot be supplied.`);
    }
    target.label = spec.version_label;
  }
  const signature = spec.signature_name ?? '';
  if (checkSignature && signature !== '' && signature !== DEFAULT_SIGNATURE_NAME) {
    throw new InflowError(
      'FAILED_PRECONDITION',
      `Serving signature key "${signature}" not found; model "${model}" has only "${DEFAULT_SIGNATURE_NAME}"`,
    );
  }
  return target;
}

/** The version a target names for metadata and status calls (the latest when unversioned). */
async function resolveVersion(inference: GrpcInference, target: Target): Promise<number | undefined> {
  if (target.label === undefined) return target.version;
  const metadata = await inference.metadata(target.model);
  const version = metadata.labels[target.label];
  if (version === undefined) throw invalid(`Unrecognized servable version label: ${target.label}`);
  return version;
}

function modelSpecOut(model: string, version: number, signature: string): ModelSpec {
  return { name: model, version: { value: String(version) }, signature_name: signature };
}

/** The TensorProto codec's DataType names are the generated enum's (the codec predates the generated types). */
const dataTypeOf = (spec: TensorSpec): DataType => tfDataTypeOf[spec.dtype] as DataType;

/**
 * A codec-made TensorProto as a message to send. The codec writes DataType names, decimal-string
 * int64s and Buffer bytes, all valid for the serializer; its own type is wider (it also reads
 * numbers, bigints and Longs), hence the one cast.
 */
const toMessage = (proto: TensorProtoObject): TensorProto => proto as TensorProto;

function tensorInfo(spec: TensorSpec): TensorInfo {
  return {
    name: spec.name,
    dtype: dataTypeOf(spec),
    tensor_shape: { dim: spec.shape.map((d) => ({ size: String(d) })) },
  };
}

const unimplemented =
  (method: string, hint: string): UnaryImpl<unknown, never> =>
  async () => {
    throw new InflowError('UNIMPLEMENTED', `${method} is not supported by inflow: ${hint}`);
  };

/**
 * TF Serving's HandleReloadConfigRequest over the model repository: the models the pushed
 * `model_config_list` names are loaded (each must be a folder of the repository; `base_path`,
 * platform and version policy come from the folder and its config.yaml, not from the message),
 * and every other repository model is unloaded — TF's "the config is the whole truth" semantics.
 */
async function reloadConfig(inference: GrpcInference, request: ReloadConfigRequest__Output): Promise<ReloadConfigResponse> {
  const repository = inference.repository;
  if (!repository) throw new InflowError('UNIMPLEMENTED', 'HandleReloadConfigRequest needs a local model repository');
  const config = request.config;
  if (!config?.model_config_list) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      'ReloadConfigRequest.config must hold a model_config_list (custom_model_config is not supported)',
    );
  }
  const names = config.model_config_list.config.map((c, i) => {
    if (!c.name) throw new InflowError('INVALID_ARGUMENT', `model_config_list.config[${i}].name is empty; expected a model folder name`);
    return c.name;
  });
  const known = new Set([...repository.models(), ...repository.unloaded()]);
  for (const name of names) {
    if (!known.has(name)) throw new InflowError('NOT_FOUND', `model ${name} has no folder in the model repository`);
  }
  const wanted = new Set(names);
  for (const model of repository.models()) if (!wanted.has(model) && !repository.unloaded().includes(model)) await repository.unload(model);
  for (const name of names) await repository.load(name);
  return { status: { error_code: 'OK', error_message: '' } };
}

/** Options of {@link createTfServingHandlers}. */
export interface TfServingHandlerOptions {
  /** Write Predict outputs as `tensor_content` (TF's --enable_serialization_as_tensor_content) instead of typed `*_val` fields. */
  tensorContent?: boolean;
  /** Enables HandleReloadConfigRequest (model management). */
  admin?: boolean;
  /** Element limits of one request, checked (with the signature) before decoding. Default DEFAULT_DECODE_LIMITS. */
  decodeLimits?: DecodeLimits;
}

/** The implementations of PredictionService and ModelService, by method name. */
export function createTfServingHandlers(
  inference: GrpcInference,
  options: TfServingHandlerOptions = {},
): { prediction: PredictionImpls; model: ModelImpls } {
  const content = options.tensorContent === true ? 'tensor_content' : 'typed';
  const { signatureDefMap } = loadGrpcProtos();

  const predict: PredictionImpls['Predict'] = async (request, context) => {
    const target = readSpec(request.model_spec, true);
    const inputs: Record<string, Tensor> = {};
    const limits = options.decodeLimits ?? DEFAULT_DECODE_LIMITS;
    // A label resolves to its version only inside infer(): then every ready version's signature may admit an input.
    const gate = inference.repository
      ? requestGate(inference.repository, target.model, target.version, limits)
      : createInputGate(target.model, [], limits);
    for (const [alias, proto] of Object.entries(request.inputs ?? {})) inputs[alias] = tensorFromProto(proto, alias, gate);
    const inferRequest: InferRequest = { ...target, inputs };
    const filter = request.output_filter;
    if (filter.length > 0) {
      const unique = new Set(filter);
      if (unique.size !== filter.length) throw invalid(`output_filter names an output twice: ${filter.join(', ')}; expected unique names`);
      inferRequest.outputs = filter;
    }
    const result = await inference.infer(inferRequest, { signal: context.signal });
    const outputs: Record<string, TensorProto> = {};
    for (const [name, tensor] of Object.entries(result.outputs)) outputs[name] = toMessage(tensorToProto(tensor, { content }));
    return { model_spec: modelSpecOut(result.model, result.version, DEFAULT_SIGNATURE_NAME), outputs };
  };

  const getModelMetadata: PredictionImpls['GetModelMetadata'] = async (request) => {
    const target = readSpec(request.model_spec, false);
    const fields = request.metadata_field;
    if (fields.length === 0) throw invalid('GetModelMetadataRequest must specify at least one metadata_field; expected "signature_def"');
    for (const field of fields) {
      if (field !== 'signature_def') throw invalid(`Metadata field ${field} is not supported; expected "signature_def"`);
    }
    const version = await resolveVersion(inference, target);
    const metadata = await inference.metadata(target.model, version);
    const chosen = version ?? metadata.versions.at(-1) ?? 0;
    const signatures: SignatureDefMap = {
      signature_def: {
        [DEFAULT_SIGNATURE_NAME]: {
          inputs: Object.fromEntries(metadata.inputs.map((s) => [s.name, tensorInfo(s)])),
          outputs: Object.fromEntries(metadata.outputs.map((s) => [s.name, tensorInfo(s)])),
          method_name: 'tensorflow/serving/predict',
        },
      },
    };
    const value = Buffer.from(signatureDefMap.encode(signatureDefMap.fromObject(signatures)).finish());
    return {
      model_spec: modelSpecOut(target.model, chosen, ''),
      metadata: { signature_def: { type_url: SIGNATURE_DEF_MAP_TYPE_URL, value } },
    };
  };

  const getModelStatus: ModelImpls['GetModelStatus'] = async (request) => {
    const target = readSpec(request.model_spec, false);
    const version = await resolveVersion(inference, target).catch((error: unknown) => {
      // An unknown model's label lookup fails with NOT_FOUND from metadata(): say it as TF does.
      if (error instanceof InflowError && error.code === 'NOT_FOUND') return target.version;
      throw error;
    });
    const { model } = target;
    let versions: { version: number; state: VersionState; error?: { code: string; message: string } }[];
    if (inference.repository) {
      versions = inference.repository.status(model)?.versions ?? [];
    } else {
      const metadata = await inference.metadata(model).catch(() => undefined);
      versions = (metadata?.versions ?? []).map((v) => ({ version: v, state: 'AVAILABLE' }));
    }
    if (versions.length === 0) throw new InflowError('NOT_FOUND', `Could not find any versions of model ${model}`);
    if (version !== undefined) {
      versions = versions.filter((v) => v.version === version);
      if (versions.length === 0) throw new InflowError('NOT_FOUND', `Could not find version ${version} of model ${model}`);
    }
    return {
      model_version_status: versions.map((v) => ({
        version: String(v.version),
        state: v.state,
        status: v.error
          ? {
              // gRPC status names are tensorflow.error.Code names (same numbers, same names).
              error_code: grpcStatusName(InflowError.isCode(v.error.code) ? errorCodes[v.error.code].grpc : GrpcStatus.UNKNOWN) as Code,
              error_message: v.error.message,
            }
          : { error_code: 'OK', error_message: '' },
      })),
    };
  };

  return {
    prediction: {
      Predict: predict,
      GetModelMetadata: getModelMetadata,
      ...createTfExampleHandlers(inference, {
        readSpec: (spec) => readSpec(spec, true),
        resolveVersion: (target) => resolveVersion(inference, target),
        modelSpecOut,
      }),
    },
    model: {
      GetModelStatus: getModelStatus,
      HandleReloadConfigRequest: options.admin
        ? (request) => reloadConfig(inference, request)
        : unimplemented('HandleReloadConfigRequest', 'model management is off; start the server with the admin option to enable it'),
    },
  };
}
