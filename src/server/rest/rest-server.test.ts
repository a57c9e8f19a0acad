import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { createServer, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { LocalInference } from '../../serving/local-inference.ts';
import {
  type ExampleServer,
  gate,
  loadExampleInference,
  rows,
  type Sample,
  sample,
  startExampleServer,
} from './fixtures/example-server.ts';
import type { StoreQuery } from '../../streams/runtime/store-query.ts';
import { createRestHandler } from './rest-handler.ts';

const ROW = JSON.stringify({ instances: [new Array(64).fill(0)] });
const PREDICT = '/v1/models/digits-mlp:predict';

async function post(
  url: string,
  body = ROW,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(url, { method: 'POST', body, headers });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

/** Sends a body in chunks without Content-Length (chunked encoding), over node:http. */
function postChunked(url: string, chunks: Buffer[]): Promise<{ status: number; body: string; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }));
    });
    req.on('error', reject);
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

describe('REST server: limits, security, metrics, admin and shutdown', () => {
  let inference: LocalInference;
  let digits: Sample;
  before(async () => {
    inference = await loadExampleInference();
    digits = await sample('digits-mlp');
  });
  after(async () => inference.close());

  async function serve(
    options: Parameters<typeof startExampleServer>[1],
    use: (api: ExampleServer) => Promise<void>,
    over = inference,
  ): Promise<void> {
    const api = await startExampleServer(over, options);
    try {
      await use(api);
    } finally {
      await api.server.close(1000);
    }
  }

  it('echoes x-request-id and generates one when absent', async () =>
    serve({}, async ({ url }) => {
      const given = await fetch(`${url}/v2/health/live`, { headers: { 'x-request-id': 'abc-123' } });
      assert.equal(given.headers.get('x-request-id'), 'abc-123');
      const generated = await fetch(`${url}/v2/health/live`);
      assert.match(generated.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    }));

  it('exposes the core metrics and HTTP metrics by route and status code on /metrics', async () =>
    serve({ registry: new Registry() }, async ({ url }) => {
      assert.equal((await post(url + PREDICT)).status, 200);
      assert.equal((await post(`${url}/v1/models/nope:predict`)).status, 404);
      const response = await fetch(`${url}/metrics`);
      assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
      const text = await response.text();
      assert.match(text, /inflow_http_requests_total\{route="tf_predict",code="200"\} 1/);
      assert.match(text, /inflow_http_requests_total\{route="tf_predict",code="404"\} 1/);
      assert.match(text, /inflow_http_request_duration_seconds_count\{route="tf_predict",code="200"\} 1/);
      // A registry of its own holds only the HTTP metrics; the default one is the service's.
      assert.doesNotMatch(text, /inflow_inference_request_success_total/);
    }).then(() =>
      serve({}, async ({ url }) => {
        assert.match(
          await (await fetch(`${url}/monitoring/prometheus/metrics`)).text(),
          /inflow_inference_request_success_total\{model="digits-mlp"/,
        );
      }),
    ));

  it('requires the bearer token on inference routes and leaves health and metrics open', async () =>
    serve({ auth: { token: 's3cret' } }, async ({ url }) => {
      const none = await fetch(url + PREDICT, { method: 'POST', body: ROW });
      assert.equal(none.status, 401);
      assert.equal(none.headers.get('www-authenticate'), 'Bearer');
      assert.match(((await none.json()) as { error: string }).error, /bearer token/);
      assert.equal((await post(url + PREDICT, ROW, { authorization: 'Bearer wrong' })).status, 401);
      assert.equal((await post(`${url}/v2/models/digits-mlp/infer`, '{}', { authorization: 'Basic s3cret' })).status, 401);
      assert.equal((await post(url + PREDICT, ROW, { authorization: 'Bearer s3cret' })).status, 200);
      assert.equal((await fetch(`${url}/v2/health/ready`)).status, 200);
      assert.equal((await fetch(`${url}/metrics`)).status, 200);
    }));

  it('answers 413 for a body over maxBodyBytes, declared or streamed, and closes the connection', async () =>
    serve({ maxBodyBytes: 4096 }, async ({ url }) => {
      const declared = await post(url + PREDICT, JSON.stringify({ instances: [new Array(3000).fill(0)] }));
      assert.equal(declared.status, 413);
      assert.match(declared.json.error as string, /expected at most 4096 bytes \(maxBodyBytes\)/);
      const streamed = await postChunked(url + PREDICT, [Buffer.alloc(3000, 32), Buffer.alloc(3000, 32), Buffer.alloc(3000, 32)]);
      assert.equal(streamed.status, 413);
      assert.match(streamed.body, /exceeds 4096 bytes \(maxBodyBytes\)/);
      assert.equal(streamed.connection, 'close');
      assert.equal((await post(url + PREDICT)).status, 200);
    }));

  it('sheds load beyond maxConcurrentRequests with 429 RESOURCE_EXHAUSTED', async () => {
    const held = gate(inference);
    await serve(
      { maxConcurrentRequests: 2 },
      async ({ url }) => {
        const first = [post(url + PREDICT), post(url + PREDICT)];
        await held.waiting(2);
        const shed = await post(url + PREDICT);
        assert.equal(shed.status, 429);
        assert.match(shed.json.error as string, /too many concurrent requests: 2 in flight, the limit is 2/);
        assert.equal((await fetch(`${url}/v2/health/live`)).status, 200, 'health is not limited');
        held.release();
        assert.deepEqual(
          (await Promise.all(first)).map((r) => r.status),
          [200, 200],
        );
        assert.equal((await post(url + PREDICT)).status, 200, 'slots are given back');
      },
      held.inference,
    );
  });

  it('answers 504 DEADLINE_EXCEEDED when the inference outlives requestTimeoutMs, and aborts it', async () => {
    const held = gate(inference);
    await serve(
      { requestTimeoutMs: 30 },
      async ({ url }) => {
        const answer = await post(
          `${url}/v2/models/digits-mlp/infer`,
          JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], data: new Array(64).fill(0) }] }),
        );
        assert.equal(answer.status, 504);
        assert.equal(answer.json.error, 'request exceeded its deadline of 30 ms (requestTimeoutMs)');
        await held.aborted(1);
      },
      held.inference,
    );
  });

  it('aborts the inference of a client that disconnects and counts it', async () => {
    const held = gate(inference);
    const registry = new Registry();
    await serve(
      { registry },
      async ({ url }) => {
        const controller = new AbortController();
        const pending = fetch(url + PREDICT, { method: 'POST', body: ROW, signal: controller.signal });
        await held.waiting(1);
        controller.abort();
        await assert.rejects(pending, { name: 'AbortError' });
        await held.aborted(1);
        const text = await registry.metrics();
        assert.match(text, /inflow_http_client_disconnects_total\{route="tf_predict"\} 1/);
        assert.match(text, /inflow_http_requests_total\{route="tf_predict",code="499"\} 1/);
      },
      held.inference,
    );
  });

  it('answers many concurrent requests, each with its own row', async () =>
    serve({}, async ({ url }) => {
      const input = digits.inputs.input!;
      const answers = await Promise.all(
        Array.from({ length: 32 }, (_, i) => post(url + PREDICT, JSON.stringify({ instances: rows(input, i % 8, (i % 8) + 1) }))),
      );
      assert.deepEqual(
        answers.map((a) => (a.json.predictions as Array<{ label: number }>)[0]!.label),
        Array.from({ length: 32 }, (_, i) => digits.outputs.label!.data[i % 8]),
      );
    }));

  it('shuts down gracefully: in-flight requests complete, new connections are refused', async () => {
    const held = gate(inference);
    const api = await startExampleServer(held.inference);
    const inFlight = [post(api.url + PREDICT), post(api.url + PREDICT), post(api.url + PREDICT)];
    await held.waiting(3);
    const closed = api.server.close(5000);
    await assert.rejects(fetch(`${api.url}/v2/health/live`), TypeError);
    held.release();
    assert.deepEqual(
      (await Promise.all(inFlight)).map((r) => r.status),
      [200, 200, 200],
    );
    await closed;
    assert.equal(api.server.handler.inFlight, 0);
  });

  it('destroys the connections still open when the grace period ends', async () => {
    const held = gate(inference);
    const api = await startExampleServer(held.inference);
    // Settled at once: the rejection arrives while close() is awaited.
    const stuck = post(api.url + PREDICT).then(
      () => undefined,
      (error: unknown) => error,
    );
    await held.waiting(1);
    await api.server.close(20);
    assert.ok((await stuck) instanceof TypeError, 'the held request lost its connection');
    held.release();
  });

  it("serves the hosted pipelines' stores under /v1/stores when given them, as inflow stream does, and not otherwise", async () => {
    const stores: StoreQuery = {
      storeNames: () => ['counts'],
      get: async (store, key) => ({ kind: 'value', store, key, partition: 1, value: { n: 3 } }),
      fetch: async (store, key) => ({ kind: 'remote', store, key, partition: 2, owner: 'b:8501' }),
    };
    const api = await startExampleServer(inference, { stores });
    try {
      const value = await fetch(`${api.url}/v1/stores/counts/keys/card-1`);
      assert.deepEqual([value.status, await value.json()], [200, { store: 'counts', key: 'card-1', partition: 1, value: { n: 3 } }]);
      const moved = await fetch(`${api.url}/v1/stores/counts/keys/card-1/windows?from=0`, { redirect: 'manual' });
      assert.equal(moved.status, 307);
      assert.equal(moved.headers.get('location'), 'http://b:8501/v1/stores/counts/keys/card-1/windows?from=0');
      assert.equal((await post(api.url + PREDICT)).status, 200, 'the model routes still answer');
    } finally {
      await api.server.close();
    }
    const plain = await startExampleServer(inference);
    try {
      // No store routes: the path falls to TF Serving's /v1 routes, which know no such path.
      assert.equal((await fetch(`${plain.url}/v1/stores/counts/keys/card-1`)).status, 400);
    } finally {
      await plain.server.close();
    }
  });

  it('while draining, turns not-ready and answers 503 on open connections', async () => {
    const handler = createRestHandler(inference, { registry: new Registry() });
    const server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      assert.equal((await fetch(`${url}/v2/health/ready`)).status, 200);
      handler.drain();
      const ready = await fetch(`${url}/v2/health/ready`);
      assert.deepEqual([ready.status, await ready.json()], [503, { ready: false }]);
      const refused = await post(url + PREDICT);
      assert.deepEqual([refused.status, refused.json.error], [503, 'the server is shutting down; retry on another instance']);
      assert.equal((await fetch(`${url}/v2/health/live`)).status, 200);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('serves the admin API only with its token: status, routing split and shadow, repository refresh', async () => {
    await serve({}, async ({ url }) => assert.equal((await fetch(`${url}/admin/models`)).status, 404, 'off without a token'));
    await serve({ admin: { token: 'root' } }, async ({ url }) => {
      const auth = { authorization: 'Bearer root' };
      assert.equal((await fetch(`${url}/admin/models`)).status, 401);
      const listed = (await (await fetch(`${url}/admin/models`, { headers: auth })).json()) as { models: Array<{ name: string }> };
      assert.deepEqual(listed.models.map((m) => m.name).sort(), ['breast-cancer-pipeline', 'digits-mlp']);

      const put = async (body: unknown): Promise<Response> =>
        fetch(`${url}/admin/models/digits-mlp/routing`, { method: 'PUT', headers: auth, body: JSON.stringify(body) });
      const split = await put({ split: [{ version: 1, weight: 1 }], shadow: { version: 2, fraction: 1 } });
      assert.equal(split.status, 200);
      const status = (await split.json()) as { routing: unknown; available: number[] };
      assert.deepEqual(status.routing, {
        ready: [1, 2],
        labels: { stable: 1, canary: 2 },
        split: [{ version: 1, weight: 1 }],
        shadow: { version: 2, fraction: 1 },
      });
      const mirrored = async (): Promise<number> =>
        (await inference.metrics.shadowRequests.get()).values
          .filter((v) => v.labels.shadow_version === '2')
          .reduce((sum, v) => sum + v.value, 0);
      const before = await mirrored();
      assert.equal((await post(url + PREDICT)).status, 200);
      await inference.settleShadows();
      assert.equal(await mirrored(), before + 1, 'the request went to version 1 and was mirrored to version 2');

      const notReady = await put({ split: [{ version: 7, weight: 1 }] });
      assert.equal(notReady.status, 400);
      assert.match(
        ((await notReady.json()) as { error: string }).error,
        /version 7 of model digits-mlp is not AVAILABLE \(available: \[1, 2\]\)/,
      );
      const invalid = await put({ split: [{ version: 1, weight: -1 }], extra: true });
      assert.equal(invalid.status, 400);

      const cleared = await fetch(`${url}/admin/models/digits-mlp/routing`, { method: 'DELETE', headers: auth });
      assert.equal(((await cleared.json()) as { routing: { split?: unknown } }).routing.split, undefined);
      const refreshed = await fetch(`${url}/admin/repository/refresh`, { method: 'POST', headers: auth });
      assert.equal(refreshed.status, 200);
      assert.equal((await fetch(`${url}/admin/models/nope`, { headers: auth })).status, 404);
      // Move the stable label to version 2 and back, at run time.
      const moved = await fetch(`${url}/admin/models/digits-mlp/labels/stable`, { method: 'PUT', headers: auth, body: '{"version": 2}' });
      assert.equal(moved.status, 200);
      assert.deepEqual(((await moved.json()) as { labels: Record<string, number> }).labels, { stable: 2, canary: 2 });
      const viaLabel = await fetch(`${url}/v1/models/digits-mlp/labels/stable`, { headers: auth });
      assert.equal(((await viaLabel.json()) as { model_version_status: Array<{ version: string }> }).model_version_status[0]?.version, '2');
      const notServing = await fetch(`${url}/admin/models/digits-mlp/labels/stable`, {
        method: 'PUT',
        headers: auth,
        body: '{"version": 9}',
      });
      assert.equal(notServing.status, 400);
      assert.match(await notServing.text(), /version 9 of model digits-mlp is not AVAILABLE/);
      const badBody = await fetch(`${url}/admin/models/digits-mlp/labels/stable`, { method: 'PUT', headers: auth, body: '{"v": 1}' });
      assert.equal(badBody.status, 400);
      const restored = await fetch(`${url}/admin/models/digits-mlp/labels/stable`, { method: 'DELETE', headers: auth });
      assert.deepEqual(((await restored.json()) as { labels: Record<string, number> }).labels, { stable: 1, canary: 2 });
      // Explicit model control: unload keeps the model out until it is loaded again.
      const unloaded = await fetch(`${url}/admin/models/digits-mlp/unload`, { method: 'POST', headers: auth });
      assert.equal(((await unloaded.json()) as { unloaded: boolean }).unloaded, true);
      assert.equal((await fetch(`${url}/v2/models/digits-mlp/ready`, { headers: auth })).status, 503);
      assert.equal((await fetch(`${url}/v2/health/ready`)).status, 200, 'an unloaded model does not make the server unready');
      const loaded = await fetch(`${url}/admin/models/digits-mlp/load`, { method: 'POST', headers: auth });
      assert.deepEqual(((await loaded.json()) as { available: number[] }).available, [1, 2]);
    });
  });

  it('serves HTTPS when given a key and certificate', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'inflow-tls-'));
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=localhost',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
          '-keyout',
          join(dir, 'key.pem'),
          '-out',
          join(dir, 'cert.pem'),
        ],
        { stdio: 'ignore' },
      );
    } catch (error) {
      // CI installs openssl: there a missing one is a broken environment, not a reason to skip.
      if (process.env.CI === 'true') throw new Error('openssl is needed to make the test certificate (CI=true)', { cause: error });
      t.skip('openssl is not available');
      return;
    }
    const key = await readFile(join(dir, 'key.pem'));
    const cert = await readFile(join(dir, 'cert.pem'));
    const api = await startExampleServer(inference, { tls: { key, cert } });
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const req = httpsRequest(`https://127.0.0.1:${api.server.port}/v2/health/live`, { ca: cert, agent: false }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve(text));
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(body, '{"live":true}');
    } finally {
      await api.server.close(1000);
    }
  });
});
