/**
 * Clients and serdes from the validated `schemaRegistry:` section and a topic's registry format
 * (src/config/schema-registry-config.ts). Secret and schema files are read here, once, with
 * relative paths resolved against the config file's folder.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { RegistryFormatConfig, SchemaRegistrySection } from '../../config/schema-registry-config.ts';
import { InflowError } from '../../errors.ts';
import type { AsyncSerde } from '../serdes.ts';
import { createSchemaRegistryClient, type SchemaRegistryClient, type SchemaRegistryConfig } from './registry-client.ts';
import { createRegistrySerde } from './registry-serde.ts';

function readText(baseDir: string, file: string, what: string): string {
  const path = resolve(baseDir, file);
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new InflowError('INVALID_CONFIG', `cannot read ${what} ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/** Options of {@link registryClientFromConfig}. */
export interface RegistryFromConfigOptions {
  /** Folder relative file paths resolve against. */
  readonly baseDir: string;
  /** Ends the retries of an unreachable registry (a pipeline's close). */
  readonly signal?: AbortSignal;
  /** Tries while the registry is unreachable; default unbounded (a pipeline waits for its registry, backing off up to 10 s). */
  readonly attempts?: number;
}

/** A registry client for the `schemaRegistry:` section. */
export function registryClientFromConfig(section: SchemaRegistrySection, options: RegistryFromConfigOptions): SchemaRegistryClient {
  const { baseDir } = options;
  const secret = (value: string | undefined, file: string | undefined, what: string): string | undefined =>
    value ?? (file === undefined ? undefined : readText(baseDir, file, what).trim());
  let auth: SchemaRegistryConfig['auth'];
  if (section.basicAuth) {
    auth = {
      username: section.basicAuth.username,
      password: secret(section.basicAuth.password, section.basicAuth.passwordFile, 'schemaRegistry.basicAuth.passwordFile') ?? '',
    };
  } else {
    const token = secret(section.bearerToken, section.bearerTokenFile, 'schemaRegistry.bearerTokenFile');
    if (token !== undefined) auth = { token };
  }
  const t = section.tls;
  const pem = (value: string | undefined, file: string | undefined, what: string): string | undefined =>
    value ?? (file === undefined ? undefined : readText(baseDir, file, what));
  const tls = t && {
    ...(pem(t.ca, t.caFile, 'schemaRegistry.tls.caFile') !== undefined ? { ca: pem(t.ca, t.caFile, 'schemaRegistry.tls.caFile') } : {}),
    ...(pem(t.cert, t.certFile, 'schemaRegistry.tls.certFile') !== undefined
      ? { cert: pem(t.cert, t.certFile, 'schemaRegistry.tls.certFile') }
      : {}),
    ...(pem(t.key, t.keyFile, 'schemaRegistry.tls.keyFile') !== undefined
      ? { key: pem(t.key, t.keyFile, 'schemaRegistry.tls.keyFile') }
      : {}),
    rejectUnauthorized: t.rejectUnauthorized,
    ...(t.servername !== undefined ? { servername: t.servername } : {}),
  };
  return createSchemaRegistryClient({
    url: section.url,
    ...(auth ? { auth } : {}),
    ...(tls ? { tls } : {}),
    ...(section.requestTimeoutMs !== undefined ? { timeoutMs: section.requestTimeoutMs } : {}),
    ...(section.latestTtlMs !== undefined ? { latestTtlMs: section.latestTtlMs } : {}),
    retry: { attempts: options.attempts ?? Number.POSITIVE_INFINITY, initialMs: 200, maxMs: 10_000 },
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/** The serde of one topic's keys or values in a registry format. */
export function registrySerdeFromConfig(
  client: SchemaRegistryClient,
  spec: RegistryFormatConfig,
  where: { readonly topic: string; readonly isKey: boolean; readonly baseDir: string },
): AsyncSerde<unknown> {
  const schema = spec.schema ?? (spec.schemaFile === undefined ? undefined : readText(where.baseDir, spec.schemaFile, 'schemaFile'));
  const writes = schema !== undefined || spec.useLatest === true || spec.schemaId !== undefined;
  const readerSchema =
    spec.readerSchema ??
    (spec.readerSchemaFile === undefined ? undefined : readText(where.baseDir, spec.readerSchemaFile, 'readerSchemaFile'));
  return createRegistrySerde({
    client,
    format: spec.format,
    topic: where.topic,
    isKey: where.isKey,
    ...(spec.subjectNameStrategy ? { subjectNameStrategy: spec.subjectNameStrategy } : {}),
    ...(readerSchema !== undefined ? { readerSchema } : {}),
    ...(writes
      ? {
          write: {
            ...(schema !== undefined ? { schema } : {}),
            ...(spec.references ? { references: spec.references } : {}),
            ...(spec.autoRegister !== undefined ? { autoRegister: spec.autoRegister } : {}),
            ...(spec.useLatest !== undefined ? { useLatest: spec.useLatest } : {}),
            ...(spec.schemaId !== undefined ? { schemaId: spec.schemaId } : {}),
            ...(spec.recordName !== undefined ? { recordName: spec.recordName } : {}),
          },
        }
      : {}),
  });
}
