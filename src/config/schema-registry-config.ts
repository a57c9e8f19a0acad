/**
 * Schema of the `schemaRegistry:` section (beside `kafka:`): where the Schema Registry of the
 * cluster is and how to reach it, and the per-topic record formats that use it. Secrets may be
 * files (`passwordFile`, `tokenFile`, `caFile`, …: a mounted Kubernetes Secret), read when the
 * client is made; relative paths resolve against the config file's folder.
 */
import { z } from 'zod';
import { sslConfigSchema } from './kafka-config.ts';

function oneOf<T extends Record<string, unknown>>(a: keyof T & string, b: keyof T & string) {
  return (value: T, ctx: z.RefinementCtx): void => {
    if (value[a] !== undefined && value[b] !== undefined)
      ctx.addIssue({ code: 'custom', path: [b], message: `set ${a} or ${b}, not both` });
  };
}

/** The `schemaRegistry:` section. Times are milliseconds. */
export const schemaRegistryConfigSchema = z
  .strictObject({
    // url: described in src/cli/config-reference.ts (other files' `url` keys mean other things).
    url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL of the registry API' }),
    /** HTTP basic authentication (Confluent Cloud: the API key and secret). */
    basicAuth: z
      .strictObject({
        username: z.string().min(1),
        password: z.string().optional(),
        passwordFile: z.string().min(1).optional(),
      })
      .superRefine(oneOf('password', 'passwordFile'))
      .superRefine((v, ctx) => {
        if (v.password === undefined && v.passwordFile === undefined)
          ctx.addIssue({ code: 'custom', path: ['password'], message: 'give password or passwordFile' });
      })
      .optional(),
    /** Bearer token authentication. */
    bearerToken: z.string().min(1).optional(),
    bearerTokenFile: z.string().min(1).optional(),
    /** TLS of an https URL (CA, client certificate and key for mutual TLS). */
    tls: sslConfigSchema.optional(),
    // requestTimeoutMs: described in src/cli/config-reference.ts, like url.
    requestTimeoutMs: z.number().int().positive().optional(),
    /** How long the subject's latest version is reused when writing with `useLatest`. Default 60 000. */
    latestTtlMs: z.number().int().min(0).optional(),
  })
  .superRefine(oneOf('bearerToken', 'bearerTokenFile'))
  .superRefine((v, ctx) => {
    if (v.basicAuth && (v.bearerToken !== undefined || v.bearerTokenFile !== undefined))
      ctx.addIssue({ code: 'custom', path: ['bearerToken'], message: 'set basicAuth or a bearer token, not both' });
  });

/** Validated `schemaRegistry:` section. */
export type SchemaRegistrySection = z.output<typeof schemaRegistryConfigSchema>;

/** Record formats kept in the registry, as `key:`/`value:` of a topic name them. */
export const REGISTRY_FORMATS = ['avro', 'protobuf', 'json-schema'] as const;

/**
 * A topic's key or value in a registry format: `{ format: avro }` reads; writing also names the
 * output schema (text, a file, the subject's latest version, or a fixed id).
 */
export const registryFormatSchema = z.strictObject({
  format: z.enum(REGISTRY_FORMATS),
  /** Subject naming: topic (`<topic>-value`, default), record (the record's full name) or topic-record. */
  subjectNameStrategy: z.enum(['topic', 'record', 'topic-record']).optional(),
  /** Output schema text (Avro JSON, .proto source, JSON Schema). */
  schema: z.string().min(1).optional(),
  /** Output schema from a file (relative to the config file's folder). */
  schemaFile: z.string().min(1).optional(),
  /** Schemas the output schema imports: by name, registered under subject/version. */
  references: z
    .array(z.strictObject({ name: z.string().min(1), subject: z.string().min(1), version: z.number().int().positive() }))
    .optional(),
  /** Register the output schema under its subject (default true); false: it must be registered already. */
  autoRegister: z.boolean().optional(),
  /** Write with the subject's latest version instead of a schema of our own. */
  useLatest: z.boolean().optional(),
  /** Write with this registered schema id. */
  schemaId: z.number().int().min(0).optional(),
  /** Protobuf: the message to write (full name; default the first). Record strategies with useLatest: the record name. */
  recordName: z.string().min(1).optional(),
  /** Avro: read records into this schema (schema evolution: compatible writer schemas resolve into it). */
  readerSchema: z.string().min(1).optional(),
  /** Avro: the reader schema from a file (relative to the config file's folder). */
  readerSchemaFile: z.string().min(1).optional(),
});

/** A validated registry format of a key or value. */
export type RegistryFormatConfig = z.output<typeof registryFormatSchema>;

/** Serde names a topic's key or value may have without a registry (src/kafka/serdes.ts). */
export const SERDE_NAMES = ['bytes', 'string', 'json', 'tensor'] as const;

/** A topic's key or value format: a serde name, or a registry format (needs the `schemaRegistry:` section). */
export const topicFormatSchema = z.union([z.enum(SERDE_NAMES), registryFormatSchema], {
  error: 'expected bytes, string, json, tensor, or { format: avro | protobuf | json-schema, … }',
});
