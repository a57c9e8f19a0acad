/**
 * The Open Inference Protocol (KServe v2) REST client: `POST /v2/models/m[/versions/v]/infer`
 * with JSON tensors or the binary tensor data extension (`oipBinary`: inputs as raw bytes after
 * the JSON header, straight from their typed arrays, and every output asked for in binary), model
 * metadata (`GET /v2/models/m[/versions/v]`) and readiness (`/v2/health/ready`,
 * `/v2/models/m/ready`). Works with inflow, Triton, MLServer and KServe.
 */
import { InflowError } from '../errors.ts';
import type { InferOptions, InferRequest, InferResponse, Inferencer, ModelMetadata } from '../serving/types.ts';
import {
  decodeOipBinaryResponse,
  encodeOipBinaryRequest,
  INFERENCE_HEADER_CONTENT_LENGTH,
  type OipRequestToEncode,
  type OipResponse,
} from '../tensor/codecs/index.ts';
import type { HttpTransport } from './http-transport.ts';
import { createPreflight } from './oip-preflight.ts';
import { badResponseError } from './remote-errors.ts';
import { checkTarget, localPlatform, segment, specsOfOipMetadata, type Target, versionList, versionNumber } from './remote-target.ts';

/** Options of {@link createOipRestClient}. */
export interface OipRestClientOptions {
  /** Use the binary tensor data extension for inputs and outputs (default false: JSON). */
  binary: boolean;
}

function modelPath(target: Target): string {
  const base = `/v2/models/${segment(target.model)}`;
  return target.version === undefined ? base : `${base}/versions/${target.version}`;
}

/** An Inferencer over an OIP REST endpoint. */
export function createOipRestClient(transport: HttpTransport, options: OipRestClientOptions): Inferencer {
  const { endpoint } = transport;

  function parseJson(body: Buffer, what: string): Record<string, unknown> {
    try {
      const value: unknown = JSON.parse(body.toString('utf8'));
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
      throw new Error('not a JSON object');
    } catch (error) {
      throw badResponseError(endpoint, what, error);
    }
  }

  // Checked once per model before its first call: a pinned version exists there, and with
  // oipBinary the server announces the binary_tensor_data extension (MLServer does not).
  const preflight = createPreflight({
    endpoint,
    binary: options.binary,
    metadata: (model) => client.metadata(model),
    serverMetadata: async () => {
      const body = parseJson((await transport.call({ method: 'GET', path: '/v2' })).body, 'server metadata');
      return {
        name: typeof body.name === 'string' ? body.name : '',
        version: typeof body.version === 'string' ? body.version : '',
        extensions: Array.isArray(body.extensions) ? body.extensions.filter((e): e is string => typeof e === 'string') : [],
      };
    },
  });
  const client: Inferencer = {
    async infer(request: InferRequest, inferOptions: InferOptions = {}): Promise<InferResponse> {
      const target = checkTarget(endpoint, request, false);
      await preflight(target);
      const toEncode: OipRequestToEncode = { inputs: request.inputs };
      if (request.id !== undefined) toEncode.id = request.id;
      if (request.outputs !== undefined && request.outputs.length > 0) toEncode.outputs = request.outputs.map((name) => ({ name }));
      if (options.binary) toEncode.parameters = { binary_data_output: true };
      // FP16 has no JSON form: it always goes binary (the extension every OIP server here speaks).
      const inputs = request.inputs;
      const encoded = encodeOipBinaryRequest(toEncode, options.binary ? () => true : (name) => inputs[name]?.dtype === 'FP16');
      const headers: Record<string, string> = {
        'content-type': encoded.headerLength === undefined ? 'application/json' : 'application/octet-stream',
      };
      if (encoded.headerLength !== undefined) headers[INFERENCE_HEADER_CONTENT_LENGTH] = String(encoded.headerLength);
      if (inferOptions.key !== undefined) headers['x-routing-key'] = inferOptions.key;
      const response = await transport.call({
        method: 'POST',
        path: `${modelPath(target)}/infer`,
        headers,
        body: encoded.chunks,
        signal: inferOptions.signal,
      });
      const header = response.headers[INFERENCE_HEADER_CONTENT_LENGTH];
      let decoded: OipResponse;
      try {
        decoded = decodeOipBinaryResponse(response.body, Array.isArray(header) ? header[0] : header);
      } catch (error) {
        throw badResponseError(endpoint, `infer answer of model "${target.model}"`, error);
      }
      const result: InferResponse = {
        model: decoded.modelName,
        // Servers that do not version (MLServer without a version) name none: the asked one, else 0.
        version: versionNumber(decoded.modelVersion) ?? target.version ?? 0,
        outputs: decoded.outputs,
      };
      const id = decoded.id ?? request.id;
      if (id !== undefined) result.id = id;
      return result;
    },

    async metadata(model: string, version?: number): Promise<ModelMetadata> {
      const target = checkTarget(endpoint, { model, ...(version !== undefined ? { version } : {}) }, false);
      const response = await transport.call({ method: 'GET', path: modelPath(target) });
      const body = parseJson(response.body, 'model metadata');
      try {
        return {
          name: typeof body.name === 'string' ? body.name : model,
          platform: localPlatform(body.platform),
          versions: versionList(body.versions),
          // OIP has no version labels.
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
        const path = model === undefined ? '/v2/health/ready' : `${modelPath({ model })}/ready`;
        // 200 is ready; anything else (503, 400 from Triton for an unknown model) is not.
        const response = await transport.request({ method: 'GET', path });
        return response.status === 200;
      } catch (error) {
        if (error instanceof InflowError && error.retriable) return false;
        throw error;
      }
    },

    async close() {
      transport.close();
    },
  };
  return client;
}
