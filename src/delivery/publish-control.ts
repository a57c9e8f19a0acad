/**
 * Writing control to the models topic: label moves and routing changes (one control record per
 * model: a rollout or rollback is one record) and a version's deletion (tombstones).
 */
import { validateConfig } from '../config/load-config.ts';
import { InflowError } from '../errors.ts';
import type { KafkaClient, ProducerRecord } from '../kafka/types.ts';
import { modelConfigSchema, type RoutingConfig, selectVersions } from '../repository/model-config.ts';
import { type Control, chunkKey, controlKey, controlSchema, DEFAULT_MODELS_TOPIC, manifestKey } from './delivery-format.ts';
import { type SigningKey, signatureHeaders, tombstoneBytes } from './manifest-signing.ts';
import { type ManifestEntry, type ModelsTopicContent, readModelsTopic } from './models-topic.ts';
import { checkModelVersion, defaultPublisher } from './publish-model.ts';

/** Options of {@link publishControl}. */
export interface PublishControlOptions {
  client: KafkaClient;
  topic?: string;
  model: string;
  /** Label → version moves; `null` removes a label. Merged into the current labels unless `replace`. */
  labels?: Record<string, number | null>;
  /** The model's whole routing (split and shadow); `null` removes it. Absent: unchanged. */
  routing?: RoutingConfig | null;
  /** Start from no labels instead of the current ones. Default false. */
  replace?: boolean;
  publisher?: string;
  now?: () => number;
  /** Bound on reading the topic's current state, ms. Default 60 000. */
  timeoutMs?: number;
  /** Signs the control record: followers with trusted keys apply only signed label moves and splits. */
  signingKey?: SigningKey;
}

/** What {@link publishControl} wrote. */
export interface ControlResult {
  control: Control;
  partition: number;
  offset: bigint;
  /** Versions named that the model's versionPolicy does not load (the label/split cannot reach them). */
  warnings: string[];
}

/** Named versions the latest manifest's versionPolicy leaves unloaded, as warnings. */
function policyWarnings(model: string, now: ModelInTopic, named: readonly number[]): string[] {
  const parsed = modelConfigSchema.safeParse(now.latest.manifest.config ?? {});
  if (!parsed.success) return [];
  const loaded = new Set(selectVersions(parsed.data.versionPolicy, [...now.published]));
  const unloaded = [...new Set(named)].filter((v) => !loaded.has(v)).sort((a, b) => a - b);
  if (unloaded.length === 0) return [];
  return [
    `model "${model}": version ${unloaded.join(', ')} is not loaded under versionPolicy ${JSON.stringify(parsed.data.versionPolicy)} ` +
      `(loaded: ${[...loaded].join(', ') || 'none'}); publish with versionPolicy { all: true } or { specific: [...] } to serve it`,
  ];
}

function routingVersions(routing: RoutingConfig | null | undefined): number[] {
  if (!routing) return [];
  return [...(routing.split ?? []).map((s) => s.version), ...(routing.shadow ? [routing.shadow.version] : [])];
}

/** A model's state in the topic: its published versions and the labels/routing in force. */
interface ModelInTopic {
  latest: ManifestEntry;
  published: Set<number>;
  control: Control | undefined;
  labels: Record<string, number>;
  routing: RoutingConfig | null | undefined;
}

function modelInTopic(content: ModelsTopicContent, model: string, topic: string): ModelInTopic {
  const entries = content.manifests.filter((e) => e.manifest.model === model);
  const latest = entries.reduce<ManifestEntry | undefined>((a, e) => (a === undefined || e.offset > a.offset ? e : a), undefined);
  if (!latest) throw new InflowError('NOT_FOUND', `model "${model}" has no published version in topic "${topic}"; publish one first`);
  const control = content.controls.get(model);
  // What readers apply: the control record's labels/routing, else the latest manifest config's.
  const config = latest.manifest.config ?? {};
  return {
    latest,
    published: new Set(entries.map((e) => e.manifest.version)),
    control,
    labels: { ...(control?.labels ?? (config.labels as Record<string, number> | undefined) ?? {}) },
    routing: control?.routing !== undefined ? control.routing : (config.routing as RoutingConfig | undefined),
  };
}

/**
 * Moves labels and/or changes routing of a model: reads the topic's current state (so a label
 * move keeps the other labels), checks that every version named has a manifest in the topic, and
 * writes the model's one control record. A rollout or rollback is this one record. Two
 * publishers moving labels of one model at the same moment race (last write wins).
 */
export async function publishControl(options: PublishControlOptions): Promise<ControlResult> {
  const { client, model } = options;
  const topic = options.topic ?? DEFAULT_MODELS_TOPIC;
  checkModelVersion(model, 0);
  if (options.labels === undefined && options.routing === undefined) {
    throw new InflowError('INVALID_ARGUMENT', `control for model "${model}": expected labels and/or routing to change`);
  }
  const content = await readModelsTopic({ client, topic, ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) });
  const now = modelInTopic(content, model, topic);
  const moves = new Map(Object.entries(options.labels ?? {}));
  const labels: Record<string, number> = Object.fromEntries(
    [...Object.entries(options.replace ? {} : now.labels).filter(([label]) => !moves.has(label)), ...moves].filter(
      (entry): entry is [string, number] => entry[1] !== null,
    ),
  );
  const routing = options.routing !== undefined ? options.routing : now.routing;
  const missing = [...Object.values(labels), ...routingVersions(routing)].filter((v) => !now.published.has(v));
  if (missing.length > 0) {
    const published = [...now.published].sort((a, b) => a - b).join(', ');
    throw new InflowError(
      'FAILED_PRECONDITION',
      `model "${model}": version ${[...new Set(missing)].join(', ')} is not published in topic "${topic}" (published: ${published})`,
    );
  }
  const control = validateConfig(
    controlSchema,
    {
      format: 1,
      model,
      labels,
      ...(routing !== undefined ? { routing } : {}),
      publishedAt: new Date((options.now ?? Date.now)()).toISOString(),
      publisher: options.publisher ?? defaultPublisher(),
    },
    `control for model "${model}"`,
  );
  const producer = client.producer({ acks: 'all', idempotent: true });
  try {
    const value = Buffer.from(JSON.stringify(control));
    const headers = options.signingKey ? signatureHeaders(value, options.signingKey) : [];
    const [meta] = await producer.send([
      { topic, partition: now.latest.partition, key: Buffer.from(controlKey(model)), value, ...(headers.length > 0 ? { headers } : {}) },
    ]);
    const warnings = policyWarnings(model, now, [...Object.values(labels), ...routingVersions(routing)]);
    return { control, partition: now.latest.partition, offset: meta?.offset ?? -1n, warnings };
  } finally {
    await producer.close();
  }
}

/** Options of {@link deleteModelVersion}. */
export interface DeleteVersionOptions {
  client: KafkaClient;
  topic?: string;
  model: string;
  version: number;
  timeoutMs?: number;
  /** Signs the manifest tombstone: followers with trusted keys remove a version only on a signed deletion. */
  signingKey?: SigningKey;
}

/**
 * Deletes a version: tombstones for its chunks, then for its manifest (readers remove the
 * version folder on the manifest's tombstone; compaction then drops the bytes). Refuses a version
 * that a label or the routing still names.
 */
export async function deleteModelVersion(options: DeleteVersionOptions): Promise<{ tombstones: number }> {
  const { client, model, version } = options;
  const topic = options.topic ?? DEFAULT_MODELS_TOPIC;
  checkModelVersion(model, version);
  const content = await readModelsTopic({ client, topic, ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) });
  const entry = content.manifests.find((e) => e.manifest.model === model && e.manifest.version === version);
  if (!entry) throw new InflowError('NOT_FOUND', `model "${model}" version ${version} is not published in topic "${topic}"`);
  const now = modelInTopic(content, model, topic);
  const named = Object.entries(now.labels)
    .filter(([, v]) => v === version)
    .map(([l]) => `label "${l}"`);
  if (routingVersions(now.routing).includes(version)) named.push('the routing');
  if (named.length > 0) {
    throw new InflowError(
      'FAILED_PRECONDITION',
      `model "${model}" version ${version} is still named by ${named.join(' and ')}; move it first`,
    );
  }
  const records: ProducerRecord[] = entry.manifest.files.flatMap((f, index) =>
    Array.from({ length: f.chunks }, (_, n) => ({
      topic,
      partition: entry.partition,
      key: Buffer.from(chunkKey(model, version, index, n)),
      value: null,
    })),
  );
  const key = Buffer.from(manifestKey(model, version));
  const headers = options.signingKey ? signatureHeaders(tombstoneBytes(key), options.signingKey) : [];
  records.push({ topic, partition: entry.partition, key, value: null, ...(headers.length > 0 ? { headers } : {}) });
  const producer = client.producer({ acks: 'all', idempotent: true });
  try {
    await producer.send(records);
  } finally {
    await producer.close();
  }
  return { tombstones: records.length };
}
