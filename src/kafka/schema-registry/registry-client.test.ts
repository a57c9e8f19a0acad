import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createSchemaRegistryClient } from './registry-client.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** A stand-in registry answering with `handler`; records each request's method, path and authorization. */
async function fakeRegistry(handler: Handler) {
  const seen: { method: string; url: string; authorization: string | undefined }[] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization });
    handler(req, res);
  });
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}/apis/ccompat/v7`, seen, close: () => new Promise((r) => server.close(r)) };
}

const reply =
  (status: number, body: unknown): Handler =>
  (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };

describe('Schema Registry client', () => {
  it('fetches a schema by id once and serves later calls from its cache', async () => {
    const registry = await fakeRegistry(reply(200, { schema: '"string"' }));
    const client = createSchemaRegistryClient({ url: registry.url });
    const [a, b] = await Promise.all([client.schemaById(3), client.schemaById(3)]);
    assert.deepEqual(a, { schemaType: 'AVRO', schema: '"string"', references: [] });
    assert.equal(a, b);
    await client.schemaById(3);
    assert.deepEqual(
      registry.seen.map((s) => s.url),
      ['/apis/ccompat/v7/schemas/ids/3'],
    );
    await registry.close();
  });

  it('sends basic credentials or a bearer token', async () => {
    const registry = await fakeRegistry(reply(200, { schema: '"int"' }));
    await createSchemaRegistryClient({ url: registry.url, auth: { username: 'svc', password: 's3cret' } }).schemaById(1);
    await createSchemaRegistryClient({ url: registry.url, auth: { token: 'tok-123' } }).schemaById(1);
    assert.deepEqual(
      registry.seen.map((s) => s.authorization),
      [`Basic ${Buffer.from('svc:s3cret').toString('base64')}`, 'Bearer tok-123'],
    );
    await registry.close();
  });

  it('maps the registry answers onto error codes: 404 NOT_FOUND, 409 FAILED_PRECONDITION, 422 INVALID_ARGUMENT, 401 UNAUTHENTICATED', async () => {
    const answers: Record<string, [number, unknown]> = {
      '/schemas/ids/9': [404, { error_code: 40403, message: 'Schema 9 not found' }],
      '/subjects/s/versions': [409, { error_code: 409, message: 'incompatible' }],
      '/subjects/t/versions': [422, { error_code: 42201, message: 'Invalid schema' }],
      '/subjects/u/versions/latest': [401, { error_code: 401, message: 'no' }],
    };
    const registry = await fakeRegistry((req, res) => {
      const [status, body] = answers[(req.url ?? '').replace('/apis/ccompat/v7', '')] ?? [500, {}];
      reply(status, body)(req, res);
    });
    const client = createSchemaRegistryClient({ url: registry.url });
    const schema = { schemaType: 'AVRO', schema: '"int"', references: [] } as const;
    await assert.rejects(client.schemaById(9), { code: 'NOT_FOUND', message: /schema id 9 is not in the schema registry/ });
    await assert.rejects(client.register('s', schema), { code: 'FAILED_PRECONDITION', message: /409.*incompatible/ });
    await assert.rejects(client.register('t', schema), { code: 'INVALID_ARGUMENT', message: /422 \(42201\): Invalid schema/ });
    await assert.rejects(client.latest('u'), { code: 'UNAUTHENTICATED' });
    await registry.close();
  });

  it('retries an unavailable registry with backoff, then reports it unreachable in its health', async () => {
    let calls = 0;
    const registry = await fakeRegistry((req, res) => {
      calls += 1;
      if (calls <= 2) return reply(503, { message: 'starting' })(req, res);
      reply(200, { schema: '"long"' })(req, res);
    });
    const client = createSchemaRegistryClient({ url: registry.url, retry: { attempts: 5, initialMs: 1, maxMs: 2 } });
    assert.equal((await client.schemaById(1)).schema, '"long"');
    assert.equal(calls, 3);
    assert.equal(client.health().reachable, true);
    await registry.close();

    const down = createSchemaRegistryClient({ url: registry.url, retry: { attempts: 3, initialMs: 1, maxMs: 2 } });
    await assert.rejects(down.schemaById(2), { code: 'UNAVAILABLE', message: /unreachable: connect ECONNREFUSED/ });
    assert.equal(down.health().reachable, false);
    assert.match(down.health().error ?? '', /ECONNREFUSED/);
  });

  it('bounds a slow registry by its timeout (UNAVAILABLE, retriable)', async () => {
    const registry = await fakeRegistry(() => {}); // never answers
    const client = createSchemaRegistryClient({ url: registry.url, timeoutMs: 50, retry: { attempts: 1 } });
    const error = await client.schemaById(1).catch((e: unknown) => e);
    assert.equal((error as { code: string }).code, 'UNAVAILABLE');
    assert.match((error as Error).message, /took over 50 ms/);
    void registry.close();
  });

  it('talks TLS to an https registry trusting the given CA', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inflow-registry-tls-'));
    const [key, cert] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
    await promisify(execFile)('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ]);
    const pem = await readFile(cert);
    const server = createHttpsServer({ key: await readFile(key), cert: pem }, reply(200, { schema: '"bytes"' }));
    const port = await listen(server);
    const url = `https://127.0.0.1:${port}`;
    await assert.rejects(createSchemaRegistryClient({ url, retry: { attempts: 1 } }).schemaById(1), {
      code: 'UNAVAILABLE',
      message: /self-signed/,
    });
    assert.equal((await createSchemaRegistryClient({ url, tls: { ca: pem } }).schemaById(1)).schema, '"bytes"');
    await new Promise((r) => server.close(r));
  });
});
