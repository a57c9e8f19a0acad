/**
 * The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`, reference (c)):
 * liveness, readiness, server and model metadata, and ModelInfer with typed `contents` or
 * `raw_input_contents`. Outputs come back raw when the request was raw (tritonclient always sends
 * raw and reads either), typed otherwise, and raw whenever an output has no typed field (FP16).
 * Triton's model repository extension is served only when the admin option is on.
 */
import { createInputGate, type DecodeLimits } from '../../serving/check-inputs.ts';
import type { TensorGate } from '../../tensor/tensor.ts';
import { requestGate } from '../served-signature.ts';
import { InflowError } from '../../errors.ts';
import type { GRPCInferenceServiceHandlers } from '../../protocol/generated/inference/GRPCInferenceService.ts';
import type { _inference_ModelMetadataResponse_TensorMetadata as TensorMetadata } from '../../protocol/generated/inference/ModelMetadataResponse.ts';
import type { InferParameter__Output } from '../../protocol/generated/inference/InferParameter.ts';
import type { ModelInferRequest__Output } from '../../protocol/generated/inference/ModelInferRequest.ts';
import type { TensorSpec } from '../../runtime/servable.ts';
import { classificationCount, isBatchedOutput, topKClassification } from '../../serving/classification.ts';
import type { InferRequest } from '../../serving/types.ts';
import { decodeRawTensor, encodeRawTensor, oipDatatype } from '../../tensor/codecs/index.ts';
import { elementCount, type Tensor } from '../../tensor/tensor.ts';
import { repositoryIndex, repositoryLoad, repositoryUnload } from '../repository-extension.ts';
import type { UnaryImpl, UnaryImpls } from './grpc-call.ts';
import type { GrpcInference } from './grpc-inference.ts';
import { contentsCount, contentsFieldOf, tensorFromContents, tensorToContents } from './oip-contents.ts';

/** The methods of GRPCInferenceService, typed by the generated code. */
type OipImpls = UnaryImpls<GRPCInferenceServiceHandlers>;

/** Routing key metadata (same name as the REST header): the same key reaches the same version of a split. */
export const ROUTING_KEY_METADATA = 'x-routing-key';

/** OIP platform names (Triton's) for inflow platforms; the others are inflow's own (as the REST transport). */
export function oipPlatform(platform: string): string {
  return platform === 'onnx' ? 'onnxruntime_onnx' : `inflow_${platform}`;
}

function invalid(message: string): InflowError {
  return new InflowError('INVALID_ARGUMENT', message);
}

/** OIP versions are strings; inflow's are decimal integers ("" = the server's choice). */
function parseVersion(text: string | undefined, model: string): number | undefined {
  if (text === undefined || text === '') return undefined;
  const version = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(version))
    throw invalid(`version "${text}" of model ${model} is not valid; expected a decimal integer version or ""`);
  return version;
}

function requireModel(name: string | undefined, field: string): string {
  if (name === undefined || name === '') throw invalid(`${field} is empty; expected the name of a model`);
  return name;
}

function readShape(name: string, shape: readonly string[]): { shape: number[]; count: number } {
  const dims = shape.map(Number);
  try {
    return { shape: dims, count: elementCount(dims) };
  } catch (error) {
    throw new InflowError('INVALID_ARGUMENT', `input "${name}": ${(error as Error).message}`, { cause: error });
  }
}

/** Decodes a ModelInferRequest's inputs; `raw` tells whether they came in raw_input_contents. */
export function decodeInferInputs(
  request: ModelInferRequest__Output,
  model: string,
  gate?: TensorGate,
): { inputs: Record<string, Tensor>; raw: boolean } {
  const list = request.inputs;
  const rawContents = request.raw_input_contents;
  const raw = rawContents.length > 0;
  if (raw && rawContents.length !== list.length) {
    throw invalid(`expected ${list.length} raw_input_contents (one per input, in order) for model '${model}', got ${rawContents.length}`);
  }
  const inputs: Record<string, Tensor> = {};
  for (const [i, input] of list.entries()) {
    const name = input.name ?? '';
    if (name === '') throw invalid(`inputs[${i}]: 'name' is empty; expected the name of a model input`);
    if (name === '__proto__') throw invalid(`inputs[${i}]: the name "__proto__" is not allowed`);
    if (Object.hasOwn(inputs, name)) throw invalid(`input "${name}" appears twice; expected unique input names`);
    const dtype = oipDatatype(input.datatype ?? '', name);
    const { shape, count } = readShape(name, input.shape);
    gate?.(name, dtype, shape);
    if (raw) {
      if (contentsCount(input.contents) > 0) {
        throw invalid(`contents field must not be specified when using raw_input_contents for '${name}' for model '${model}'`);
      }
      inputs[name] = decodeRawTensor(name, dtype, shape, rawContents[i] as Buffer);
    } else {
      inputs[name] = tensorFromContents(name, dtype, shape, count, input.contents);
    }
  }
  return { inputs, raw };
}

const REJECTED_OUTPUT_PARAMETERS = ['shared_memory_region'];

/** An int64/uint64 InferParameter as a number or decimal string; other kinds as they are. */
function parameterValue(p: InferParameter__Output | undefined): unknown {
  return p?.parameter_choice === undefined ? undefined : p[p.parameter_choice];
}

/**
 * Requested output names (undefined = all) and the class counts of those asked for with
 * Triton's `classification` parameter, rejecting extensions inflow does not implement.
 */
function requestedOutputs(request: ModelInferRequest__Output): { names: string[] | undefined; classify: Map<string, number> } {
  const outputs = request.outputs;
  const classify = new Map<string, number>();
  if (outputs.length === 0) return { names: undefined, classify };
  const names: string[] = [];
  for (const [i, output] of outputs.entries()) {
    const name = output.name ?? '';
    if (name === '') throw invalid(`outputs[${i}]: 'name' is empty; expected the name of a model output`);
    if (names.includes(name)) throw invalid(`output "${name}" is requested twice; expected unique output names`);
    for (const parameter of REJECTED_OUTPUT_PARAMETERS) {
      if (output.parameters?.[parameter] !== undefined) {
        throw new InflowError('UNIMPLEMENTED', `output "${name}": parameter '${parameter}' is not supported by inflow`);
      }
    }
    const count = classificationCount(parameterValue(output.parameters?.classification), name);
    if (count !== undefined) classify.set(name, count);
    names.push(name);
  }
  return { names, classify };
}

const tensorMetadata = (s: TensorSpec): TensorMetadata => ({ name: s.name, datatype: s.dtype, shape: [...s.shape] });

/** Options of {@link createOipHandlers}. */
export interface OipHandlerOptions {
  serverName: string;
  serverVersion: string;
  /** Serve Triton's model repository extension (else its methods answer UNIMPLEMENTED). */
  admin: boolean;
  /** False while the server shuts down: not ready. */
  accepting: () => boolean;
  /** Why a dependency (Kafka) holds server readiness back; undefined when none does. */
  notReady?: () => string | undefined;
  /** Element limits of one request, checked (with the signature) before decoding. */
  decodeLimits: DecodeLimits;
}

/** The implementations of GRPCInferenceService, by method name. */
export function createOipHandlers(inference: GrpcInference, options: OipHandlerOptions): OipImpls {
  const extensions = options.admin ? ['model_repository'] : [];

  const modelInfer: OipImpls['ModelInfer'] = async (request, context) => {
    const model = requireModel(request.model_name, 'model_name');
    const version = parseVersion(request.model_version, model);
    const gate = inference.repository
      ? requestGate(inference.repository, model, version, options.decodeLimits)
      : createInputGate(model, [], options.decodeLimits);
    const { inputs, raw } = decodeInferInputs(request, model, gate);
    const inferRequest: InferRequest = { model, inputs, ...(version !== undefined ? { version } : {}) };
    const { names: outputs, classify } = requestedOutputs(request);
    if (outputs) inferRequest.outputs = outputs;
    if (request.id) inferRequest.id = request.id;
    const key = context.metadata.get(ROUTING_KEY_METADATA)[0];
    const result = await inference.infer(inferRequest, { signal: context.signal, ...(typeof key === 'string' ? { key } : {}) });
    const names = outputs ?? Object.keys(result.outputs);
    const specs = classify.size > 0 ? (await inference.metadata(model, result.version)).outputs : [];
    const tensors = names.map((name) => {
      const tensor = result.outputs[name];
      if (!tensor) throw new InflowError('INTERNAL', `model ${model} did not produce output "${name}"`);
      const k = classify.get(name);
      return { name, tensor: k === undefined ? tensor : topKClassification(tensor, k, name, isBatchedOutput(specs, name)) };
    });
    const rawOut = raw || tensors.some(({ tensor }) => contentsFieldOf[tensor.dtype] === undefined);
    return {
      model_name: result.model,
      model_version: String(result.version),
      id: request.id ?? '',
      outputs: tensors.map(({ name, tensor }) => ({
        name,
        datatype: tensor.dtype,
        shape: [...tensor.shape],
        ...(rawOut ? {} : { contents: tensorToContents(tensor) }),
      })),
      ...(rawOut
        ? {
            raw_output_contents: tensors.map(({ tensor }) => {
              const bytes = encodeRawTensor(tensor);
              return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
            }),
          }
        : {}),
    };
  };

  const modelReady: OipImpls['ModelReady'] = async (request) => {
    const model = requireModel(request.name, 'name');
    const version = parseVersion(request.version, model);
    if (!options.accepting()) return { ready: false };
    let available: number[];
    if (inference.repository) {
      if (!inference.repository.config(model)) throw new InflowError('NOT_FOUND', `Could not find any versions of model ${model}`);
      available = inference.repository.available(model);
    } else {
      available = (await inference.metadata(model)).versions;
    }
    return { ready: version === undefined ? available.length > 0 : available.includes(version) };
  };

  const modelMetadata: OipImpls['ModelMetadata'] = async (request) => {
    const model = requireModel(request.name, 'name');
    const meta = await inference.metadata(model, parseVersion(request.version, model));
    return {
      name: meta.name,
      versions: meta.versions.map(String),
      platform: oipPlatform(meta.platform),
      inputs: meta.inputs.map(tensorMetadata),
      outputs: meta.outputs.map(tensorMetadata),
    };
  };

  const repositoryDisabled: UnaryImpl<unknown, never> = async () => {
    throw new InflowError('UNIMPLEMENTED', 'the model repository extension is disabled; start the server with the admin option on');
  };

  function repository(): NonNullable<GrpcInference['repository']> {
    if (!inference.repository) throw new InflowError('UNIMPLEMENTED', 'the model repository extension needs a local model repository');
    return inference.repository;
  }

  const repositoryIndexMethod: OipImpls['RepositoryIndex'] = async (request) => ({
    models: repositoryIndex(repository(), request.ready === true),
  });

  const repositoryModelLoad: OipImpls['RepositoryModelLoad'] = async (request) => {
    const model = requireModel(request.model_name, 'model_name');
    await repositoryLoad(repository(), model, Object.keys(request.parameters ?? {}));
    return {};
  };

  return {
    ServerLive: async () => ({ live: true }),
    ServerReady: async () => ({ ready: options.accepting() && options.notReady?.() === undefined && (await inference.ready()) }),
    ModelReady: modelReady,
    ServerMetadata: async () => ({ name: options.serverName, version: options.serverVersion, extensions }),
    ModelMetadata: modelMetadata,
    ModelInfer: modelInfer,
    RepositoryIndex: options.admin ? repositoryIndexMethod : repositoryDisabled,
    RepositoryModelLoad: options.admin ? repositoryModelLoad : repositoryDisabled,
    RepositoryModelUnload: options.admin
      ? async (request) => {
          await repositoryUnload(repository(), requireModel(request.model_name, 'model_name'));
          return {};
        }
      : repositoryDisabled,
  };
}
