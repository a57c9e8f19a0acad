/**
 * Open Inference Protocol v2 REST (reference (c)): server metadata, liveness and readiness, model
 * metadata and readiness, and inference with JSON bodies or the binary tensor data extension
 * (`Inference-Header-Content-Length`; binary outputs when asked for). Paths are case-sensitive.
 */
import { InflowError } from '../../errors.ts';
import type { TensorSpec } from '../../runtime/servable.ts';
import { classificationCount, isBatchedOutput, topKClassification } from '../../serving/classification.ts';
import {
  decodeOipBinaryRequest,
  decodeOipRequest,
  encodeOipBinaryResponse,
  encodeOipResponse,
  INFERENCE_HEADER_CONTENT_LENGTH,
  type OipRequest,
  type OipResponse,
  parseJsonText,
  wantsBinaryOutput,
} from '../../tensor/codecs/index.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import { requestGate, singleInput } from '../served-signature.ts';
import { readBody } from './http-exchange.ts';
import { decodeSegment, type RouteDeps, type RouteMatch, type RouteRun, routingKey } from './rest-route.ts';

const SERVER = /^\/v2\/?$/;
const HEALTH = /^\/v2\/health\/(live|ready)$/;
const MODEL = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(?:\/(ready|infer))?$/;

/** Extensions `GET /v2` announces: only what is implemented (plus `model_repository` with the admin token). */
export const OIP_EXTENSIONS = ['binary_tensor_data'] as const;

/** OIP platform names (Triton's) for inflow platforms; the others are inflow's own. */
export function oipPlatform(platform: string): string {
  return platform === 'onnx' ? 'onnxruntime_onnx' : `inflow_${platform}`;
}

const tensorMetadata = (s: TensorSpec): { name: string; datatype: string; shape: number[] } => ({
  name: s.name,
  datatype: s.dtype,
  shape: s.shape,
});

/** OIP versions are strings; inflow's are decimal integers. */
function oipVersion(text: string | undefined, model: string): number | undefined {
  if (text === undefined) return undefined;
  const version = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(version)) {
    throw new InflowError('INVALID_ARGUMENT', `version "${text}" of model ${model} is not valid; expected a decimal integer version`);
  }
  return version;
}

function anyBinary(request: OipRequest, names: readonly string[]): boolean {
  if (request.parameters?.binary_data_output === true) return true;
  if (!request.outputs) return false;
  for (const name of names) if (wantsBinaryOutput(request, name)) return true;
  return false;
}

/** The outputs with Triton's classification extension applied where an output asked for it. */
async function classified(
  request: OipRequest,
  outputs: Record<string, Tensor>,
  metadata: () => Promise<{ outputs: readonly TensorSpec[] }>,
): Promise<Record<string, Tensor>> {
  if (!request.outputs?.some((o) => o.parameters?.classification !== undefined)) return outputs;
  const specs = (await metadata()).outputs;
  const answer: Record<string, Tensor> = { ...outputs };
  for (const { name, parameters } of request.outputs) {
    const k = classificationCount(parameters?.classification, name);
    const tensor = outputs[name];
    if (k !== undefined && tensor) answer[name] = topKClassification(tensor, k, name, isBatchedOutput(specs, name));
  }
  return answer;
}

export interface OipRoutes {
  /** The route for a path under `/v2`, or undefined (404). */
  match(method: string, path: string): RouteMatch | undefined;
}

export function createOipRoutes(deps: RouteDeps): OipRoutes {
  const { inference, options } = deps;
  const repository = inference.repository;
  const extensions = options.adminToken === undefined ? OIP_EXTENSIONS : [...OIP_EXTENSIONS, 'model_repository'];
  const serverBody = JSON.stringify({ name: options.serverName, version: options.serverVersion, extensions });

  const server: RouteRun = async (x) => x.sendJson(200, serverBody);

  const health: RouteRun = async (x, m) => {
    if (m[1] === 'live') return x.sendJson(200, '{"live":true}');
    // A dependency the server waits for (Kafka) says why; OIP's body has only `ready`, `reason` is ours.
    const reason = deps.notReady();
    const ready = deps.accepting() && reason === undefined && (await inference.ready());
    // Ready but degraded (model sync cannot reach Kafka): still 200, with what is missing.
    const degraded = ready ? deps.degraded() : [];
    x.sendJson(
      ready ? 200 : 503,
      ready
        ? degraded.length === 0
          ? '{"ready":true}'
          : JSON.stringify({ ready: true, degraded })
        : reason === undefined
          ? '{"ready":false}'
          : JSON.stringify({ ready: false, reason }),
    );
  };

  const modelRoute: RouteRun = async (x, m) => {
    const model = decodeSegment(m[1] as string, 'model name');
    const version = oipVersion(m[2], model);
    if (m[3] === 'infer') return infer(x, model, version);
    if (m[3] === 'ready') {
      if (!repository.config(model)) throw new InflowError('NOT_FOUND', `Could not find any versions of model ${model}`);
      const available = repository.available(model);
      const ready = deps.accepting() && (version === undefined ? available.length > 0 : available.includes(version));
      return x.sendJson(ready ? 200 : 503, JSON.stringify({ name: model, ready }));
    }
    const meta = await inference.metadata(model, version);
    x.sendJson(
      200,
      JSON.stringify({
        name: meta.name,
        versions: meta.versions.map(String),
        platform: oipPlatform(meta.platform),
        inputs: meta.inputs.map(tensorMetadata),
        outputs: meta.outputs.map(tensorMetadata),
      }),
    );
  };

  async function infer(x: Parameters<RouteRun>[0], model: string, version: number | undefined): Promise<void> {
    const body = await readBody(x.req, options.maxBodyBytes);
    const header = x.req.headers[INFERENCE_HEADER_CONTENT_LENGTH];
    let request: OipRequest;
    // Model, dtypes, shapes and element counts are checked before any element is decoded.
    const gate = requestGate(repository, model, version, options.decodeLimits);
    if (typeof header === 'string') {
      request = decodeOipBinaryRequest(body, header, header.trim() === '0' ? singleInput(repository, model, version) : undefined, gate);
    } else {
      request = decodeOipRequest(parseJsonText(body), undefined, gate);
    }
    const key = routingKey(x);
    const signal = x.signal(options.requestTimeoutMs);
    const result = await inference.infer(
      {
        model,
        ...(version !== undefined ? { version } : {}),
        ...(request.id !== undefined ? { id: request.id } : {}),
        inputs: request.inputs,
        ...(request.outputs ? { outputs: request.outputs.map((o) => o.name) } : {}),
      },
      key !== undefined ? { signal, key } : { signal },
    );
    const response: OipResponse = {
      modelName: model,
      modelVersion: String(result.version),
      ...(request.id !== undefined ? { id: request.id } : {}),
      outputs: await classified(request, result.outputs, () => inference.metadata(model, result.version)),
    };
    if (!anyBinary(request, Object.keys(result.outputs))) return x.sendJson(200, encodeOipResponse(response));
    const encoded = encodeOipBinaryResponse(response, request);
    const headers: Record<string, string> =
      encoded.headerLength === undefined ? {} : { [INFERENCE_HEADER_CONTENT_LENGTH]: String(encoded.headerLength) };
    x.sendChunks(200, 'application/octet-stream', encoded.chunks, encoded.byteLength, headers);
  }

  return {
    match(method, path) {
      if (path.startsWith('/v2/models/')) {
        const m = MODEL.exec(path);
        if (!m) return undefined;
        const kind = m[3];
        if (kind === 'infer') return method === 'POST' ? { route: 'v2_infer', access: 'inference', run: modelRoute, match: m } : undefined;
        if (method !== 'GET') return undefined;
        return { route: kind === 'ready' ? 'v2_model_ready' : 'v2_model_metadata', access: 'inference', run: modelRoute, match: m };
      }
      if (method !== 'GET') return undefined;
      const h = HEALTH.exec(path);
      if (h) return { route: `v2_health_${h[1] as string}`, access: 'open', run: health, match: h };
      const s = SERVER.exec(path);
      if (s) return { route: 'v2_server_metadata', access: 'open', run: server, match: s };
      return undefined;
    },
  };
}
