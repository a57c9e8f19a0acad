/**
 * Every admin route, on REST and gRPC, against every kind of caller: no token, a wrong token, the
 * inference token (INFLOW_AUTH_TOKEN's role) and the admin token (INFLOW_ADMIN_TOKEN's). Only the
 * admin token gets through, and a refused write changes nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { LocalInference } from '../serving/local-inference.ts';
import { createGrpcServer, type GrpcServer } from './grpc/grpc-server.ts';
import { GrpcServiceName, loadGrpcProtos } from './grpc/grpc-protos.ts';
import { createGrpcTestClient, type GrpcTestClient } from './grpc/grpc-test-client.ts';
import { type ExampleServer, loadExampleInference, startExampleServer } from './rest/fixtures/example-server.ts';

const INFERENCE_TOKEN = 'inference-token';
const ADMIN_TOKEN = 'admin-token';

/** The callers every admin route is tried with; only `admin` may pass. */
const CALLERS = [
  { who: 'no token', authorization: undefined },
  { who: 'a wrong token', authorization: 'Bearer not-the-token' },
  { who: 'the admin token without the Bearer scheme', authorization: ADMIN_TOKEN },
  { who: 'the inference token', authorization: `Bearer ${INFERENCE_TOKEN}` },
] as const;

/** Every REST admin route (src/server/rest/admin-routes.ts), in an order that leaves the model loaded. */
const REST_ROUTES = [
  { method: 'GET', path: '/admin/models' },
  { method: 'GET', path: '/admin/models/digits-mlp' },
  { method: 'POST', path: '/admin/repository/refresh' },
  {
    method: 'PUT',
    path: '/admin/models/digits-mlp/routing',
    body: '{"split": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]}',
  },
  { method: 'DELETE', path: '/admin/models/digits-mlp/routing' },
  { method: 'PUT', path: '/admin/models/digits-mlp/labels/stable', body: '{"version": 2}' },
  { method: 'DELETE', path: '/admin/models/digits-mlp/labels/stable' },
  { method: 'POST', path: '/admin/models/digits-mlp/unload' },
  { method: 'POST', path: '/admin/models/digits-mlp/load' },
] as const;

describe('admin authorization', () => {
  let inference: LocalInference;
  before(async () => {
    inference = await loadExampleInference();
  });
  after(async () => inference.close());

  describe('REST', () => {
    let api: ExampleServer;
    before(async () => {
      api = await startExampleServer(inference, { auth: { token: INFERENCE_TOKEN }, admin: { token: ADMIN_TOKEN } });
    });
    after(async () => api.server.close(1000));

    const call = (method: string, path: string, authorization: string | undefined, body?: string): Promise<Response> =>
      fetch(api.url + path, {
        method,
        headers: authorization === undefined ? {} : { authorization },
        ...(body !== undefined ? { body } : {}),
      });
    const state = async (): Promise<unknown> => (await call('GET', '/admin/models/digits-mlp', `Bearer ${ADMIN_TOKEN}`)).json();

    for (const route of REST_ROUTES) {
      it(`${route.method} ${route.path} refuses every caller but the admin token, and a refused call changes nothing`, async () => {
        const before = await state();
        for (const { who, authorization } of CALLERS) {
          const response = await call(route.method, route.path, authorization, 'body' in route ? route.body : undefined);
          assert.equal(response.status, 401, `${route.method} ${route.path} with ${who}`);
          const error = ((await response.json()) as { error?: string }).error ?? '';
          assert.match(error, /bearer token/, `${route.method} ${route.path} with ${who}: the error says what is expected`);
        }
        assert.deepEqual(await state(), before, `a refused ${route.method} ${route.path} changed the model's state`);
        const allowed = await call(route.method, route.path, `Bearer ${ADMIN_TOKEN}`, 'body' in route ? route.body : undefined);
        assert.equal(allowed.status, 200, `${route.method} ${route.path} with the admin token: ${await allowed.text()}`);
      });
    }

    it('takes the inference token on inference routes', async () => {
      const body = JSON.stringify({ instances: [new Array(64).fill(0)] });
      assert.equal((await call('POST', '/v1/models/digits-mlp:predict', `Bearer ${INFERENCE_TOKEN}`, body)).status, 200);
      assert.equal((await call('POST', '/v1/models/digits-mlp:predict', undefined, body)).status, 401);
    });
  });

  describe('gRPC', () => {
    let server: GrpcServer;
    let client: GrpcTestClient;
    before(async () => {
      server = createGrpcServer(inference, {
        host: '127.0.0.1',
        port: 0,
        auth: { token: INFERENCE_TOKEN },
        admin: { token: ADMIN_TOKEN },
      });
      const { port } = await server.start();
      client = createGrpcTestClient(`127.0.0.1:${port}`);
    });
    after(async () => {
      client.close();
      await server.close(1000);
    });

    const metadata = (authorization: string | undefined): grpc.Metadata => {
      const m = new grpc.Metadata();
      if (authorization !== undefined) m.set('authorization', authorization);
      return m;
    };
    const ready = async (): Promise<unknown> =>
      client.unary(GrpcServiceName.INFERENCE, 'RepositoryIndex', {}, { metadata: metadata(`Bearer ${ADMIN_TOKEN}`) });

    /** Every gRPC admin method, with a request that succeeds with the admin token. */
    const ADMIN_METHODS = [
      { service: GrpcServiceName.INFERENCE, method: 'RepositoryIndex', request: {} },
      { service: GrpcServiceName.INFERENCE, method: 'RepositoryModelUnload', request: { model_name: 'digits-mlp' } },
      { service: GrpcServiceName.INFERENCE, method: 'RepositoryModelLoad', request: { model_name: 'digits-mlp' } },
      {
        service: GrpcServiceName.MODEL,
        method: 'HandleReloadConfigRequest',
        request: { config: { model_config_list: { config: [{ name: 'digits-mlp' }, { name: 'breast-cancer-pipeline' }] } } },
      },
    ] as const;

    it('lists every method of the served services as either an admin or an inference method here', () => {
      const { services } = loadGrpcProtos();
      const admin = new Set(ADMIN_METHODS.map((m) => `${m.service}/${m.method}`));
      const repositoryLike = Object.entries(services)
        .filter(([name]) => name !== GrpcServiceName.HEALTH)
        .flatMap(([name, methods]) => Object.keys(methods).map((m) => `${name}/${m}`))
        .filter((m) => /\/Repository|Reload|Load|Unload/.test(m));
      assert.deepEqual(repositoryLike.sort(), [...admin].sort(), 'a model-management method is missing from this test');
    });

    for (const { service, method, request } of ADMIN_METHODS) {
      it(`${service}/${method} refuses every caller but the admin token with UNAUTHENTICATED, and a refused call changes nothing`, async () => {
        const before = await ready();
        for (const { who, authorization } of CALLERS) {
          await assert.rejects(
            client.unary(service, method, request, { metadata: metadata(authorization) }),
            (error: grpc.ServiceError) => {
              assert.equal(error.code, grpc.status.UNAUTHENTICATED, `${method} with ${who}: ${error.details}`);
              assert.match(error.details, /bearer|Bearer/);
              return true;
            },
            `${method} with ${who} was let through`,
          );
        }
        assert.deepEqual(await ready(), before, `a refused ${method} changed the repository`);
        await client.unary(service, method, request, { metadata: metadata(`Bearer ${ADMIN_TOKEN}`) });
      });
    }

    it('takes the inference token on inference methods', async () => {
      const request = {
        model_name: 'digits-mlp',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], contents: { fp32_contents: new Array(64).fill(0) } }],
      };
      await client.unary(GrpcServiceName.INFERENCE, 'ModelInfer', request, { metadata: metadata(`Bearer ${INFERENCE_TOKEN}`) });
      await assert.rejects(client.unary(GrpcServiceName.INFERENCE, 'ModelInfer', request), { code: grpc.status.UNAUTHENTICATED });
    });
  });
});
