/**
 * What the four protocol clients share besides transports: checking where a request points
 * (version or label), the output filter, TF SignatureDefs and OIP tensor metadata as TensorSpecs,
 * and version texts as numbers.
 */
import { InflowError } from '../errors.ts';
import type { TensorSpec } from '../runtime/servable.ts';
import type { InferRequest } from '../serving/types.ts';
import { dtypeOfTfDataType, oipDatatype } from '../tensor/codecs/index.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { endpointName, type RemoteEndpoint } from './remote-errors.ts';

/** Where a request points: a version, a label, or neither (the server's choice, usually the latest). */
export type Target = { model: string; version?: number; label?: string };

/**
 * Checks a request's model, version and label before anything is sent. `labels` is false for the
 * Open Inference Protocol, which has no version labels.
 */
export function checkTarget(endpoint: RemoteEndpoint, request: Pick<InferRequest, 'model' | 'version' | 'label'>, labels: boolean): Target {
  const where = endpointName(endpoint);
  if (typeof request.model !== 'string' || request.model === '') {
    throw new InflowError('INVALID_ARGUMENT', `${where}: the model name is empty; expected the name of a model`);
  }
  const target: Target = { model: request.model };
  if (request.version !== undefined) {
    if (!Number.isSafeInteger(request.version) || request.version < 0) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `${where}: model "${request.model}": version ${request.version} is not valid; expected a non-negative integer`,
      );
    }
    target.version = request.version;
  }
  if (request.label !== undefined) {
    if (target.version !== undefined) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `${where}: model "${request.model}": both version ${target.version} and label "${request.label}" are given; expected one of them`,
      );
    }
    if (!labels) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `${where}: model "${request.model}": version label "${request.label}" cannot be sent: the Open Inference Protocol has no version labels; ` +
          'expected a version number (or the tfserving-rest / tfserving-grpc protocol, which carry labels)',
      );
    }
    target.label = request.label;
  }
  return target;
}

/** URL path segment of a model or label (TF Serving and OIP URL-decode them). */
export const segment = (text: string): string => encodeURIComponent(text);

/**
 * The requested outputs of `outputs` (all when `names` is absent), for protocols without a
 * server-side filter (TF Serving REST). An unknown name is INVALID_ARGUMENT, as servers answer.
 */
export function pickOutputs(
  endpoint: RemoteEndpoint,
  model: string,
  outputs: Record<string, Tensor>,
  names: readonly string[] | undefined,
): Record<string, Tensor> {
  if (names === undefined || names.length === 0) return outputs;
  const picked: Record<string, Tensor> = {};
  for (const name of names) {
    const tensor = Object.hasOwn(outputs, name) ? outputs[name] : undefined;
    if (!tensor) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `${endpointName(endpoint)}: model "${model}" has no output "${name}"; expected one of ${Object.keys(outputs).join(', ')}`,
      );
    }
    picked[name] = tensor;
  }
  return picked;
}

/** A version as servers write it (`"3"`, `3`, a Long-like string); undefined when it is no integer. */
export function versionNumber(value: unknown): number | undefined {
  const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim() : undefined;
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** inflow's platform name for an OIP platform string (the reverse of the server's mapping; others as they are). */
export function localPlatform(platform: unknown): string {
  if (typeof platform !== 'string') return '';
  if (platform === 'onnxruntime_onnx') return 'onnx';
  return platform.startsWith('inflow_') ? platform.slice('inflow_'.length) : platform;
}

/** A TensorInfo of a TF SignatureDef, as JSON (REST) or a proto-loader object (gRPC). */
interface TensorInfoLike {
  dtype?: unknown;
  tensor_shape?: { dim?: { size?: unknown }[] | null; unknown_rank?: boolean } | null;
}

interface SignatureDefLike {
  inputs?: Record<string, TensorInfoLike> | null;
  outputs?: Record<string, TensorInfoLike> | null;
  method_name?: string;
}

function specsOf(map: Record<string, TensorInfoLike> | null | undefined): TensorSpec[] {
  return Object.entries(map ?? {}).map(([name, info]) => ({
    name,
    dtype: dtypeOfTfDataType(info.dtype, name),
    // Unknown rank has no dims to give: an empty shape, as for a scalar.
    shape: info.tensor_shape?.unknown_rank === true ? [] : (info.tensor_shape?.dim ?? []).map((d) => Number(d.size ?? -1)),
  }));
}

/**
 * The inputs and outputs of a model's `serving_default` signature (else its only predict
 * signature) from a SignatureDef map. FAILED_PRECONDITION when there is none.
 */
export function specsOfSignatureDefs(
  endpoint: RemoteEndpoint,
  model: string,
  signatures: Record<string, SignatureDefLike> | null | undefined,
): { inputs: TensorSpec[]; outputs: TensorSpec[] } {
  const all = signatures ?? {};
  const predict = Object.values(all).filter((s) => s.method_name === 'tensorflow/serving/predict');
  const chosen = all.serving_default ?? (predict.length === 1 ? predict[0] : undefined);
  if (!chosen) {
    throw new InflowError(
      'FAILED_PRECONDITION',
      `${endpointName(endpoint)}: model "${model}" has no "serving_default" signature (has: ${Object.keys(all).join(', ') || 'none'}); expected one to predict with`,
    );
  }
  return { inputs: specsOf(chosen.inputs), outputs: specsOf(chosen.outputs) };
}

/** OIP tensor metadata (`{name, datatype, shape}`) as TensorSpecs. */
export function specsOfOipMetadata(list: unknown): TensorSpec[] {
  if (!Array.isArray(list)) return [];
  return list.map((entry: { name?: unknown; datatype?: unknown; shape?: unknown }) => {
    const name = typeof entry.name === 'string' ? entry.name : '';
    return {
      name,
      dtype: oipDatatype(entry.datatype, name),
      shape: Array.isArray(entry.shape) ? entry.shape.map(Number) : [],
    };
  });
}

/** Integer versions of a list of version texts, ascending (non-integer ones are dropped). */
export function versionList(values: unknown): number[] {
  if (!Array.isArray(values)) return [];
  return values
    .map(versionNumber)
    .filter((v): v is number => v !== undefined)
    .sort((a, b) => a - b);
}
