/**
 * The models topic itself: creating it (compacted), choosing a model's partition, and reading
 * its current content (latest manifest per version, latest control per model) for `inflow models
 * list` and for label moves that build on the current state.
 */
import { randomUUID } from 'node:crypto';
import { InflowError } from '../errors.ts';
import { partitionForKey } from '../kafka/partitioner.ts';
import type { ConsumedRecord, KafkaAdmin, KafkaClient, KafkaHeader } from '../kafka/types.ts';
import { type Control, controlSchema, type Manifest, manifestSchema, parseJsonValue, parseKey } from './delivery-format.ts';

/**
 * Creates the models topic with `cleanup.policy=compact` unless it exists. One partition by
 * default: the reader then sees every publish in one total order (chunks before manifest, one
 * label move after another), and it is tiny anyway. With more partitions the publisher still pins
 * all records of a model to one partition ({@link modelPartition}), so per-model order holds.
 */
export async function ensureModelsTopic(admin: KafkaAdmin, topic: string, partitions = 1): Promise<void> {
  if (!Number.isInteger(partitions) || partitions < 1) {
    throw new InflowError('INVALID_ARGUMENT', `models topic partitions: expected a positive integer, got ${partitions}`);
  }
  await admin.createTopics([{ topic, partitions, configs: { 'cleanup.policy': 'compact' } }], { ifNotExists: true });
}

/** The partition every record of `model` goes to, so a model's chunks, manifests and controls stay in order. */
export function modelPartition(model: string, partitions: number): number {
  return partitionForKey(Buffer.from(model, 'utf8'), partitions);
}

/** Empty polls (500 ms each) in a row taken as "nothing more to read" when the last offset never shows up. */
export const IDLE_POLLS_AT_END = 4;

/** A manifest and where it sits in the topic. */
export interface ManifestEntry {
  manifest: Manifest;
  partition: number;
  offset: bigint;
  /** Record timestamp, ms since the epoch. */
  timestamp: number;
  /** The record's value and headers as read: what a signature is checked against (./manifest-signing.ts). */
  value: Buffer;
  headers: readonly KafkaHeader[];
}

/** What the topic holds now. */
export interface ModelsTopicContent {
  /** Latest manifest per model and version (deleted versions are absent), by model then version. */
  manifests: ManifestEntry[];
  /** Latest control per model (cleared ones are absent). */
  controls: Map<string, Control>;
  /** Records that did not parse (key and reason), e.g. from another writer. */
  invalid: Array<{ key: string; reason: string }>;
}

/** Options of {@link readModelsTopic}. Times are ms. */
export interface ReadModelsTopicOptions {
  client: KafkaClient;
  topic: string;
  /** Give up after this long (DEADLINE_EXCEEDED). Default 60 000. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Reads the models topic from its start to the end it had when called, with a throw-away
 * consumer group that commits nothing. Chunk values are fetched but dropped (the consumer API
 * cannot filter by key), so this costs one pass over the topic's bytes.
 */
export async function readModelsTopic(options: ReadModelsTopicOptions): Promise<ModelsTopicContent> {
  const { client, topic } = options;
  const admin = client.admin();
  let ends: Map<number, bigint>;
  try {
    ends = new Map((await admin.listOffsets(topic, 'latest')).map((o) => [o.partition, o.offset]));
  } catch (error) {
    // No topic yet means nothing published yet.
    if (error instanceof InflowError && error.code === 'KAFKA_TOPIC_NOT_FOUND') return { manifests: [], controls: new Map(), invalid: [] };
    throw error;
  } finally {
    await admin.close();
  }
  const manifests = new Map<string, ManifestEntry>();
  const controls = new Map<string, Control>();
  const invalid: Array<{ key: string; reason: string }> = [];
  const apply = (r: ConsumedRecord): void => {
    const key = parseKey(r.key);
    if (!key || key.kind === 'chunk') return;
    const id = key.kind === 'manifest' ? `${key.model}/${key.version}` : key.model;
    try {
      if (key.kind === 'manifest') {
        if (r.value === null) manifests.delete(id);
        else {
          const manifest = parseJsonValue(manifestSchema, r.value, `manifest ${r.key?.toString() ?? ''}`);
          manifests.set(id, {
            manifest,
            partition: r.partition,
            offset: r.offset,
            timestamp: r.timestamp,
            value: r.value,
            headers: r.headers,
          });
        }
      } else if (r.value === null) controls.delete(id);
      else controls.set(id, parseJsonValue(controlSchema, r.value, `control ${r.key?.toString() ?? ''}`));
    } catch (error) {
      invalid.push({ key: r.key?.toString() ?? '', reason: InflowError.from(error).message });
    }
  };
  const remaining = new Map([...ends].filter(([, end]) => end > 0n));
  if (remaining.size > 0) {
    // Records buffered ahead are bounded: chunk records are up to 512 KiB each.
    const consumer = client.consumer({
      groupId: `inflow-models-reader-${randomUUID()}`,
      autoOffsetReset: 'earliest',
      maxBufferedRecords: 16,
    });
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    try {
      await consumer.subscribe([topic]);
      // The last offset of a partition is normally present (Kafka never compacts the active
      // segment), but a tombstone there can be cleaned away long after; a few empty polls in a
      // row then mean the end was reached.
      let idle = 0;
      while (remaining.size > 0 && idle < IDLE_POLLS_AT_END) {
        if (options.signal?.aborted) throw new InflowError('CANCELLED', `reading models topic "${topic}" was cancelled`);
        if (Date.now() > deadline) {
          throw new InflowError(
            'DEADLINE_EXCEEDED',
            `reading models topic "${topic}" to its end took longer than ${options.timeoutMs ?? 60_000} ms`,
          );
        }
        const records = await consumer.poll({ maxRecords: 64, timeoutMs: 500, ...(options.signal ? { signal: options.signal } : {}) });
        idle = records.length === 0 ? idle + 1 : 0;
        for (const r of records) {
          const end = remaining.get(r.partition);
          if (end === undefined || r.offset >= end) continue;
          apply(r);
          if (r.offset + 1n >= end) remaining.delete(r.partition);
        }
      }
    } finally {
      await consumer.close();
    }
  }
  const sorted = [...manifests.values()].sort((x, y) => {
    const [a, b] = [x.manifest, y.manifest];
    return a.model === b.model ? a.version - b.version : a.model < b.model ? -1 : 1;
  });
  return { manifests: sorted, controls, invalid };
}
