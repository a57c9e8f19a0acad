/**
 * TF Serving REST API (reference (a)): `:predict` in row and columnar formats, model status and
 * model metadata, with TF Serving's routing (case-insensitive, URL-decoded names), error texts
 * and `{"error": …}` bodies. `:classify` and `:regress` (tf.Example inputs) are in tf-example-routes.ts.
 */
import { createInputGate } from '../../serving/check-inputs.ts';
import { InflowError } from '../../errors.ts';
import { DEFAULT_SIGNATURE_NAME, decodeTfPredict, encodeTfPredict, parseJsonText } from '../../tensor/codecs/index.ts';
import { servedSignature } from '../served-signature.ts';
import { type Exchange, readBody } from './http-exchange.ts';
import { decodeSegment, parseVersion, type RouteDeps, type RouteMatch, type RouteRun, routingKey } from './rest-route.ts';
import { createTfExampleRoute } from './tf-example-routes.ts';
import { tfModelMetadata, tfModelStatus } from './tf-serving-json.ts';

// TF Serving's own patterns (http_rest_api_handler.cc), anchored: RE2::FullMatch.
const PREDICT = /^\/v1\/models\/([^/:]+)(?:(?:\/versions\/(\d+))|(?:\/labels\/([^/:]+)))?:(classify|regress|predict)$/i;
const STATUS = /^\/v1\/models(?:\/([^/:]+))?(?:(?:\/versions\/(\d+))|(?:\/labels\/([^/:]+)))?(?:\/(metadata))?$/i;
const ANY = /^/;

/** Status and metadata bodies are small: pretty-printed like TF Serving's. */
const pretty = (value: unknown): string => JSON.stringify(value, null, 2);

export interface TfServingRoutes {
  /** The route for a path under `/v1/` (case-insensitive); a malformed one answers 400 as TF does. */
  match(method: string, path: string): RouteMatch;
}

export function createTfServingRoutes(deps: RouteDeps): TfServingRoutes {
  const { inference, options } = deps;
  const repository = inference.repository;
  const examples = createTfExampleRoute(deps);

  const predict: RouteRun = async (x, m) => {
    const model = decodeSegment(m[1] as string, 'model name');
    const version = parseVersion(m[2]);
    const label = m[3] === undefined ? undefined : decodeSegment(m[3], 'version label');
    const verb = (m[4] as string).toLowerCase();
    if (verb !== 'predict') {
      return examples(
        x,
        { model, ...(version !== undefined ? { version } : {}), ...(label !== undefined ? { label } : {}) },
        verb as 'classify' | 'regress',
      );
    }
    const body = parseJsonText(await readBody(x.req, options.maxBodyBytes));
    const key = routingKey(x);
    // Resolve first: the version that answers gives the signature that types the JSON.
    const route = inference.router.resolve(model, {
      ...(version !== undefined ? { version } : {}),
      ...(label !== undefined ? { label } : {}),
      ...(key !== undefined ? { key } : {}),
    });
    const signature = servedSignature(repository, model, route.version);
    const request = decodeTfPredict(
      body,
      (name) => {
        if (name !== DEFAULT_SIGNATURE_NAME) {
          throw new InflowError('FAILED_PRECONDITION', `Serving signature name: "${name}" not found in signature def`);
        }
        return signature;
      },
      // Only the element limits: the signature types the JSON here, and a value of the wrong type gets TF Serving's
      // type error before a shape mismatch, as TF Serving answers.
      createInputGate(model, [], options.decodeLimits),
    );
    const signal = x.signal(options.requestTimeoutMs);
    // The route goes along: resolving again from the version would lose its shadow decision.
    const result = await inference.infer(
      { model, version: route.version, inputs: request.inputs },
      key !== undefined ? { signal, key, route } : { signal, route },
    );
    x.sendJson(200, encodeTfPredict(result.outputs, request.format));
  };

  const status: RouteRun = async (x, m) => {
    if (m[1] === undefined) throw new InflowError('INVALID_ARGUMENT', 'Missing model name in request.');
    const model = decodeSegment(m[1], 'model name');
    let version = parseVersion(m[2]);
    if (m[3] !== undefined) version = labelled(model, decodeSegment(m[3], 'version label'));
    if (m[4] !== undefined) return metadata(x, model, version);
    const state = repository.status(model);
    if (!state || state.versions.length === 0) throw new InflowError('NOT_FOUND', `Could not find any versions of model ${model}`);
    const body = tfModelStatus(state, version);
    if (body.model_version_status.length === 0) throw new InflowError('NOT_FOUND', `Could not find version ${version} of model ${model}`);
    x.sendJson(200, pretty(body));
  };

  function labelled(model: string, label: string): number {
    const config = repository.config(model);
    if (!config) throw new InflowError('NOT_FOUND', `Could not find any versions of model ${model}`);
    // The router holds config.yaml's labels with the admin API's run-time moves on top.
    const version = (inference.router.state(model)?.labels ?? config.labels)[label];
    if (version === undefined) throw new InflowError('INVALID_ARGUMENT', `Unrecognized servable version label: ${label}`);
    return version;
  }

  function metadata(x: Exchange, model: string, version: number | undefined): void {
    const chosen = version ?? repository.available(model).at(-1);
    if (chosen === undefined) throw new InflowError('NOT_FOUND', `Servable not found for request: Latest(${model})`);
    x.sendJson(200, pretty(tfModelMetadata(model, chosen, servedSignature(repository, model, chosen))));
  }

  const malformed: RouteRun = async (x) => {
    throw new InflowError('INVALID_ARGUMENT', `Malformed request: ${x.req.method ?? ''} ${x.req.url ?? ''}`);
  };

  return {
    match(method, path) {
      if (method === 'POST') {
        const m = PREDICT.exec(path);
        if (m) return { route: `tf_${(m[4] as string).toLowerCase()}`, access: 'inference', run: predict, match: m };
      } else if (method === 'GET') {
        const m = STATUS.exec(path);
        if (m) return { route: m[4] === undefined ? 'tf_status' : 'tf_metadata', access: 'inference', run: status, match: m };
      }
      return { route: 'tf_malformed', access: 'inference', run: malformed, match: ANY.exec('') as RegExpExecArray };
    },
  };
}
