/**
 * TF Serving REST `:classify` and `:regress`: tf.Examples in JSON through the inference core
 * (the mapping onto a signature is in ../tf-example.ts and ../tf-example-results.ts), answered
 * `{"results": …}` as TF Serving does.
 */
import { InflowError } from '../../errors.ts';
import { DEFAULT_SIGNATURE_NAME } from '../../tensor/codecs/index.ts';
import { runExampleTasks, type TfExampleTask } from '../tf-example-results.ts';
import { type Exchange, readBody } from './http-exchange.ts';
import { type RouteDeps, routingKey } from './rest-route.ts';
import { decodeTfExampleRequest, encodeTfClassifyResponse, encodeTfRegressResponse } from './tf-example-json.ts';

/** Where a `:classify` / `:regress` URL points. */
export interface TfExampleTarget {
  model: string;
  version?: number;
  label?: string;
}

/** Answers one `:classify` or `:regress` request. */
export type TfExampleRoute = (exchange: Exchange, target: TfExampleTarget, task: TfExampleTask) => Promise<void>;

export function createTfExampleRoute(deps: RouteDeps): TfExampleRoute {
  const { inference, options } = deps;
  return async (x, { model, version, label }, task) => {
    const request = decodeTfExampleRequest(await readBody(x.req, options.maxBodyBytes));
    if (request.signatureName !== '' && request.signatureName !== DEFAULT_SIGNATURE_NAME) {
      throw new InflowError('FAILED_PRECONDITION', `Serving signature name: "${request.signatureName}" not found in signature def`);
    }
    const key = routingKey(x);
    // As :predict: resolve first, so that the version that answers gives the signature the Examples fill.
    const route = inference.router.resolve(model, {
      ...(version !== undefined ? { version } : {}),
      ...(label !== undefined ? { label } : {}),
      ...(key !== undefined ? { key } : {}),
    });
    const loaded = inference.repository.get(model, route.version);
    if (!loaded) throw new InflowError('NOT_FOUND', `Servable not found for request: Specific(${model}, ${route.version})`);
    const signal = x.signal(options.requestTimeoutMs);
    const results = await runExampleTasks(
      (r, o) => inference.infer(r, o),
      {
        target: { model, version: route.version },
        signature: loaded.servable.signature,
        examples: request.examples,
        tasks: new Set([task]),
      },
      // The route goes along: resolving again from the version would lose its shadow decision.
      key !== undefined ? { signal, key, route } : { signal, route },
    );
    x.sendJson(
      200,
      task === 'classify' ? encodeTfClassifyResponse(results.classifications ?? []) : encodeTfRegressResponse(results.regressions ?? []),
    );
  };
}
