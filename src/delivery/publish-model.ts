/**
 * Writing a model version to the models topic: every file in chunks, then the manifest.
 * Label moves, routing changes and deletions are in ./publish-control.ts.
 */
import { createHash, randomUUID } from 'node:crypto';
import { open, readdir, stat } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { join, relative, sep } from 'node:path';
import { parseConfigText, validateConfig } from '../config/load-config.ts';
import { InflowError } from '../errors.ts';
import type { KafkaClient, KafkaProducer } from '../kafka/types.ts';
import { MODEL_NAME, modelConfigSchema, VERSION_DIR } from '../repository/model-config.ts';
import {
  chunkKey,
  DEFAULT_CHUNK_SIZE,
  DEFAULT_MODELS_TOPIC,
  Header,
  isSafeRelativePath,
  MAX_CHUNK_SIZE,
  type Manifest,
  type ManifestFile,
  manifestKey,
  manifestSchema,
} from './delivery-format.ts';
import { type SigningKey, signatureHeaders } from './manifest-signing.ts';
import { ensureModelsTopic, modelPartition } from './models-topic.ts';

/** A file given in memory instead of a folder. */
export interface PublishFile {
  /** Relative path inside the version folder, `/`-separated. */
  path: string;
  data: Uint8Array;
}

/** Options of {@link publishModel}. */
export interface PublishModelOptions {
  client: KafkaClient;
  /** Default `inflow-models`. */
  topic?: string;
  /** A version folder to publish (every regular file under it); excludes `files`. */
  modelDir?: string;
  /** Files in memory; excludes `modelDir`. */
  files?: readonly PublishFile[];
  /** Files in memory published along with `modelDir`'s or `files` (e.g. a reference profile built at publish time). */
  extraFiles?: readonly PublishFile[];
  model: string;
  version: number;
  /** The model's config.yaml, as YAML text or an object; validated here. Readers write it as the model's config.yaml. */
  config?: string | Record<string, unknown>;
  /** Bytes per chunk record. Default 512 KiB. */
  chunkSize?: number;
  /** Who published, for `inflow models list`. Default `user@host`. */
  publisher?: string;
  /** Signs the manifest (Ed25519; ./manifest-signing.ts): followers with trusted keys install only signed versions. */
  signingKey?: SigningKey;
  signal?: AbortSignal;
  /** Fixed publish id and clock (golden tests). */
  publishId?: string;
  now?: () => number;
}

/** What {@link publishModel} wrote. */
export interface PublishResult {
  manifest: Manifest;
  partition: number;
  /** Offset of the manifest record. */
  offset: bigint;
  /** Chunk records written. */
  chunks: number;
  /** File bytes written. */
  bytes: number;
  /** Id of the key that signed the manifest, if signed. */
  signedBy?: string;
}

interface Source {
  path: string;
  size: number;
  /** Reads `length` bytes at `position`. */
  read(position: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

/** `user@host`, or `unknown@host` where the user has no passwd entry (some containers). */
export function defaultPublisher(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry for the uid: keep "unknown".
  }
  return `${user}@${hostname()}`;
}

/** Throws INVALID_ARGUMENT unless `model` is a valid model name and `version` a version number. */
export function checkModelVersion(model: string, version: number): void {
  if (!MODEL_NAME.test(model)) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      `model name "${model}": expected letters, digits, ".", "_" or "-" (at most 128), like "digits-mlp"`,
    );
  }
  if (!Number.isInteger(version) || !VERSION_DIR.test(String(version))) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      `version ${version} of model "${model}": expected a non-negative integer of at most 16 digits`,
    );
  }
}

/** Validates a config (text or object) against the config.yaml schema; returns it as the plain object written. */
function configObject(config: string | Record<string, unknown>, model: string): Record<string, unknown> {
  const source = `the config of model "${model}"`;
  const raw = typeof config === 'string' ? parseConfigText(config, source) : config;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new InflowError(
      'INVALID_CONFIG',
      `${source}: expected a mapping (platform: onnx, …), got ${Array.isArray(raw) ? 'a list' : typeof raw}`,
    );
  }
  validateConfig(modelConfigSchema, raw, source);
  return raw as Record<string, unknown>;
}

async function walk(root: string, dir: string, depth: number, out: string[]): Promise<void> {
  if (depth > 16) throw new InflowError('INVALID_ARGUMENT', `${dir}: folders nested deeper than 16 levels`);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    // stat follows symlinks: a linked file is published as its content.
    const s = await stat(full);
    if (s.isDirectory()) await walk(root, full, depth + 1, out);
    else if (s.isFile()) out.push(relative(root, full).split(sep).join('/'));
  }
}

async function folderSources(dir: string): Promise<Source[]> {
  const paths: string[] = [];
  try {
    await walk(dir, dir, 0, paths);
  } catch (error) {
    if (error instanceof InflowError) throw error;
    throw new InflowError(
      'INVALID_ARGUMENT',
      `cannot read model folder ${dir}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      {
        cause: error,
      },
    );
  }
  paths.sort();
  const sources: Source[] = [];
  for (const path of paths) {
    const handle = await open(join(dir, path), 'r');
    const { size } = await handle.stat();
    sources.push({
      path,
      size,
      async read(position, length) {
        const buffer = Buffer.allocUnsafe(length);
        const { bytesRead } = await handle.read(buffer, 0, length, position);
        if (bytesRead !== length) {
          throw new InflowError('FAILED_PRECONDITION', `${join(dir, path)} changed while being published (expected ${size} bytes)`);
        }
        return buffer;
      },
      close: () => handle.close(),
    });
  }
  return sources;
}

function memorySources(files: readonly PublishFile[]): Source[] {
  return [...files]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((f) => ({
      path: f.path,
      size: f.data.byteLength,
      read: async (position, length) => Buffer.from(f.data.buffer, f.data.byteOffset + position, length),
      close: async () => undefined,
    }));
}

async function topicPartition(client: KafkaClient, topic: string, model: string): Promise<number> {
  const admin = client.admin();
  try {
    await ensureModelsTopic(admin, topic);
    const [description] = await admin.describeTopics([topic]);
    return modelPartition(model, description?.partitions ?? 1);
  } finally {
    await admin.close();
  }
}

/**
 * Publishes a model version: every file in chunks (sha256 per chunk in a header), then the
 * manifest (sizes, sha256 per file, config). Creates the topic (compacted) when missing.
 * @throws InflowError INVALID_ARGUMENT / INVALID_CONFIG for bad names, paths or config; Kafka codes from the client.
 */
export async function publishModel(options: PublishModelOptions): Promise<PublishResult> {
  const { client, model, version } = options;
  const topic = options.topic ?? DEFAULT_MODELS_TOPIC;
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  checkModelVersion(model, version);
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
    throw new InflowError('INVALID_ARGUMENT', `chunk size: expected 1..${MAX_CHUNK_SIZE} bytes, got ${chunkSize}`);
  }
  if ((options.modelDir === undefined) === (options.files === undefined)) {
    throw new InflowError('INVALID_ARGUMENT', 'publishModel needs exactly one of modelDir (a version folder) or files');
  }
  const config = options.config === undefined ? null : configObject(options.config, model);
  const sources = [
    ...(options.modelDir !== undefined ? await folderSources(options.modelDir) : memorySources(options.files ?? [])),
    ...memorySources(options.extraFiles ?? []),
  ];
  let producer: KafkaProducer | undefined;
  try {
    if (sources.length === 0) throw new InflowError('INVALID_ARGUMENT', `model "${model}" version ${version}: no files to publish`);
    for (const s of sources) {
      if (!isSafeRelativePath(s.path))
        throw new InflowError('INVALID_ARGUMENT', `file path "${s.path}": expected a relative path without ".." segments`);
    }
    const duplicate = sources.find((s, i) => sources.findIndex((o) => o.path === s.path) !== i);
    if (duplicate) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `model "${model}" version ${version}: file paths must be unique ("${duplicate.path}" twice)`,
      );
    }
    const partition = await topicPartition(client, topic, model);
    const publishId = options.publishId ?? randomUUID();
    producer = client.producer({ acks: 'all', idempotent: true });
    const files: ManifestFile[] = [];
    let chunks = 0;
    for (const [index, source] of sources.entries()) {
      const fileHash = createHash('sha256');
      const count = Math.ceil(source.size / chunkSize);
      for (let n = 0; n < count; n++) {
        if (options.signal?.aborted) throw new InflowError('CANCELLED', `publishing ${model} version ${version} was cancelled`);
        const position = n * chunkSize;
        const data = await source.read(position, Math.min(chunkSize, source.size - position));
        fileHash.update(data);
        // One record per send: several 512 KiB chunks in one produce request would exceed the
        // broker's default 1 MiB batch limit.
        await producer.send([
          {
            topic,
            partition,
            key: Buffer.from(chunkKey(model, version, index, n)),
            value: data,
            headers: [
              [Header.PUBLISH_ID, Buffer.from(publishId)],
              [Header.SHA256, Buffer.from(createHash('sha256').update(data).digest('hex'))],
              [Header.OFFSET, Buffer.from(String(position))],
            ],
          },
        ]);
        chunks++;
      }
      files.push({ path: source.path, size: source.size, sha256: fileHash.digest('hex'), chunks: count });
    }
    const manifest = manifestSchema.parse({
      format: 1,
      model,
      version,
      publishId,
      chunkSize,
      files,
      config,
      publishedAt: new Date((options.now ?? Date.now)()).toISOString(),
      publisher: options.publisher ?? defaultPublisher(),
    } satisfies Manifest);
    const value = Buffer.from(JSON.stringify(manifest));
    // Last, so a reader that sees the manifest has already been sent every chunk it names.
    const [meta] = await producer.send([
      {
        topic,
        partition,
        key: Buffer.from(manifestKey(model, version)),
        value,
        headers: [[Header.PUBLISH_ID, Buffer.from(publishId)], ...(options.signingKey ? signatureHeaders(value, options.signingKey) : [])],
      },
    ]);
    return {
      manifest,
      partition,
      offset: meta?.offset ?? -1n,
      chunks,
      bytes: files.reduce((sum, f) => sum + f.size, 0),
      ...(options.signingKey ? { signedBy: options.signingKey.id } : {}),
    };
  } finally {
    await producer?.close();
    await Promise.all(sources.map((s) => s.close().catch(() => undefined)));
  }
}
