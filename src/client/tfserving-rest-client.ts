/**
 * The TF Serving REST client: `POST /v1/models/m[/versions/v|/labels/l]:predict` with columnar
 * `inputs` (keeps every tensor's own shape, batch dim included; BYTES as `{"b64"}`), model
 * metadata (`GET …/metadata`, the signature_def) and status (`GET /v1/models/m`).
 *
 * JSON carries no dtypes and TF's answer names no version, so the client keeps each target's
 * signature and resolved version from the metadata endpoint for `metadataTtlMs`, fetched in
 * parallel with the first predict. The version reported for an unversioned or labelled call is
 * the one metadata named (it may lag a hot swap by up to the TTL); a decode that fails against a
 * cached signature refetches it once.
 */
import { InflowError } from '../errors.ts';
import type { TensorSpec } from '../runtime/servable.ts';
import type { Clock } from '../serving/clock.ts';
import type { InferOptions, InferRequest, InferResponse, Inferencer, ModelMetadata } from '../serving/types.ts';
import { decodeTfPredictResponse, encodeTfPredictRequest, parseJsonText } from '../tensor/codecs/index.ts';
import type { Tensor } from '../tensor/tensor.ts';
import type { HttpTransport } from './http-transport.ts';
import { badResponseError } from './remote-errors.ts';
import { checkTarget, pickOutputs, segment, specsOfSignatureDefs, type Target, versionList, versionNumber } from './remote-target.ts';

/** Options of {@link createTfServingRestClient}. */
export interface TfServingRestClientOptions {
  /** Time source of the signature cache. */
  clock: Clock;
  /** How long a target's signature and resolved version are reused, ms. */
  metadataTtlMs: number;
}

interface SignatureInfo {
  version: number;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

interface CacheEntry {
  /** Clock time (µs) after which the entry is refetched. */
  expires: number;
  value: Promise<SignatureInfo>;
}

const JSON_HEADERS = { 'content-type': 'application/json' } as const;

function targetPath(target: Target): string {
  const base = `/v1/models/${segment(target.model)}`;
  if (target.version !== undefined) return `${base}/versions/${target.version}`;
  if (target.label !== undefined) return `${base}/labels/${segment(target.label)}`;
  return base;
}

/** An Inferencer over a TF Serving (or inflow) REST endpoint. */
export function createTfServingRestClient(transport: HttpTransport, options: TfServingRestClientOptions): Inferencer {
  const { endpoint } = transport;
  const { clock } = options;
  const ttlMicros = options.metadataTtlMs * 1000;
  const cache = new Map<string, CacheEntry>();

  function readJson(body: Buffer, what: string): Record<string, unknown> {
    try {
      const value = parseJsonText(body);
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
      throw new Error('not a JSON object');
    } catch (error) {
      throw badResponseError(endpoint, what, error);
    }
  }

  async function fetchSignature(target: Target): Promise<SignatureInfo> {
    const response = await transport.call({ method: 'GET', path: `${targetPath(target)}/metadata` });
    const body = readJson(response.body, 'model metadata');
    const spec = body.model_spec as { version?: unknown } | undefined;
    const metadata = body.metadata as { signature_def?: { signature_def?: Record<string, never> } } | undefined;
    const specs = specsOfSignatureDefs(endpoint, target.model, metadata?.signature_def?.signature_def);
    const version = target.version ?? versionNumber(spec?.version);
    if (version === undefined) throw badResponseError(endpoint, `metadata of model "${target.model}" names no version in model_spec`);
    return { version, ...specs };
  }

  /** Shared by concurrent calls, so it does not take one caller's signal (the transport's deadline bounds it). */
  function signatureFor(target: Target, fresh: boolean): Promise<SignatureInfo> {
    const key = `${target.model}\u0000${target.version ?? ''}\u0000${target.label ?? ''}`;
    const now = clock.now();
    const cached = cache.get(key);
    if (!fresh && cached && cached.expires > now) return cached.value;
    const value = fetchSignature(target);
    const entry: CacheEntry = { expires: now + ttlMicros, value };
    cache.set(key, entry);
    // A failed fetch is not kept: the next call asks again.
    value.catch(() => {
      if (cache.get(key) === entry) cache.delete(key);
    });
    return value;
  }

  function decode(body: Record<string, unknown>, signature: SignatureInfo, model: string): Record<string, Tensor> {
    if (typeof body.error === 'string') throw badResponseError(endpoint, `an error body with status 200: ${body.error}`);
    try {
      return decodeTfPredictResponse(body, signature.outputs);
    } catch (error) {
      throw badResponseError(endpoint, `predict answer of model "${model}" against its signature`, error);
    }
  }

  return {
    async infer(request: InferRequest, inferOptions: InferOptions = {}): Promise<InferResponse> {
      const target = checkTarget(endpoint, request, true);
      const { signal } = inferOptions;
      const text = encodeTfPredictRequest(request.inputs, 'columnar', { bytesAsB64: () => true });
      const headers: Record<string, string> =
        inferOptions.key === undefined ? JSON_HEADERS : { ...JSON_HEADERS, 'x-routing-key': inferOptions.key };
      const [signature, response] = await Promise.all([
        signatureFor(target, false),
        transport.call({ method: 'POST', path: `${targetPath(target)}:predict`, headers, body: [Buffer.from(text, 'utf8')], signal }),
      ]);
      const body = readJson(response.body, 'predict answer');
      let outputs: Record<string, Tensor>;
      let resolved = signature;
      try {
        outputs = decode(body, signature, target.model);
      } catch {
        // The cached signature may be stale (a new version with other outputs): ask once more.
        resolved = await signatureFor(target, true);
        outputs = decode(body, resolved, target.model);
      }
      const result: InferResponse = {
        model: target.model,
        version: resolved.version,
        outputs: pickOutputs(endpoint, target.model, outputs, request.outputs),
      };
      if (request.id !== undefined) result.id = request.id;
      return result;
    },

    async metadata(model: string, version?: number): Promise<ModelMetadata> {
      const target = checkTarget(endpoint, { model, ...(version !== undefined ? { version } : {}) }, true);
      const [signature, status] = await Promise.all([
        fetchSignature(target),
        transport.call({ method: 'GET', path: `/v1/models/${segment(model)}` }),
      ]);
      const statusBody = readJson(status.body, 'model status');
      const entries = Array.isArray(statusBody.model_version_status)
        ? (statusBody.model_version_status as { version?: unknown; state?: unknown }[])
        : [];
      return {
        name: model,
        // TF Serving's APIs name no platform; its models are TensorFlow SavedModels.
        platform: 'tensorflow',
        versions: versionList(entries.filter((e) => e.state === 'AVAILABLE').map((e) => e.version)),
        // TF Serving has no API that lists labels.
        labels: {},
        inputs: signature.inputs,
        outputs: signature.outputs,
      };
    },

    async ready(model?: string): Promise<boolean> {
      try {
        if (model === undefined) {
          // TF Serving has no health endpoint: any HTTP answer (its 400 for `/v1/models`) means it serves.
          await transport.request({ method: 'GET', path: '/v1/models' });
          return true;
        }
        const response = await transport.call({ method: 'GET', path: `/v1/models/${segment(model)}` });
        const body = readJson(response.body, 'model status');
        const entries = Array.isArray(body.model_version_status) ? (body.model_version_status as { state?: unknown }[]) : [];
        return entries.some((e) => e.state === 'AVAILABLE');
      } catch (error) {
        if (error instanceof InflowError && (error.retriable || error.code === 'NOT_FOUND')) return false;
        throw error;
      }
    },

    async close() {
      cache.clear();
      transport.close();
    },
  };
}
