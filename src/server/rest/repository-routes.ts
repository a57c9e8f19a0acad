/**
 * Triton's model repository extension over REST (only with the admin token; see
 * ../repository-extension.ts for what each call does):
 *
 * - `POST /v2/repository/index`                body `{"ready"?: bool}` (or empty) → `[{name, version, state, reason}]`
 * - `POST /v2/repository/models/{m}/load`      body `{"parameters"?: {…}}` (or empty); parameters are refused
 * - `POST /v2/repository/models/{m}/unload`    body `{"parameters"?: {"unload_dependents": bool}}` (or empty)
 *
 * Success answers 200 with `{}` for load and unload (tritonclient reads only the status).
 */
import { InflowError } from '../../errors.ts';
import { parseJsonText } from '../../tensor/codecs/index.ts';
import { repositoryIndex, repositoryLoad, repositoryUnload } from '../repository-extension.ts';
import { readBody } from './http-exchange.ts';
import { decodeSegment, type RouteDeps, type RouteMatch, type RouteRun } from './rest-route.ts';

const INDEX = /^\/v2\/repository\/index$/;
const CONTROL = /^\/v2\/repository\/models\/([^/]+)\/(load|unload)$/;

/** Bodies of these calls are small JSON objects. */
const MAX_BODY_BYTES = 64 * 1024;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The body as a JSON object; an empty body is `{}`. */
async function jsonObject(x: Parameters<RouteRun>[0], what: string): Promise<Record<string, unknown>> {
  const body = await readBody(x.req, MAX_BODY_BYTES);
  if (body.byteLength === 0) return {};
  const value = parseJsonText(body);
  if (!isPlainObject(value)) throw new InflowError('INVALID_ARGUMENT', `${what}: the body must be a JSON object`);
  return value;
}

function parameterNames(body: Record<string, unknown>, what: string): string[] {
  const { parameters } = body;
  if (parameters === undefined || parameters === null) return [];
  if (!isPlainObject(parameters)) throw new InflowError('INVALID_ARGUMENT', `${what}: 'parameters' must be a JSON object`);
  return Object.keys(parameters);
}

/** The repository routes, or undefined for other paths. */
export interface RepositoryRoutes {
  match(method: string, path: string): RouteMatch | undefined;
}

export function createRepositoryRoutes(deps: RouteDeps): RepositoryRoutes {
  const repo = deps.inference.repository;

  const index: RouteRun = async (x) => {
    const body = await jsonObject(x, 'repository index');
    const { ready } = body;
    if (ready !== undefined && ready !== null && typeof ready !== 'boolean') {
      throw new InflowError('INVALID_ARGUMENT', `repository index: 'ready' must be true or false, got ${JSON.stringify(ready)}`);
    }
    x.sendJson(200, JSON.stringify(repositoryIndex(repo, ready === true)));
  };

  const control: RouteRun = async (x, m) => {
    const model = decodeSegment(m[1] as string, 'model name');
    const body = await jsonObject(x, `${m[2] as string} of model ${model}`);
    if (m[2] === 'load') {
      await repositoryLoad(repo, model, parameterNames(body, `load of model ${model}`));
    } else {
      // unload_dependents: inflow has no ensembles, so there are no dependents to unload.
      const unknown = parameterNames(body, `unload of model ${model}`).filter((p) => p !== 'unload_dependents');
      if (unknown.length > 0) {
        throw new InflowError(
          'UNIMPLEMENTED',
          `unload parameters (${unknown.join(', ')}) are not supported; expected none or unload_dependents`,
        );
      }
      await repositoryUnload(repo, model);
    }
    x.sendJson(200, '{}');
  };

  return {
    match(method, path) {
      if (method !== 'POST') return undefined;
      let m: RegExpExecArray | null;
      if ((m = INDEX.exec(path))) return { route: 'v2_repository_index', access: 'admin', run: index, match: m };
      if ((m = CONTROL.exec(path))) return { route: `v2_repository_${m[2] as string}`, access: 'admin', run: control, match: m };
      return undefined;
    },
  };
}
