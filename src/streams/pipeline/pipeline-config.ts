/**
 * Schema of a pipeline file: the YAML form of a topology built with the StreamsBuilder, for the
 * `inflow stream` command. YAML cannot carry functions, so the operators are declarative and
 * few: `source`, `filter` (field predicates), `select` / `rename` (fields), `predict` (a field
 * mapping), `split` (branches by field predicates, each its own pipeline) and `to`. Which
 * Inferencer a predict uses is a name from `models:` (embedded or remote), so switching
 * deployment modes is a configuration change only.
 *
 * Unknown keys are errors everywhere; every message names the file and the field path, and the
 * cross-field rules (pipeline-checks.ts) report the same way.
 */
import { z } from 'zod';
import { modelsSyncConfigSchema } from '../../delivery/sync-policy.ts';
import { remoteClientConfigSchema } from '../../client/remote-config.ts';
import { kafkaConfigSchema } from '../../config/kafka-config.ts';
import { loadConfigFile, parseConfigText, validateConfig } from '../../config/load-config.ts';
import {
  type RegistryFormatConfig,
  registryFormatSchema,
  schemaRegistryConfigSchema,
  topicFormatSchema,
} from '../../config/schema-registry-config.ts';
import { InflowError } from '../../errors.ts';
import { DType } from '../../tensor/dtype.ts';
import { aggregateSchema } from './pipeline-aggregate.ts';
import { checkPipeline } from './pipeline-checks.ts';

/** Serde names of `source` and `to` (src/kafka/serdes.ts); a record's value kind is its serde's name. */
export const SerdeName = { BYTES: 'bytes', STRING: 'string', JSON: 'json', TENSOR: 'tensor' } as const;
export type SerdeName = (typeof SerdeName)[keyof typeof SerdeName];

/** A key or value serde: a name, or a Schema Registry format (`{ format: avro, … }`, needs `schemaRegistry:`). */
const serdeSpec = topicFormatSchema;

/** A key or value serde of `source` / `to`. */
export type SerdeSpec = SerdeName | RegistryFormatConfig;

/** Kafka's legal topic names (and a safe group id). */
const kafkaName = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected 1-249 characters of A-Z a-z 0-9 . _ - (a legal Kafka topic / group name)');

/** A node name (describe(), metrics, dead-letter headers). */
const nodeName = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,100}$/, 'expected 1-100 characters of A-Z a-z 0-9 . _ -')
  .optional();

/** Names in `models:`. */
export const MODEL_NAME = /^[A-Za-z][A-Za-z0-9._-]{0,99}$/;

const positiveInt = z.number().int().positive();
const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()], { error: 'expected a string, number, boolean or null' });

/** Conditions on one field of the record value; every condition given must hold. */
const predicateShape = {
  /** Dotted path into the value (`reading.celsius`); `.` is the value itself. */
  field: z.string().min(1),
  /** true: present and not null; false: missing or null. */
  exists: z.boolean().optional(),
  /** Strict equality with a string, number, boolean or null. */
  equals: scalar.optional(),
  /** Equal to one of these. */
  in: z.array(scalar).min(1).optional(),
  /** Numeric comparisons (a non-number never matches). */
  gt: z.number().optional(),
  gte: z.number().optional(),
  lt: z.number().optional(),
  lte: z.number().optional(),
};
const CONDITIONS = ['exists', 'equals', 'in', 'gt', 'gte', 'lt', 'lte'] as const;

function needsCondition(value: Record<string, unknown>, context: z.core.$RefinementCtx): void {
  if (CONDITIONS.every((c) => value[c] === undefined)) {
    context.addIssue({ code: 'custom', path: [], message: `give at least one condition on the field: ${CONDITIONS.join(', ')}` });
  }
}

const predicateSchema = z.strictObject(predicateShape).superRefine(needsCondition);

const sourceSchema = z.strictObject({
  name: nodeName,
  /** One topic or several (read as one stream). */
  topic: z.union([kafkaName, z.array(kafkaName).min(1)], { error: 'expected a topic name or a list of topic names' }),
  /** Default bytes (keys pass through unchanged). */
  key: serdeSpec.optional(),
  /** Default json (the declarative operators work on JSON objects; so do Avro, Protobuf and JSON Schema records). */
  value: serdeSpec.optional(),
});

const filterSchema = z.strictObject({ name: nodeName, ...predicateShape }).superRefine(needsCondition);

const selectSchema = z.strictObject({
  name: nodeName,
  /** Fields to keep (dotted paths keep the nesting); the others are dropped, missing ones are left out. */
  fields: z.array(z.string().min(1)).min(1),
});

const renameSchema = z.strictObject({
  name: nodeName,
  /** `from: to`, both dotted paths; the other fields are kept. */
  fields: z.record(z.string().min(1), z.string().min(1)),
});

/** One part of an input assembled from several fields. */
const featurePartSchema = z.union(
  [
    z.string().min(1),
    z.strictObject({
      /** Dotted path into the value. */
      field: z.string().min(1),
      /** The field is a string of numbers separated by this (`","`; a space splits on runs of whitespace). */
      delimiter: z.string().min(1).optional(),
      /** Used when the field is missing or null (a left join without a row). */
      default: z.union([z.number(), z.array(z.number())]).optional(),
      /** The field is a category: one element per listed category (1 where equal, else 0). */
      oneHot: z
        .array(z.union([z.string(), z.number(), z.boolean()]))
        .min(1)
        .optional(),
    }),
  ],
  { error: 'expected a field path or { field, delimiter, default, oneHot }' },
);

const inputFieldSchema = z
  .strictObject({
    /** Dotted path into the value; `.` is the value itself (a string, or a whole tensor with the tensor serde). */
    field: z.string().min(1).optional(),
    /** Several fields concatenated in this order into one row (record, aggregate and joined table fields). */
    fields: z.array(featurePartSchema).min(1).optional(),
    /** With `field`: the field is a string of numbers separated by this (`"0.12,0.98,…"` with `","`). */
    delimiter: z.string().min(1).optional(),
    /** Default FP32 (with the tensor serde: the record's own dtype, checked when given). */
    dtype: z.enum(Object.values(DType) as [DType, ...DType[]]).optional(),
    /** Row shape without the batch dimension (`[1, 784]` feeds a model declaring `[-1, 1, 784]`); one -1 is inferred from the element count. */
    shape: z.array(z.number().int().min(-1)).optional(),
    allowNonFinite: z.boolean().optional(),
  })
  .superRefine((value, context) => {
    if ((value.field === undefined) === (value.fields === undefined)) {
      context.addIssue({ code: 'custom', path: [], message: 'give field (one field) or fields (several, in order), exactly one' });
    }
    if (value.fields !== undefined && value.delimiter !== undefined) {
      context.addIssue({ code: 'custom', path: ['delimiter'], message: 'with fields, give each field its own delimiter' });
    }
  });

const outputFieldSchema = z.strictObject({
  tensor: z.string().min(1),
  as: z.enum(['auto', 'array', 'scalar', 'argmax']).optional(),
});

const predictSchema = z.strictObject({
  name: nodeName,
  model: z.string().min(1),
  /** A name from `models:`. */
  using: z.string().min(1),
  version: positiveInt.optional(),
  label: z.string().min(1).optional(),
  /** Model input name → where it comes from. */
  inputs: z.record(z.string().min(1), inputFieldSchema),
  /** Output value field → model output (merged into the input value): for JSON outputs. */
  outputs: z.record(z.string().min(1), outputFieldSchema).optional(),
  /** The record value becomes this output tensor (batch dimension dropped): for the tensor serde. */
  outputTensor: z.string().min(1).optional(),
  /** With `outputs`: keep the input value's fields (default true for JSON object values). */
  keepInput: z.boolean().optional(),
  /** Records per inference call; default 64. */
  maxBatch: positiveInt.optional(),
  /** How long a partial batch waits, ms; default 0. */
  maxDelayMs: z.number().min(0).optional(),
  maxConcurrentBatches: positiveInt.optional(),
  /** With no inference call in flight, a record does not wait out maxDelayMs (batch when busy); default true. */
  idleDispatch: z.boolean().optional(),
  /** Deadline of one inference call, ms; default 30 000. */
  timeoutMs: positiveInt.optional(),
  /** One JSON record per prediction to this topic (schema: src/streams/README.md). */
  predictionLog: z
    .strictObject({
      topic: z.string().min(1),
      includeInputs: z.boolean().optional(),
      /** How entries are written: json (default) or a registry format with the log's schema (needs `schemaRegistry:`). */
      value: z.union([z.literal(SerdeName.JSON), registryFormatSchema]).optional(),
    })
    .optional(),
  retry: z
    .strictObject({
      maxAttempts: positiveInt.optional(),
      initialBackoffMs: z.number().min(0).optional(),
      maxBackoffMs: z.number().min(0).optional(),
    })
    .optional(),
});

const toSchema = z.strictObject({
  name: nodeName,
  topic: kafkaName,
  /** Default: the source's key serde (a registry format must be given: it names this topic's schema). */
  key: serdeSpec.optional(),
  /** Default: the serde of the values that reach it (json after a predict with `outputs`). */
  value: serdeSpec.optional(),
});

/**
 * A table for enrichment (`join`): by default global — a compacted topic every instance reads in
 * full, looked up by any key — or co-partitioned (`copartitioned: true`): partitioned like the
 * source (same key, same partition count, checked at start), each task holding its partitions'
 * rows in a store with a changelog, looked up by the record key; for tables too large to copy
 * to every instance.
 */
const tableSchema = z.strictObject({
  topic: kafkaName,
  /** Default false (a global table). */
  copartitioned: z.boolean().optional(),
  /** Default string (the row key a join looks up). */
  key: serdeSpec.optional(),
  /** Default json. */
  value: serdeSpec.optional(),
  /**
   * The row schema: field → type every row must have (`integer` is a whole number). A row that
   * does not match goes to the dead-letter topic with the reason; the previous row stays.
   */
  fields: z.record(z.string().min(1), z.enum(['string', 'number', 'integer', 'boolean'])).optional(),
});

/**
 * Enriches each record with the row of a global table (`table:`), or joins it with the records of
 * another, co-partitioned stream with the same key at most `windowMs` apart (`stream:`, a windowed
 * inner, left or outer join: predictions with the labels that arrive later).
 */
const joinSchema = z
  .strictObject({
    name: nodeName,
    /** A name from `tables:`. */
    table: z.string().min(1).optional(),
    /** The other stream: its topic (same key and partition count as the source) and serdes. */
    stream: z.strictObject({ topic: kafkaName, key: serdeSpec.optional(), value: serdeSpec.optional() }).optional(),
    /** Stream join: the largest timestamp difference of a joined pair, ms. */
    windowMs: z.number().int().min(0).optional(),
    /** Stream join: how long after its window a late record is still joined, ms (default 0). */
    graceMs: z.number().int().min(0).optional(),
    /** Table join: dotted path of the value field holding the row key; default the record key. */
    key: z.string().min(1).optional(),
    /** Dotted path where the row (or the other record's value) goes in the value; default the table name, or `joined`. */
    as: z.string().min(1).optional(),
    /**
     * `inner` (default) drops a record without a row / partner; `left` passes it on without the
     * field (a stream join: once its window and grace have closed); `outer` (stream joins) also
     * passes on the other stream's records without a partner, as `{ <as>: value }`.
     */
    type: z.enum(['inner', 'left', 'outer']).default('inner'),
    /** Only these fields of the row / other value (default all). */
    fields: z.array(z.string().min(1)).min(1).optional(),
  })
  .superRefine((j, context) => {
    if ((j.table === undefined) === (j.stream === undefined)) {
      context.addIssue({ code: 'custom', path: [], message: 'join a table (table: name) or a stream (stream: { topic }), exactly one' });
    }
    if (j.stream !== undefined) {
      if (j.windowMs === undefined) context.addIssue({ code: 'custom', path: ['windowMs'], message: 'a stream join needs windowMs (ms)' });
      if (j.key !== undefined)
        context.addIssue({ code: 'custom', path: ['key'], message: 'a stream join matches record keys; key applies to table joins' });
    } else if (j.type === 'outer') {
      context.addIssue({ code: 'custom', path: ['type'], message: 'a table join is inner or left; outer applies to stream joins' });
    }
    if (j.stream === undefined && (j.windowMs !== undefined || j.graceMs !== undefined)) {
      context.addIssue({ code: 'custom', path: ['windowMs'], message: 'windowMs and graceMs apply to stream joins' });
    }
  });

/** The operators, one key each; a step holds exactly one. */
export const OPERATORS = ['source', 'filter', 'select', 'rename', 'join', 'aggregate', 'predict', 'split', 'to'] as const;
export type Operator = (typeof OPERATORS)[number];

function exactlyOneOperator(step: Record<string, unknown>, context: z.core.$RefinementCtx): void {
  const ops = OPERATORS.filter((op) => step[op] !== undefined);
  if (ops.length !== 1) {
    context.addIssue({
      code: 'custom',
      path: [],
      message: `a step holds exactly one operator (${OPERATORS.join(', ')}); got ${ops.length === 0 ? 'none' : ops.join(' and ')}`,
    });
  }
}

const stepSchema = z
  .strictObject({
    source: sourceSchema.optional(),
    filter: filterSchema.optional(),
    select: selectSchema.optional(),
    rename: renameSchema.optional(),
    join: joinSchema.optional(),
    /** Group, window and aggregate (pipeline-aggregate.ts). */
    aggregate: aggregateSchema.optional(),
    predict: predictSchema.optional(),
    get split() {
      return splitSchema.optional();
    },
    to: toSchema.optional(),
  })
  .superRefine(exactlyOneOperator);

const branchSchema = z.strictObject({
  /** Starts with a letter (an integer-like name would reorder the branches of a JS object). */
  name: z.string().regex(/^[A-Za-z][A-Za-z0-9._-]{0,99}$/, 'expected a letter, then up to 99 characters of A-Z a-z 0-9 . _ -'),
  /** Omitted: the default branch (records no other branch takes); it must be last. */
  when: predicateSchema.optional(),
  /** The branch's own steps (no source), ending with `to` or another `split`. */
  get pipeline() {
    return z.array(stepSchema).min(1);
  },
});

const splitSchema = z.strictObject({
  name: nodeName,
  /** In order: a record takes the first branch whose `when` holds; without a default branch, the rest are dropped. */
  branches: z.array(branchSchema).min(1),
});

const embeddedSchema = z.strictObject({
  /** The model repository folder; relative paths resolve against the pipeline file's folder. */
  modelRepository: z.string().min(1),
  /** Load new versions dropped into the repository without a restart (default true). */
  watch: z.boolean().default(true),
  /**
   * Which models of the repository to load: `used` (default) the models this pipeline's predict
   * steps name through this source (or through a remote source falling back to it); `all` every
   * model folder (e.g. to switch models by editing the file without a reload of the repository).
   */
  loadModels: z.enum(['used', 'all']).default('used'),
  /**
   * Also install versions and label/split changes published to this Kafka topic (on the
   * pipeline's cluster, with `inflow models publish|label|split`) into the repository.
   */
  modelsTopic: z.string().min(1).optional(),
  /**
   * What the sync of `modelsTopic` accepts: `trustedKeys` (Ed25519 public key files, relative to
   * this file; with any, only signed versions are installed), `allowExecutablePlatforms` (module
   * models from the topic; default false), `maxStagingBytes` (default 8 GiB).
   */
  modelsSync: modelsSyncConfigSchema.optional(),
});

const remoteSchema = remoteClientConfigSchema.safeExtend({
  /** A name from `models:` of an embedded model source, used when the circuit is open or retries are exhausted. */
  fallback: z.string().min(1).optional(),
});

const modelSourceSchema = z
  .strictObject({ embedded: embeddedSchema.optional(), remote: remoteSchema.optional() })
  .superRefine((value, context) => {
    if ((value.embedded === undefined) === (value.remote === undefined)) {
      context.addIssue({
        code: 'custom',
        path: [],
        message: 'a model source is either `embedded: {...}` or `remote: {...}`; give exactly one',
      });
    }
  });

/** The whole pipeline file. */
export const pipelineConfigSchema = z
  .strictObject({
    /** Consumer group id, transactional id prefix, metrics label. */
    applicationId: kafkaName,
    /** Stable id of this instance (default: the host name); see StreamsRunnerOptions.instanceId. */
    instanceId: z.string().min(1).optional(),
    /**
     * Stream threads of this instance (Kafka Streams' num.stream.threads): each a worker thread
     * with its own consumer in the group, producer and models; `auto` = the CPUs available.
     * Default 1 (`inflow stream --threads` overrides it).
     */
    threads: z.union([z.number().int().min(1).max(256), z.literal('auto')]).optional(),
    /**
     * Static group membership (KIP-345): the instance joins with `instanceId` as its
     * group.instance.id and gets its partitions back without a rebalance after a broker outage
     * or a restart within the session timeout. Needs an instanceId unique in the group and
     * stable across restarts; see StreamsRunnerOptions.staticMembership.
     */
    staticMembership: z.boolean().default(false),
    kafka: kafkaConfigSchema.default(kafkaConfigSchema.parse({})),
    /** The Schema Registry that `{ format: avro | protobuf | json-schema }` keys and values use. */
    schemaRegistry: schemaRegistryConfigSchema.optional(),
    guarantee: z.enum(['at-least-once', 'exactly-once']).default('at-least-once'),
    /** Where a consumer group without committed offsets starts. */
    autoOffsetReset: z.enum(['earliest', 'latest']).default('earliest'),
    errors: z
      .strictObject({
        policy: z.enum(['dlq', 'skip', 'fail']).default('dlq'),
        /** Default `<applicationId>-dlq`. */
        deadLetterTopic: kafkaName.optional(),
      })
      .default({ policy: 'dlq' }),
    /**
     * Persistent state stores (aggregations, process steps): lmdb under `dir` (relative to the
     * pipeline file), `<dir>/<applicationId>/<task>/<store>`, each store at most `maxStoreBytes`.
     * Without it stores are in memory and restored from their changelogs on every assignment.
     */
    state: z.strictObject({ dir: z.string().min(1), maxStoreBytes: positiveInt.optional() }).optional(),
    /** Times are milliseconds; defaults are the runner's. */
    limits: z
      .strictObject({
        maxInFlight: positiveInt.optional(),
        maxPollRecords: positiveInt.optional(),
        /** Largest output record (key + value + headers), bytes; a bigger one is handled by the error policy. */
        maxRecordBytes: positiveInt.optional(),
        commitIntervalMs: positiveInt.optional(),
        drainTimeoutMs: positiveInt.optional(),
        sessionTimeoutMs: positiveInt.optional(),
        /** Exactly-once: how long a dead instance's open transaction blocks its partitions' new owners. */
        transactionTimeoutMs: positiveInt.optional(),
        /** 0 = never read consumer lag. */
        lagIntervalMs: z.number().int().min(0).optional(),
        /**
         * How long a task reading several topics (a join, a co-partitioned table) waits for one
         * that has no record buffered before it processes the others' in timestamp order
         * (Kafka Streams' max.task.idle.ms). Default 0: never wait, no added latency.
         */
        maxTaskIdleMs: z.number().int().min(0).optional(),
      })
      .default({}),
    /** Global tables a join step names: every instance reads all partitions of each topic. */
    tables: z
      .record(z.string().regex(/^[A-Za-z][A-Za-z0-9._-]{0,99}$/, 'a table name starts with a letter: A-Z a-z 0-9 . _ -'), tableSchema)
      .default({}),
    /** Named inferencers a predict step picks with `using`. */
    models: z
      .record(z.string().regex(MODEL_NAME, 'a model source name starts with a letter: A-Z a-z 0-9 . _ -'), modelSourceSchema)
      .default({}),
    pipeline: z.array(stepSchema).min(1, 'a pipeline needs at least a source and a to step'),
  })
  .superRefine(checkPipeline);

/** A validated pipeline file. */
export type PipelineConfig = z.output<typeof pipelineConfigSchema>;
/** A pipeline file as written. */
export type PipelineConfigInput = z.input<typeof pipelineConfigSchema>;
export type PipelineStep = z.output<typeof stepSchema>;
export type PredicateConfig = z.output<typeof predicateSchema>;
export type PredictStepConfig = z.output<typeof predictSchema>;
export type SplitStepConfig = z.output<typeof splitSchema>;
export type TableConfig = z.output<typeof tableSchema>;
export type JoinStepConfig = z.output<typeof joinSchema>;
export type ModelSourceConfig = z.output<typeof modelSourceSchema>;

/**
 * validateConfig's message on one line (a CLI error is one line), every problem still named with
 * its field; other errors are returned as they are.
 */
export function oneLineConfigError(error: unknown): unknown {
  if (error instanceof InflowError && error.code === 'INVALID_CONFIG' && error.message.includes('\n')) {
    const [head = '', ...lines] = error.message.split('\n');
    return new InflowError('INVALID_CONFIG', `${head} ${lines.map((l) => l.trim()).join('; ')}`, {
      cause: error,
      ...(error.details ? { details: error.details } : {}),
    });
  }
  return error;
}

/**
 * Validates a parsed pipeline file.
 * @param source the file the value came from, named in every message.
 * @throws InflowError INVALID_CONFIG naming the file and each field path, on one line.
 */
export function validatePipelineConfig(value: unknown, source: string): PipelineConfig {
  try {
    return validateConfig(pipelineConfigSchema, value, source);
  } catch (error) {
    throw oneLineConfigError(error);
  }
}

/** Parses (YAML or JSON) and validates pipeline text. */
export function parsePipelineConfig(text: string, source: string): PipelineConfig {
  return validatePipelineConfig(parseConfigText(text, source), source);
}

/** Reads, parses and validates a pipeline file. */
export async function loadPipelineFile(path: string): Promise<PipelineConfig> {
  try {
    return await loadConfigFile(pipelineConfigSchema, path);
  } catch (error) {
    throw oneLineConfigError(error);
  }
}
