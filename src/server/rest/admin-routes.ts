/**
 * Admin API (`/admin/…`, only when an admin token is configured): reload the repository, show a
 * model's status and routing, set or clear a model's weighted split and shadow, and move labels at
 * run time (overrides of config.yaml's `routing:` and `labels:`, kept until cleared or restart).
 *
 * - `GET    /admin/models`                 every model's status
 * - `GET    /admin/models/{m}`             one model's status and routing state
 * - `POST   /admin/repository/refresh`     rescan the repository now; answers every model's status
 * - `PUT    /admin/models/{m}/routing`     body `{"split"?: [{version, weight}], "shadow"?: {version, fraction}}`
 * - `DELETE /admin/models/{m}/routing`     back to config.yaml's routing
 * - `PUT    /admin/models/{m}/labels/{l}`  body `{"version": n}`: move a label (rollout / rollback)
 * - `DELETE /admin/models/{m}/labels/{l}`  back to config.yaml's label
 * - `POST   /admin/models/{m}/unload`      unload every version and keep it unloaded (Triton's explicit control)
 * - `POST   /admin/models/{m}/load`        lift an unload and load the model's folder now
 */
import { validateConfig } from '../../config/load-config.ts';
import { InflowError } from '../../errors.ts';
import { type RoutingConfig, routingSchema } from '../../repository/model-config.ts';
import { parseJsonText } from '../../tensor/codecs/index.ts';
import { type Exchange, readBody } from './http-exchange.ts';
import { decodeSegment, type RouteDeps, type RouteMatch, type RouteRun } from './rest-route.ts';

const MODELS = /^\/admin\/models$/;
const MODEL = /^\/admin\/models\/([^/]+)$/;
const ROUTING = /^\/admin\/models\/([^/]+)\/routing$/;
const CONTROL = /^\/admin\/models\/([^/]+)\/(load|unload)$/;
const LABEL = /^\/admin\/models\/([^/]+)\/labels\/([^/]+)$/;
const REFRESH = /^\/admin\/repository\/refresh$/;

/** Admin bodies are small JSON: 1 MiB is plenty. */
const MAX_ADMIN_BODY = 1024 * 1024;

export interface AdminRoutes {
  match(method: string, path: string): RouteMatch | undefined;
}

export function createAdminRoutes(deps: RouteDeps): AdminRoutes {
  const { inference } = deps;
  const repository = inference.repository;

  function modelStatus(model: string): unknown {
    const status = repository.status(model);
    if (!status)
      throw new InflowError('NOT_FOUND', `model ${model} is not in the repository; expected one of: ${repository.models().join(', ')}`);
    return {
      name: status.name,
      ...(status.configError ? { configError: status.configError } : {}),
      versions: status.versions,
      available: repository.available(model),
      labels: inference.router.state(model)?.labels ?? status.config?.labels ?? {},
      unloaded: repository.unloaded().includes(model),
      routing: inference.router.state(model) ?? null,
    };
  }

  const send = (x: Exchange, body: unknown): void => x.sendJson(200, JSON.stringify(body, null, 2));
  const allModels = (): unknown => ({ models: repository.models().map(modelStatus) });

  const list: RouteRun = async (x) => send(x, allModels());
  const one: RouteRun = async (x, m) => send(x, modelStatus(decodeSegment(m[1] as string, 'model name')));
  const refresh: RouteRun = async (x) => {
    await repository.refresh();
    send(x, allModels());
  };

  const setRouting: RouteRun = async (x, m) => {
    const model = decodeSegment(m[1] as string, 'model name');
    const routing: RoutingConfig = validateConfig(routingSchema, parseJsonText(await readBody(x.req, MAX_ADMIN_BODY)), 'the routing body');
    if (!repository.config(model)) throw new InflowError('NOT_FOUND', `model ${model} is not in the repository`);
    // The service keeps the previous routing when the router rejects a state: check here to answer why.
    const available = repository.available(model);
    const wanted = [...(routing.split ?? []).map((s) => s.version), ...(routing.shadow ? [routing.shadow.version] : [])];
    for (const version of wanted) {
      if (!available.includes(version)) {
        throw new InflowError(
          'FAILED_PRECONDITION',
          `version ${version} of model ${model} is not AVAILABLE (available: [${available.join(', ')}]); expected split and shadow versions to be serving`,
        );
      }
    }
    inference.setRouting(model, routing);
    send(x, modelStatus(model));
  };

  const clearRouting: RouteRun = async (x, m) => {
    const model = decodeSegment(m[1] as string, 'model name');
    if (!repository.config(model)) throw new InflowError('NOT_FOUND', `model ${model} is not in the repository`);
    inference.setRouting(model, undefined);
    send(x, modelStatus(model));
  };

  const control: RouteRun = async (x, m) => {
    const model = decodeSegment(m[1] as string, 'model name');
    if (m[2] === 'unload') await repository.unload(model);
    else await repository.load(model);
    send(x, modelStatus(model));
  };

  const setLabel: RouteRun = async (x, m) => {
    const model = decodeSegment(m[1] as string, 'model name');
    const label = decodeSegment(m[2] as string, 'label');
    const body = parseJsonText(await readBody(x.req, MAX_ADMIN_BODY)) as { version?: unknown } | null;
    const version = body?.version;
    if (typeof version !== 'number' || !Number.isInteger(version) || version < 0 || Object.keys(body ?? {}).length !== 1) {
      throw new InflowError('INVALID_ARGUMENT', 'the label body must be {"version": <a non-negative integer>}');
    }
    inference.setLabel(model, label, version);
    send(x, modelStatus(model));
  };

  const clearLabel: RouteRun = async (x, m) => {
    const model = decodeSegment(m[1] as string, 'model name');
    inference.setLabel(model, decodeSegment(m[2] as string, 'label'), undefined);
    send(x, modelStatus(model));
  };

  return {
    match(method, path) {
      let m: RegExpExecArray | null;
      if (method === 'GET' && (m = MODELS.exec(path))) return { route: 'admin_models', access: 'admin', run: list, match: m };
      if (method === 'GET' && (m = MODEL.exec(path))) return { route: 'admin_model', access: 'admin', run: one, match: m };
      if (method === 'POST' && (m = REFRESH.exec(path))) return { route: 'admin_refresh', access: 'admin', run: refresh, match: m };
      if (method === 'POST' && (m = CONTROL.exec(path))) return { route: 'admin_control', access: 'admin', run: control, match: m };
      if ((m = LABEL.exec(path))) {
        if (method === 'PUT') return { route: 'admin_label', access: 'admin', run: setLabel, match: m };
        if (method === 'DELETE') return { route: 'admin_label', access: 'admin', run: clearLabel, match: m };
      }
      if ((m = ROUTING.exec(path))) {
        if (method === 'PUT') return { route: 'admin_routing', access: 'admin', run: setRouting, match: m };
        if (method === 'DELETE') return { route: 'admin_routing', access: 'admin', run: clearRouting, match: m };
      }
      return undefined;
    },
  };
}
