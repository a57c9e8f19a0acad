/**
 * The Open Inference Protocol gRPC client (`inference.GRPCInferenceService`): ModelInfer with
 * every input in `raw_input_contents` (views over the typed arrays, no per-element work), outputs
 * read from `raw_output_contents` (Triton and inflow answer raw to a raw request) or, from servers
 * that answer typed `contents` (MLServer), from those; ModelMetadata, ModelReady and ServerReady.
 */
import { Buffer } from 'node:buffer';
import { InflowError } from '../errors.ts';
import type { InferOptions, InferRequest, InferResponse, Inferencer, ModelMetadata } from '../serving/types.ts';
import { decodeRawTensor, encodeRawTensor, oipDatatype } from '../tensor/codecs/index.ts';
import type { DType } from '../tensor/dtype.ts';
import { elementCount, type Tensor, type TensorData } from '../tensor/tensor.ts';
import { ClientService, type GrpcTransport } from './grpc-transport.ts';
import { createPreflight } from './oip-preflight.ts';
import { badResponseError } from './remote-errors.ts';
import { checkTarget, localPlatform, specsOfOipMetadata, versionList, versionNumber } from './remote-target.ts';

type Int64 = string | number;

/** inference.InferTensorContents as proto-loader gives it (only the field of the dtype is set). */
interface InferTensorContents {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: Int64[];
  uint_contents?: number[];
  uint64_contents?: Int64[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Uint8Array[];
}

interface OutputTensor {
  name?: string;
  datatype?: string;
  shape?: Int64[];
  contents?: InferTensorContents | null;
}

interface ModelInferResponse {
  model_name?: string;
  model_version?: string;
  id?: string;
  outputs?: OutputTensor[];
  raw_output_contents?: Uint8Array[];
}

/**
 * A tensor from typed `contents` (the answer of servers that do not answer raw). Mirrors the
 * server's decoder in src/server/grpc/oip-contents.ts, which this layer may not import.
 */
function tensorFromContents(name: string, dtype: DType, shape: number[], contents: InferTensorContents | null | undefined): Tensor {
  const count = elementCount(shape);
  let data: TensorData;
  switch (dtype) {
    case 'BYTES':
      data = Array.from(contents?.bytes_contents ?? []);
      break;
    case 'BOOL':
      data = Uint8Array.from(contents?.bool_contents ?? [], (v) => (v ? 1 : 0));
      break;
    case 'INT64':
      data = BigInt64Array.from(contents?.int64_contents ?? [], (v) => BigInt(v));
      break;
    case 'UINT64':
      data = BigUint64Array.from(contents?.uint64_contents ?? [], (v) => BigInt(v));
      break;
    case 'FP32':
      data = Float32Array.from(contents?.fp32_contents ?? []);
      break;
    case 'FP64':
      data = Float64Array.from(contents?.fp64_contents ?? []);
      break;
    case 'INT8':
      data = Int8Array.from(contents?.int_contents ?? []);
      break;
    case 'INT16':
      data = Int16Array.from(contents?.int_contents ?? []);
      break;
    case 'INT32':
      data = Int32Array.from(contents?.int_contents ?? []);
      break;
    case 'UINT8':
      data = Uint8Array.from(contents?.uint_contents ?? []);
      break;
    case 'UINT16':
      data = Uint16Array.from(contents?.uint_contents ?? []);
      break;
    case 'UINT32':
      data = Uint32Array.from(contents?.uint_contents ?? []);
      break;
    default:
      throw new InflowError('INVALID_ARGUMENT', `output "${name}": ${dtype} has no typed contents field; expected raw_output_contents`);
  }
  if (data.length !== count) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      `output "${name}": shape [${shape.join(', ')}] needs ${count} values, contents hold ${data.length}`,
    );
  }
  return { dtype, shape, data };
}

/** An Inferencer over an OIP gRPC endpoint. */
export function createOipGrpcClient(transport: GrpcTransport): Inferencer {
  const { endpoint } = transport;

  function decodeOutputs(response: ModelInferResponse): Record<string, Tensor> {
    const list = response.outputs ?? [];
    const raw = response.raw_output_contents ?? [];
    if (raw.length > 0 && raw.length !== list.length) {
      throw new InflowError('INVALID_ARGUMENT', `${raw.length} raw_output_contents for ${list.length} outputs; expected one per output`);
    }
    const outputs: Record<string, Tensor> = {};
    for (const [i, output] of list.entries()) {
      const name = output.name ?? '';
      if (name === '' || name === '__proto__') throw new InflowError('INVALID_ARGUMENT', `outputs[${i}] has the invalid name "${name}"`);
      const dtype = oipDatatype(output.datatype, name);
      const shape = (output.shape ?? []).map(Number);
      const bytes = raw[i];
      outputs[name] = bytes ? decodeRawTensor(name, dtype, shape, bytes) : tensorFromContents(name, dtype, shape, output.contents);
    }
    return outputs;
  }

  // A pinned version must exist on the server (MLServer/KServe models have none): checked once per model.
  const preflight = createPreflight({ endpoint, binary: false, metadata: (model) => client.metadata(model) });
  const client: Inferencer = {
    async infer(request: InferRequest, inferOptions: InferOptions = {}): Promise<InferResponse> {
      const target = checkTarget(endpoint, request, false);
      await preflight(target);
      const entries = Object.entries(request.inputs);
      const message = {
        model_name: target.model,
        model_version: target.version === undefined ? '' : String(target.version),
        id: request.id ?? '',
        inputs: entries.map(([name, tensor]) => ({ name, datatype: tensor.dtype, shape: tensor.shape })),
        outputs: (request.outputs ?? []).map((name) => ({ name })),
        raw_input_contents: entries.map(([, tensor]) => {
          const bytes = encodeRawTensor(tensor);
          return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        }),
      };
      const response = await transport.unary<ModelInferResponse>(ClientService.INFERENCE, 'ModelInfer', message, {
        signal: inferOptions.signal,
        ...(inferOptions.key !== undefined ? { metadata: { 'x-routing-key': inferOptions.key } } : {}),
      });
      let outputs: Record<string, Tensor>;
      try {
        outputs = decodeOutputs(response);
      } catch (error) {
        throw badResponseError(endpoint, `ModelInfer answer of model "${target.model}"`, error);
      }
      const result: InferResponse = {
        model: response.model_name || target.model,
        version: versionNumber(response.model_version) ?? target.version ?? 0,
        outputs,
      };
      const id = response.id || request.id;
      if (id !== undefined && id !== '') result.id = id;
      return result;
    },

    async metadata(model: string, version?: number): Promise<ModelMetadata> {
      const target = checkTarget(endpoint, { model, ...(version !== undefined ? { version } : {}) }, false);
      const body = await transport.unary<Record<string, unknown>>(ClientService.INFERENCE, 'ModelMetadata', {
        name: target.model,
        version: target.version === undefined ? '' : String(target.version),
      });
      try {
        return {
          name: typeof body.name === 'string' && body.name !== '' ? body.name : model,
          platform: localPlatform(body.platform),
          versions: versionList(body.versions),
          labels: {},
          inputs: specsOfOipMetadata(body.inputs),
          outputs: specsOfOipMetadata(body.outputs),
        };
      } catch (error) {
        throw badResponseError(endpoint, `metadata of model "${model}"`, error);
      }
    },

    async ready(model?: string): Promise<boolean> {
      try {
        if (model === undefined) {
          // Wait for the channel first (bounded by the timeout): a channel still backing off after a
          // restart of the server would fail the probe at once.
          if (!(await transport.waitForReady(transport.timeoutMs))) return false;
          return (await transport.unary<{ ready?: boolean }>(ClientService.INFERENCE, 'ServerReady', {})).ready === true;
        }
        return (
          (await transport.unary<{ ready?: boolean }>(ClientService.INFERENCE, 'ModelReady', { name: model, version: '' })).ready === true
        );
      } catch (error) {
        if (error instanceof InflowError && (error.retriable || error.code === 'NOT_FOUND')) return false;
        throw error;
      }
    },

    async close() {
      transport.close();
    },
  };
  return client;
}
