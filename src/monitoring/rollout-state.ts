/**
 * A guarded rollout's state, kept on a compacted Kafka topic (key = the model name) so a rollout
 * command that is killed and started again resumes where the last one was: the step, the
 * baseline, the guards it was started with.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { InflowError } from '../errors.ts';
import type { KafkaClient } from '../kafka/types.ts';
import { guardOptionsSchema } from './rollout-guards.ts';

/** The topic rollout states go to unless told otherwise. */
export const DEFAULT_ROLLOUTS_TOPIC = 'inflow-rollouts';

export const RolloutStatus = {
  RUNNING: 'running',
  HOLDING: 'holding',
  PROMOTED: 'promoted',
  ROLLED_BACK: 'rolled-back',
} as const;
export type RolloutStatus = (typeof RolloutStatus)[keyof typeof RolloutStatus];

const guardResult = z.strictObject({ guard: z.string(), status: z.string(), detail: z.string() });

export const rolloutStateSchema = z.strictObject({
  format: z.literal(1),
  model: z.string(),
  baseline: z.number().int().min(0),
  target: z.number().int().min(0),
  /** Percent of traffic on the target per step, ascending, ending at 100. */
  steps: z.array(z.number().gt(0).max(100)).min(1),
  /** The step in force (index into steps). */
  stepIndex: z.number().int().min(0),
  status: z.enum([RolloutStatus.RUNNING, RolloutStatus.HOLDING, RolloutStatus.PROMOTED, RolloutStatus.ROLLED_BACK]),
  /** How long each step must pass its guards, ms. */
  intervalMs: z.number().int().positive(),
  /** Share of the baseline's requests mirrored to the target (for the shadow-agreement guard); 0: none. */
  shadowFraction: z.number().min(0).max(1),
  guards: guardOptionsSchema,
  metrics: z.array(z.string()),
  /** ms since the epoch. */
  startedAt: z.number(),
  stepStartedAt: z.number(),
  updatedAt: z.number(),
  /** Why it was rolled back (or is holding). */
  reason: z.string().optional(),
  /** The guard verdicts behind the last decision. */
  results: z.array(guardResult).optional(),
});
export type RolloutState = z.output<typeof rolloutStateSchema>;

/** Writes `state` as the model's latest record. */
export async function writeRolloutState(client: KafkaClient, topic: string, state: RolloutState): Promise<void> {
  const producer = client.producer({ acks: 'all', idempotent: true });
  try {
    await producer.send([{ topic, key: Buffer.from(state.model), value: Buffer.from(JSON.stringify(state)) }]);
  } finally {
    await producer.close();
  }
}

/** Creates the rollouts topic (compacted, one partition) unless it exists. */
export async function ensureRolloutsTopic(client: KafkaClient, topic: string): Promise<void> {
  const admin = client.admin();
  try {
    await admin.createTopics([{ topic, partitions: 1, configs: { 'cleanup.policy': 'compact' } }], { ifNotExists: true });
  } finally {
    await admin.close();
  }
}

/**
 * Reads `topic` from its start to the end it had when called (a throw-away group that commits
 * nothing) and hands every record to `apply`. A topic that does not exist reads as empty.
 */
export async function readTopicToEnd(
  client: KafkaClient,
  topic: string,
  apply: (key: string | undefined, value: Buffer | null, timestamp: number) => void,
  timeoutMs = 30_000,
): Promise<void> {
  const admin = client.admin();
  let ends: Map<number, bigint>;
  try {
    ends = new Map((await admin.listOffsets(topic, 'latest')).map((o) => [o.partition, o.offset]));
  } catch (error) {
    if (error instanceof InflowError && error.code === 'KAFKA_TOPIC_NOT_FOUND') return;
    throw error;
  } finally {
    await admin.close();
  }
  const remaining = new Map([...ends].filter(([, end]) => end > 0n));
  if (remaining.size === 0) return;
  const consumer = client.consumer({ groupId: `inflow-reader-${randomUUID()}`, autoOffsetReset: 'earliest' });
  const deadline = Date.now() + timeoutMs;
  try {
    await consumer.subscribe([topic]);
    let idle = 0;
    while (remaining.size > 0 && idle < 4) {
      if (Date.now() > deadline)
        throw new InflowError('DEADLINE_EXCEEDED', `reading topic "${topic}" to its end took longer than ${timeoutMs} ms`);
      const records = await consumer.poll({ maxRecords: 256, timeoutMs: 500 });
      idle = records.length === 0 ? idle + 1 : 0;
      for (const r of records) {
        const end = remaining.get(r.partition);
        if (end === undefined || r.offset >= end) continue;
        apply(r.key?.toString('utf8'), r.value, r.timestamp);
        if (r.offset + 1n >= end) remaining.delete(r.partition);
      }
    }
  } finally {
    await consumer.close();
  }
}

/** The model's latest rollout state, or undefined (none, or a record that does not parse: reported in `invalid`). */
export async function readRolloutState(client: KafkaClient, topic: string, model: string): Promise<RolloutState | undefined> {
  let latest: Buffer | null = null;
  await readTopicToEnd(client, topic, (key, value) => {
    if (key === model) latest = value;
  });
  if (latest === null) return undefined;
  const parsed = rolloutStateSchema.safeParse(JSON.parse((latest as Buffer).toString('utf8')));
  if (!parsed.success) {
    throw new InflowError(
      'FAILED_PRECONDITION',
      `the rollout state of model "${model}" in topic "${topic}" does not parse (${parsed.error.issues[0]?.message ?? 'invalid'}); ` +
        'it was written by another tool or version',
    );
  }
  return parsed.data;
}
