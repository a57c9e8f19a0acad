/**
 * The wire format of the models topic (format 1). Three kinds of records, told apart by key:
 *
 * | key                                         | value                         | headers                                        |
 * |---------------------------------------------|-------------------------------|------------------------------------------------|
 * | `m/<model>/<version>/chunk/<file>/<n>`      | bytes of one chunk of a file  | `inflow-publish-id`, `inflow-sha256`, `inflow-offset` |
 * | `m/<model>/<version>/manifest`              | {@link Manifest} JSON (null: the version is deleted) | `inflow-publish-id`     |
 * | `m/<model>/control`                         | {@link Control} JSON (null: back to the manifest's labels/routing) | –         |
 *
 * Keys are chosen for log compaction: the latest record per key is what a reader starting from
 * scratch sees, so a version is its latest manifest plus the latest chunk of each position, and a
 * model's labels/routing are its latest control record. Chunks come before their manifest (the
 * publisher writes the manifest last), so a reader that sees a manifest knows every chunk it names
 * was written before it. The publish id ties chunks to the one manifest they were written for: a
 * version published twice never mixes the chunks of both.
 */
import { z } from 'zod';
import { InflowError } from '../errors.ts';
import type { KafkaHeader } from '../kafka/types.ts';
import { MODEL_NAME, routingSchema, VERSION_DIR } from '../repository/model-config.ts';

/** The topic `inflow models …` and the model sync use unless told otherwise. */
export const DEFAULT_MODELS_TOPIC = 'inflow-models';
/**
 * Bytes per chunk record, 512 KiB: Kafka's default `max.message.bytes` is ~1 MiB (1 048 588) per
 * record batch, so one chunk plus key and headers fits with room to spare.
 */
export const DEFAULT_CHUNK_SIZE = 512 * 1024;
/** Largest chunk size accepted, 16 MiB (needs a broker and topic configured for it). */
export const MAX_CHUNK_SIZE = 16 * 1024 * 1024;

export const Header = {
  PUBLISH_ID: 'inflow-publish-id',
  SHA256: 'inflow-sha256',
  OFFSET: 'inflow-offset',
  /** On a manifest: base64 Ed25519 signature of the record value (./manifest-signing.ts). */
  SIGNATURE: 'inflow-signature',
  /** On a manifest: id of the key that signed it (16 hex digits of the public key's sha256). */
  SIGNING_KEY: 'inflow-signing-key',
} as const;

/**
 * Why a follower refused a version or control record: a closed set, the `reason` label of
 * `inflow_model_sync_rejected_total` (never free text, so a topic writer cannot grow the metric).
 */
export const RejectReason = {
  /** Trusted keys are configured and the manifest carries no signature. */
  UNSIGNED: 'unsigned',
  /** Signed by a key that is not trusted. */
  UNTRUSTED_KEY: 'untrusted-key',
  /** The signature does not verify (manifest changed after signing). */
  BAD_SIGNATURE: 'bad-signature',
  /** The config names a platform that runs code from the version folder, and executable platforms are not allowed. */
  EXECUTABLE_PLATFORM: 'executable-platform',
  /** A chunk or file whose size, offset or sha256 does not match the manifest. */
  INTEGRITY: 'integrity',
  /** Chunks missing (partial publish). */
  INCOMPLETE: 'incomplete',
  /** The version would exceed the staging space (maxStagingBytes). */
  STAGING_LIMIT: 'staging-limit',
  /** The manifest is not valid format-1 JSON, or names another model/version. */
  INVALID_MANIFEST: 'invalid-manifest',
  /** The config it carries (or the merged config.yaml) is invalid. */
  INVALID_CONFIG: 'invalid-config',
  /** A control record that does not parse or does not apply. */
  INVALID_CONTROL: 'invalid-control',
} as const;
export type RejectReason = (typeof RejectReason)[keyof typeof RejectReason];

const SHA256 = /^[0-9a-f]{64}$/;
/** Same rule as config.yaml's labels (src/repository/model-config.ts). */
const LABEL = /^[A-Za-z][A-Za-z0-9._-]{0,63}$/;
const PUBLISH_ID = /^[A-Za-z0-9-]{8,64}$/;

/** A relative path inside a version folder: `/`-separated, no empty, `.` or `..` segment, no backslash. */
export function isSafeRelativePath(path: string): boolean {
  if (path.length === 0 || path.length > 1024 || path.startsWith('/') || path.includes('\\') || path.includes('\0')) return false;
  return path.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

const versionNumber = z
  .number()
  .int()
  .min(0)
  .refine((v) => VERSION_DIR.test(String(v)), 'expected a version number of at most 16 digits');

export const manifestFileSchema = z.strictObject({
  path: z.string().refine(isSafeRelativePath, 'expected a relative path inside the version folder (no "..", no leading "/")'),
  /** Bytes. */
  size: z.number().int().min(0),
  sha256: z.string().regex(SHA256, 'expected 64 lowercase hex digits'),
  /** Chunk records of this file (`ceil(size / chunkSize)`, 0 for an empty file). */
  chunks: z.number().int().min(0),
});
export type ManifestFile = z.output<typeof manifestFileSchema>;

export const manifestSchema = z
  .strictObject({
    format: z.literal(1),
    model: z.string().regex(MODEL_NAME, 'expected a model name like "digits-mlp"'),
    version: versionNumber,
    publishId: z.string().regex(PUBLISH_ID),
    /** Bytes per chunk (the last chunk of a file may be shorter). */
    chunkSize: z.number().int().min(1).max(MAX_CHUNK_SIZE),
    files: z.array(manifestFileSchema).min(1).max(10_000),
    /** The model's config.yaml as an object (validated against modelConfigSchema by both ends); null when not shipped. */
    config: z.record(z.string(), z.unknown()).nullable(),
    /** ISO 8601. */
    publishedAt: z.string(),
    publisher: z.string(),
  })
  .refine((m) => new Set(m.files.map((f) => f.path)).size === m.files.length, { message: 'file paths must be unique', path: ['files'] })
  .refine((m) => m.files.every((f) => f.chunks === Math.ceil(f.size / m.chunkSize)), {
    message: 'every file needs ceil(size / chunkSize) chunks',
    path: ['files'],
  });
export type Manifest = z.output<typeof manifestSchema>;

export const controlSchema = z.strictObject({
  format: z.literal(1),
  model: z.string().regex(MODEL_NAME),
  /** The model's whole label map (replaces the manifest config's labels); absent: the manifest's apply. */
  labels: z.record(z.string().regex(LABEL, 'expected a label like "stable" or "canary"'), versionNumber).optional(),
  /** The model's whole routing (split + shadow); null: none; absent: the manifest config's applies. */
  routing: routingSchema.nullable().optional(),
  publishedAt: z.string(),
  publisher: z.string(),
});
export type Control = z.output<typeof controlSchema>;

/** What a models-topic key names. */
export type ParsedKey =
  | { kind: 'chunk'; model: string; version: number; file: number; n: number }
  | { kind: 'manifest'; model: string; version: number }
  | { kind: 'control'; model: string };

export const manifestKey = (model: string, version: number): string => `m/${model}/${version}/manifest`;
export const chunkKey = (model: string, version: number, file: number, n: number): string => `m/${model}/${version}/chunk/${file}/${n}`;
export const controlKey = (model: string): string => `m/${model}/control`;

const INDEX = /^(0|[1-9]\d{0,8})$/;

/** Parses a models-topic key; undefined for anything else (other writers' records are ignored). */
export function parseKey(key: Buffer | null): ParsedKey | undefined {
  if (!key || key.length > 512) return undefined;
  const parts = key.toString('utf8').split('/');
  if (parts[0] !== 'm' || !MODEL_NAME.test(parts[1] ?? '')) return undefined;
  const model = parts[1] as string;
  if (parts.length === 3 && parts[2] === 'control') return { kind: 'control', model };
  if (!VERSION_DIR.test(parts[2] ?? '')) return undefined;
  const version = Number(parts[2]);
  if (parts.length === 4 && parts[3] === 'manifest') return { kind: 'manifest', model, version };
  if (parts.length === 6 && parts[3] === 'chunk' && INDEX.test(parts[4] ?? '') && INDEX.test(parts[5] ?? '')) {
    return { kind: 'chunk', model, version, file: Number(parts[4]), n: Number(parts[5]) };
  }
  return undefined;
}

/** The value of the first header named `name`, as text. */
export function headerText(headers: readonly KafkaHeader[], name: string): string | undefined {
  return headers.find(([k]) => k === name)?.[1].toString('utf8');
}

/** Chunk facts from its headers, or a reason why they are unusable. */
export function chunkHeaders(headers: readonly KafkaHeader[]): { publishId: string; sha256: string; offset: number } | string {
  const publishId = headerText(headers, Header.PUBLISH_ID) ?? '';
  const sha256 = headerText(headers, Header.SHA256) ?? '';
  const offsetText = headerText(headers, Header.OFFSET) ?? '';
  if (!PUBLISH_ID.test(publishId)) return `header ${Header.PUBLISH_ID} is missing or malformed ("${publishId.slice(0, 80)}")`;
  if (!SHA256.test(sha256)) return `header ${Header.SHA256} is missing or not 64 hex digits`;
  // 2^40 bytes (1 TiB) per file bounds what a malformed header can make us allocate on disk.
  if (!/^\d{1,13}$/.test(offsetText) || Number(offsetText) > 2 ** 40) return `header ${Header.OFFSET} is missing or out of range`;
  return { publishId, sha256, offset: Number(offsetText) };
}

/** Parses and validates a JSON record value with `schema`; INVALID_ARGUMENT naming `what` when it does not fit. */
export function parseJsonValue<S extends z.ZodType>(schema: S, value: Buffer, what: string): z.output<S> {
  let raw: unknown;
  try {
    raw = JSON.parse(value.toString('utf8'));
  } catch (error) {
    throw new InflowError('INVALID_ARGUMENT', `${what} is not JSON: ${(error as Error).message}`);
  }
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; ');
  throw new InflowError('INVALID_ARGUMENT', `${what} does not match models-topic format 1: ${issues}`);
}

/** Total bytes of a manifest's files. */
export function manifestBytes(manifest: Manifest): number {
  return manifest.files.reduce((sum, f) => sum + f.size, 0);
}
