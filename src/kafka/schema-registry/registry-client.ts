/**
 * A small client of the Confluent Schema Registry REST API (also served by Apicurio at
 * `/apis/ccompat/v7`, Karapace, Redpanda): the calls serdes need, with caching, basic or
 * bearer authentication, TLS, and retries with backoff while the registry is unreachable.
 *
 * Caching: a schema by id is immutable in the registry, so it is cached for good; a
 * registration (subject + schema text → id) too; "latest version of a subject" expires after
 * `latestTtlMs`. Concurrent requests for the same thing share one HTTP call.
 *
 * Errors: unreachable, timed out, 5xx or 429 → UNAVAILABLE (retried here first, with backoff,
 * `retry.attempts` times); 404 → NOT_FOUND; 409 (incompatible schema) → FAILED_PRECONDITION;
 * 422 (invalid schema) → INVALID_ARGUMENT; 401 → UNAUTHENTICATED; 403 → PERMISSION_DENIED.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { InflowError } from '../../errors.ts';

/** The schema formats of the Confluent API (`schemaType`; absent means AVRO). */
export const SchemaType = { AVRO: 'AVRO', PROTOBUF: 'PROTOBUF', JSON: 'JSON' } as const;
export type SchemaType = (typeof SchemaType)[keyof typeof SchemaType];

/** A schema another schema imports: by its name in the importing schema, and its subject/version. */
export interface SchemaReference {
  readonly name: string;
  readonly subject: string;
  readonly version: number;
}

/** A schema as registered. */
export interface Schema {
  readonly schemaType: SchemaType;
  /** The schema text (Avro JSON, .proto source, JSON Schema JSON). */
  readonly schema: string;
  readonly references: readonly SchemaReference[];
}

/** A schema under a subject. */
export interface SubjectVersion extends Schema {
  readonly subject: string;
  readonly version: number;
  readonly id: number;
}

/** Connection settings of a registry. */
export interface SchemaRegistryConfig {
  /** Base URL of the Confluent-compatible API, e.g. `http://registry:8081` or `https://host/apis/ccompat/v7`. */
  readonly url: string;
  /** Basic (username/password) or bearer (token) authentication. */
  readonly auth?: { readonly username: string; readonly password: string } | { readonly token: string };
  /** TLS for an https URL: PEM CA bundle, client certificate and key (mutual TLS). */
  readonly tls?: {
    readonly ca?: string | Buffer;
    readonly cert?: string | Buffer;
    readonly key?: string | Buffer;
    /** Default true: never turn off outside a test. */
    readonly rejectUnauthorized?: boolean;
    readonly servername?: string;
  };
  /** Bound on one HTTP request, ms. Default 10 000. */
  readonly timeoutMs?: number;
  /** Retries of UNAVAILABLE: attempts (default 5; Infinity waits for the registry), first and largest backoff, ms. */
  readonly retry?: { readonly attempts?: number; readonly initialMs?: number; readonly maxMs?: number };
  /** How long "latest version" answers are reused, ms. Default 60 000. */
  readonly latestTtlMs?: number;
  /** Cancels waits and retries. */
  readonly signal?: AbortSignal;
}

/** Whether the registry answered lately (for readiness). */
export interface RegistryHealth {
  readonly reachable: boolean;
  /** The last failure to reach it, while unreachable. */
  readonly error?: string;
  /** Date.now() of the change to the current state. */
  readonly since: number;
}

/** The registry calls serdes and tooling use. */
export interface SchemaRegistryClient {
  readonly url: string;
  /** The schema with this id (cached for good). */
  schemaById(id: number): Promise<Schema>;
  /** Registers (or finds) `schema` under `subject` and returns its id (cached). */
  register(subject: string, schema: Schema): Promise<number>;
  /** The id of `schema` when already registered under `subject`; NOT_FOUND otherwise. */
  lookup(subject: string, schema: Schema): Promise<SubjectVersion>;
  /** The latest version of `subject` (cached for `latestTtlMs`). */
  latest(subject: string): Promise<SubjectVersion>;
  /** One version of `subject` (cached for good). */
  version(subject: string, version: number): Promise<SubjectVersion>;
  /** Whether `schema` is compatible with the latest of `subject` under its compatibility level. */
  isCompatible(subject: string, schema: Schema): Promise<boolean>;
  /** Sets the compatibility level of `subject`, or the global one. */
  setCompatibility(level: string, subject?: string): Promise<void>;
  /** Deletes `subject` (soft; permanent too when asked). */
  deleteSubject(subject: string, permanent?: boolean): Promise<void>;
  health(): RegistryHealth;
}

interface Wire {
  schemaType?: string;
  schema: string;
  references?: SchemaReference[];
  subject?: string;
  version?: number;
  id?: number;
}

function toSchema(w: Wire): Schema {
  const type = (w.schemaType ?? 'AVRO').toUpperCase();
  if (type !== 'AVRO' && type !== 'PROTOBUF' && type !== 'JSON') {
    throw new InflowError('UNIMPLEMENTED', `schema type ${type} is not supported; expected AVRO, PROTOBUF or JSON`);
  }
  return { schemaType: type, schema: w.schema, references: w.references ?? [] };
}

function body(schema: Schema): string {
  // Confluent omits schemaType for Avro; sending it is accepted by every registry we know too.
  return JSON.stringify({
    schemaType: schema.schemaType,
    schema: schema.schema,
    ...(schema.references.length > 0 ? { references: schema.references } : {}),
  });
}

const enc = encodeURIComponent;

/** Creates a client; nothing is contacted until the first call. */
export function createSchemaRegistryClient(config: SchemaRegistryConfig): SchemaRegistryClient {
  const base = new URL(config.url.endsWith('/') ? config.url : `${config.url}/`);
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new InflowError('INVALID_CONFIG', `schema registry url ${config.url} must be http:// or https://`);
  }
  const headers: Record<string, string> = {
    accept: 'application/vnd.schemaregistry.v1+json, application/json',
    'content-type': 'application/vnd.schemaregistry.v1+json',
  };
  if (config.auth && 'token' in config.auth) headers.authorization = `Bearer ${config.auth.token}`;
  else if (config.auth)
    headers.authorization = `Basic ${Buffer.from(`${config.auth.username}:${config.auth.password}`).toString('base64')}`;
  const timeoutMs = config.timeoutMs ?? 10_000;
  const attempts = config.retry?.attempts ?? 5;
  const initialMs = config.retry?.initialMs ?? 100;
  const maxMs = config.retry?.maxMs ?? 10_000;
  const latestTtlMs = config.latestTtlMs ?? 60_000;
  let health: RegistryHealth = { reachable: true, since: Date.now() };

  const byId = new Map<number, Promise<Schema>>();
  const registered = new Map<string, Promise<number>>();
  const versions = new Map<string, Promise<SubjectVersion>>();
  const latest = new Map<string, { at: number; value: Promise<SubjectVersion> }>();

  function once(method: string, path: string, payload?: string): Promise<unknown> {
    const url = new URL(path, base);
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(url, { method, headers, timeout: timeoutMs, ...(url.protocol === 'https:' ? (config.tls ?? {}) : {}) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(json);
          reject(httpError(method, url, status, json, text));
        });
      });
      req.once('timeout', () =>
        req.destroy(new InflowError('UNAVAILABLE', `schema registry ${method} ${url.href} took over ${timeoutMs} ms`)),
      );
      req.once('error', (e) =>
        reject(
          e instanceof InflowError
            ? e
            : new InflowError('UNAVAILABLE', `schema registry at ${base.origin} is unreachable: ${e.message}`, { cause: e }),
        ),
      );
      req.end(payload);
    });
  }

  async function call(method: string, path: string, payload?: string): Promise<unknown> {
    let delay = initialMs;
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await once(method, path, payload);
        if (!health.reachable) health = { reachable: true, since: Date.now() };
        return result;
      } catch (error) {
        const e = InflowError.from(error);
        if (e.code !== 'UNAVAILABLE') {
          if (!health.reachable) health = { reachable: true, since: Date.now() };
          throw e;
        }
        if (health.reachable) health = { reachable: false, error: e.message, since: Date.now() };
        else health = { ...health, error: e.message };
        if (attempt >= attempts || config.signal?.aborted) throw e;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          config.signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
        });
        delay = Math.min(maxMs, delay * 2);
      }
    }
  }

  /** Caches a promise; a failed one is forgotten so the next call asks again. */
  function cached<K, V>(map: Map<K, Promise<V>>, key: K, make: () => Promise<V>): Promise<V> {
    let p = map.get(key);
    if (!p) {
      p = make();
      map.set(key, p);
      p.catch(() => map.delete(key));
    }
    return p;
  }

  const toVersion = (w: Wire, subject: string): SubjectVersion => ({
    ...toSchema(w),
    subject: w.subject ?? subject,
    version: w.version ?? 0,
    id: w.id ?? 0,
  });

  return {
    url: base.href.replace(/\/$/, ''),
    schemaById: (id) =>
      cached(byId, id, async () => {
        try {
          return toSchema((await call('GET', `schemas/ids/${id}`)) as Wire);
        } catch (error) {
          const e = InflowError.from(error);
          if (e.code !== 'NOT_FOUND') throw e;
          throw new InflowError('NOT_FOUND', `schema id ${id} is not in the schema registry at ${base.origin}`, {
            cause: e,
            details: { schemaId: id, reason: 'unknown-schema-id' },
          });
        }
      }),
    register: (subject, schema) =>
      cached(registered, `${subject}\0${schema.schemaType}\0${schema.schema}\0${JSON.stringify(schema.references)}`, async () => {
        const reply = (await call('POST', `subjects/${enc(subject)}/versions`, body(schema))) as { id: number };
        byId.set(reply.id, Promise.resolve(schema));
        return reply.id;
      }),
    lookup: async (subject, schema) => toVersion((await call('POST', `subjects/${enc(subject)}`, body(schema))) as Wire, subject),
    latest: (subject) => {
      const hit = latest.get(subject);
      if (hit && Date.now() - hit.at < latestTtlMs) return hit.value;
      const value = call('GET', `subjects/${enc(subject)}/versions/latest`).then((w) => toVersion(w as Wire, subject));
      latest.set(subject, { at: Date.now(), value });
      value.catch(() => latest.delete(subject));
      return value;
    },
    version: (subject, version) =>
      cached(versions, `${subject}\0${version}`, async () =>
        toVersion((await call('GET', `subjects/${enc(subject)}/versions/${version}`)) as Wire, subject),
      ),
    isCompatible: async (subject, schema) => {
      const reply = (await call('POST', `compatibility/subjects/${enc(subject)}/versions/latest`, body(schema))) as {
        is_compatible: boolean;
      };
      return reply.is_compatible;
    },
    setCompatibility: async (level, subject) => {
      await call('PUT', subject === undefined ? 'config' : `config/${enc(subject)}`, JSON.stringify({ compatibility: level }));
    },
    deleteSubject: async (subject, permanent = false) => {
      await call('DELETE', `subjects/${enc(subject)}`);
      if (permanent) await call('DELETE', `subjects/${enc(subject)}?permanent=true`);
      latest.delete(subject);
    },
    health: () => health,
  };
}

function httpError(method: string, url: URL, status: number, json: unknown, text: string): InflowError {
  const reply = (json ?? {}) as { error_code?: number; message?: string };
  const said = reply.message ?? (text.slice(0, 200) || `HTTP ${status}`);
  const what = `schema registry ${method} ${url.pathname} answered ${status}${reply.error_code ? ` (${reply.error_code})` : ''}: ${said}`;
  const details = { status, registryErrorCode: reply.error_code };
  if (status === 429 || status >= 500) return new InflowError('UNAVAILABLE', what, { details });
  if (status === 404) return new InflowError('NOT_FOUND', what, { details });
  if (status === 409)
    return new InflowError('FAILED_PRECONDITION', `${what}; the schema is incompatible with the subject's earlier versions`, { details });
  if (status === 422) return new InflowError('INVALID_ARGUMENT', what, { details });
  if (status === 401) return new InflowError('UNAUTHENTICATED', what, { details });
  if (status === 403) return new InflowError('PERMISSION_DENIED', what, { details });
  return new InflowError('INVALID_ARGUMENT', what, { details });
}
