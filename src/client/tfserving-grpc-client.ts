/**
 * The TF Serving gRPC client (`tensorflow.serving.PredictionService` / `ModelService`): Predict
 * with numeric inputs as TensorProto `tensor_content` (a view over the typed array, as Python's
 * `make_tensor_proto` sends them; BYTES in `string_val`), outputs read from `tensor_content` or
 * the typed `*_val` fields (TF Serving's default); GetModelMetadata (the SignatureDefMap in an
 * Any) and GetModelStatus for metadata and readiness.
 */
import { InflowError } from '../errors.ts';
import type { InferOptions, InferRequest, InferResponse, Inferencer, ModelMetadata } from '../serving/types.ts';
import { type TensorProtoObject, tensorFromProto, tensorToProto } from '../tensor/codecs/index.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { ClientService, clientProtos, type GrpcTransport } from './grpc-transport.ts';
import { badResponseError } from './remote-errors.ts';
import { checkTarget, specsOfSignatureDefs, type Target, versionList, versionNumber } from './remote-target.ts';

interface ModelSpecMessage {
  name?: string;
  version?: { value?: string | number } | null;
  version_label?: string;
  signature_name?: string;
}

interface PredictResponse {
  model_spec?: ModelSpecMessage | null;
  outputs?: Record<string, TensorProtoObject> | null;
}

interface ModelStatusResponse {
  model_version_status?: { version?: string | number; state?: string }[];
}

/** The ModelSpec of a target ("" signature: `serving_default`). */
function modelSpec(target: Target): ModelSpecMessage {
  const spec: ModelSpecMessage = { name: target.model, signature_name: '' };
  if (target.version !== undefined) spec.version = { value: String(target.version) };
  else if (target.label !== undefined) spec.version_label = target.label;
  return spec;
}

/** An Inferencer over a TF Serving (or inflow) gRPC endpoint. */
export function createTfServingGrpcClient(transport: GrpcTransport): Inferencer {
  const { endpoint } = transport;

  async function status(target: Target): Promise<ModelStatusResponse> {
    return transport.unary<ModelStatusResponse>(ClientService.MODEL, 'GetModelStatus', { model_spec: modelSpec(target) });
  }

  return {
    async infer(request: InferRequest, inferOptions: InferOptions = {}): Promise<InferResponse> {
      const target = checkTarget(endpoint, request, true);
      const inputs: Record<string, TensorProtoObject> = {};
      for (const [name, tensor] of Object.entries(request.inputs)) inputs[name] = tensorToProto(tensor, { content: 'tensor_content' });
      const response = await transport.unary<PredictResponse>(
        ClientService.PREDICTION,
        'Predict',
        { model_spec: modelSpec(target), inputs, output_filter: request.outputs ?? [] },
        { signal: inferOptions.signal, ...(inferOptions.key !== undefined ? { metadata: { 'x-routing-key': inferOptions.key } } : {}) },
      );
      const outputs: Record<string, Tensor> = {};
      try {
        for (const [name, proto] of Object.entries(response.outputs ?? {})) outputs[name] = tensorFromProto(proto, name);
      } catch (error) {
        throw badResponseError(endpoint, `Predict answer of model "${target.model}"`, error);
      }
      const result: InferResponse = {
        model: response.model_spec?.name || target.model,
        version: versionNumber(response.model_spec?.version?.value) ?? target.version ?? 0,
        outputs,
      };
      // TF Serving has no request id: echo the caller's.
      if (request.id !== undefined) result.id = request.id;
      return result;
    },

    async metadata(model: string, version?: number): Promise<ModelMetadata> {
      const target = checkTarget(endpoint, { model, ...(version !== undefined ? { version } : {}) }, true);
      const [response, states] = await Promise.all([
        transport.unary<{ metadata?: Record<string, { type_url?: string; value?: Uint8Array }> | null }>(
          ClientService.PREDICTION,
          'GetModelMetadata',
          { model_spec: modelSpec(target), metadata_field: ['signature_def'] },
        ),
        status({ model }),
      ]);
      const any = response.metadata?.signature_def;
      if (!any?.value) throw badResponseError(endpoint, `GetModelMetadata of model "${model}" holds no signature_def`);
      let signatures: Record<string, never>;
      try {
        const type = clientProtos().signatureDefMap;
        signatures =
          (type.toObject(type.decode(any.value), { longs: String, enums: String }) as { signature_def?: Record<string, never> })
            .signature_def ?? {};
      } catch (error) {
        throw badResponseError(endpoint, `the SignatureDefMap of model "${model}"`, error);
      }
      const specs = specsOfSignatureDefs(endpoint, model, signatures);
      const available = (states.model_version_status ?? []).filter((s) => s.state === 'AVAILABLE').map((s) => s.version);
      return { name: model, platform: 'tensorflow', versions: versionList(available), labels: {}, ...specs };
    },

    async ready(model?: string): Promise<boolean> {
      // TF Serving has no server health RPC: a connected channel is the answer without a model.
      if (model === undefined) return transport.waitForReady(transport.timeoutMs);
      try {
        const states = await status({ model });
        return (states.model_version_status ?? []).some((s) => s.state === 'AVAILABLE');
      } catch (error) {
        if (error instanceof InflowError && (error.retriable || error.code === 'NOT_FOUND')) return false;
        throw error;
      }
    },

    async close() {
      transport.close();
    },
  };
}
