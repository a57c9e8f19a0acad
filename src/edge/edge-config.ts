/**
 * Schema of an edge agent file (`inflow edge <config.yaml>`): where the MQTT broker is and what
 * to subscribe to, how a device message becomes model inputs (the streams field mapping), the
 * embedded model (a repository folder, optionally fed from a Kafka models topic), what goes back
 * over MQTT (predictions, alerts when a rule on the prediction fires, errors), and what is
 * forwarded to Kafka through the durable outbox.
 *
 * Unknown keys are errors everywhere; every message names the file and the field path. Relative
 * paths (model repository, outbox folder) resolve against the file's folder.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { kafkaConfigSchema } from '../config/kafka-config.ts';
import { registryFormatSchema, schemaRegistryConfigSchema } from '../config/schema-registry-config.ts';
import { loadConfigFile, parseConfigText, validateConfig } from '../config/load-config.ts';
import { modelsSyncConfigSchema } from '../delivery/sync-policy.ts';
import { oneLineConfigError } from '../streams/pipeline/pipeline-config.ts';
import { DType } from '../tensor/dtype.ts';

const positiveInt = z.number().int().positive();

/** Kafka's legal topic names. */
const kafkaTopic = z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected 1-249 characters of A-Z a-z 0-9 . _ - (a legal Kafka topic name)');

/** An MQTT topic filter to subscribe to (wildcards `+` and `#` allowed). */
const mqttFilter = z
  .string()
  .min(1)
  .refine((t) => !/#./.test(t) && t.split('/').every((level) => level === '+' || level === '#' || !/[+#]/.test(level)), {
    message: 'expected an MQTT topic filter: "+" and "#" only as whole levels, "#" last (e.g. "sensors/+/digits")',
  });

/** An MQTT topic to publish to; `{device}` is replaced with the device id. */
const mqttTopicTemplate = z
  .string()
  .min(1)
  .refine((t) => !/[+#]/.test(t), { message: 'expected an MQTT topic without wildcards; "{device}" stands for the device id' });

const qos = z.union([z.literal(0), z.literal(1), z.literal(2)], { error: 'expected QoS 0, 1 or 2' });

/** TLS of an `mqtts://` / `ssl://` / `wss://` broker: PEM files (a mounted Secret), read at start. */
const mqttTlsSchema = z.strictObject({
  /** CA of the broker's certificate; default the system CAs. */
  caFile: z.string().min(1).optional(),
  /** Client certificate and key, for brokers that require them (mutual TLS). */
  certFile: z.string().min(1).optional(),
  keyFile: z.string().min(1).optional(),
  rejectUnauthorized: z.boolean().default(true),
  /** Host name the certificate must name, when it differs from the URL's. */
  servername: z.string().min(1).optional(),
});

const mqttSchema = z
  .strictObject({
    /** `mqtt://host:port`, `mqtts://…`, `ws://…`. */
    url: z.string().regex(/^(mqtts?|wss?|tcp|ssl):\/\/[^\s]+$/, 'expected a broker URL such as "mqtt://127.0.0.1:1883"'),
    /** Fixed, so the broker keeps this agent's session (and queues QoS 1 messages) while it is away. Default `inflow-edge-<agentId>`. */
    clientId: z.string().min(1).max(128).optional(),
    username: z.string().min(1).optional(),
    /** The password: inline, from a file (`passwordFile`, trailing newline dropped) or an environment variable (`passwordEnv`); one of them. */
    password: z.string().optional(),
    passwordFile: z.string().min(1).optional(),
    passwordEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name')
      .optional(),
    tls: mqttTlsSchema.optional(),
    /** 4 = MQTT 3.1.1, 5 = MQTT 5. */
    protocolVersion: z.union([z.literal(4), z.literal(5)]).default(4),
    /** false (default): a persistent session. true throws away what the broker queued while the agent was away. */
    cleanSession: z.boolean().default(false),
    /** MQTT 5 only: how long the broker keeps the session after a disconnect, seconds. Default 7 days. */
    sessionExpirySec: positiveInt.default(7 * 24 * 3600),
    keepaliveSec: positiveInt.default(30),
    /** Between reconnect attempts, ms. */
    reconnectMs: positiveInt.default(1000),
    /** Bound on one connect attempt, ms. */
    connectTimeoutMs: positiveInt.default(10_000),
    subscriptions: z
      .array(z.strictObject({ topic: mqttFilter, qos: qos.default(1) }))
      .min(1, 'subscribe to at least one topic, e.g. [{ topic: "sensors/+/digits" }]'),
  })
  .superRefine((v, ctx) => {
    const given = (['password', 'passwordFile', 'passwordEnv'] as const).filter((k) => v[k] !== undefined);
    if (given.length > 1)
      ctx.addIssue({
        code: 'custom',
        path: [given[1] as string],
        message: `give one of password, passwordFile, passwordEnv; got ${given.join(', ')}`,
      });
    if (given.length > 0 && v.username === undefined)
      ctx.addIssue({ code: 'custom', path: ['username'], message: 'a password needs a username' });
    if (v.tls && !/^(mqtts|ssl|wss):/.test(v.url))
      ctx.addIssue({
        code: 'custom',
        path: ['tls'],
        message: `tls applies to mqtts://, ssl:// or wss:// brokers, not ${v.url.split(':')[0]}://`,
      });
    if ((v.tls?.certFile === undefined) !== (v.tls?.keyFile === undefined))
      ctx.addIssue({ code: 'custom', path: ['tls'], message: 'give certFile and keyFile together' });
  });

/** Where a device id comes from: a level of the MQTT topic (0-based) or a field of the payload. */
const deviceSchema = z
  .strictObject({
    /** `sensors/+/digits` with topicLevel 1 → the `+` part. */
    topicLevel: z.number().int().min(0).optional(),
    /** Dotted path into the JSON payload. */
    field: z.string().min(1).optional(),
  })
  .superRefine((v, ctx) => {
    if ((v.topicLevel === undefined) === (v.field === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'give exactly one of topicLevel or field' });
    }
  });

const inputFieldSchema = z.strictObject({
  /** Dotted path into the JSON payload; `.` is the payload itself. */
  field: z.string().min(1),
  /** Default FP32. */
  dtype: z.enum(Object.values(DType).filter((d) => d !== 'FP16') as [DType, ...DType[]]).optional(),
  /** Row shape without the batch dimension; default the flat length of the field. */
  shape: z.array(z.number().int().min(1)).optional(),
  allowNonFinite: z.boolean().optional(),
});

const outputFieldSchema = z.strictObject({
  tensor: z.string().min(1),
  as: z.enum(['auto', 'array', 'scalar', 'argmax']).optional(),
});

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()], { error: 'expected a string, number, boolean or null' });
const CONDITIONS = ['exists', 'equals', 'in', 'gt', 'gte', 'lt', 'lte'] as const;

/** A condition on one field of the prediction message (the same predicate as pipeline filters). */
const predicateSchema = z
  .strictObject({
    /** Dotted path into the prediction (`label`, `probabilities.7`). */
    field: z.string().min(1),
    exists: z.boolean().optional(),
    equals: scalar.optional(),
    in: z.array(scalar).min(1).optional(),
    gt: z.number().optional(),
    gte: z.number().optional(),
    lt: z.number().optional(),
    lte: z.number().optional(),
  })
  .superRefine((v, ctx) => {
    if (CONDITIONS.every((c) => v[c] === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: `give at least one condition on the field: ${CONDITIONS.join(', ')}` });
    }
  });

const modelSchema = z
  .strictObject({
    /** The model repository folder (same layout and config.yaml as everywhere in inflow). */
    repository: z.string().min(1),
    name: z.string().min(1),
    /**
     * Load only `name` from the repository (default); true: every model folder in it (a shared
     * repository whose other models this agent does not use need not be in memory).
     */
    loadAll: z.boolean().default(false),
    version: positiveInt.optional(),
    label: z.string().min(1).optional(),
    /** Follow this Kafka topic (`inflow models publish`) and install what is published into the repository. */
    modelsTopic: kafkaTopic.optional(),
    /** What the sync of `modelsTopic` accepts: trustedKeys (Ed25519 public key files), allowExecutablePlatforms, maxStagingBytes. */
    modelsSync: modelsSyncConfigSchema.optional(),
    /** How long the start waits for the models topic before serving what is on disk, ms. */
    syncStartTimeoutMs: z.number().int().min(0).default(5000),
    /** Model input name → where it comes from in the payload. */
    inputs: z.record(z.string().min(1), inputFieldSchema).refine((r) => Object.keys(r).length > 0, {
      message: 'map at least one model input to a payload field',
    }),
    /** Prediction field → model output; default every output as `auto`. */
    outputs: z.record(z.string().min(1), outputFieldSchema).optional(),
    /** How long the start waits for a version on disk to load before taking messages, ms. */
    readyTimeoutMs: positiveInt.default(60_000),
    /** Deadline of one inference, ms. */
    timeoutMs: positiveInt.default(10_000),
  })
  .superRefine((v, ctx) => {
    if (v.version !== undefined && v.label !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['label'], message: 'give version or label, not both' });
    }
  });

const publishTarget = z.strictObject({ topic: mqttTopicTemplate, qos: qos.default(1), retain: z.boolean().default(false) });

const publishSchema = z.strictObject({
  /** One prediction message per device message. */
  predictions: publishTarget,
  /** A message with the reason for each device message that could not be scored. */
  errors: publishTarget.optional(),
  /** Local actions: a message to `topic` when `when` holds for the prediction. */
  alerts: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[A-Za-z][A-Za-z0-9._-]{0,99}$/, 'expected a letter, then up to 99 characters of A-Z a-z 0-9 . _ -'),
        topic: mqttTopicTemplate,
        qos: qos.default(1),
        retain: z.boolean().default(false),
        when: predicateSchema,
      }),
    )
    .default([]),
});

const forwardSchema = z.strictObject({
  /** Device messages as received (value = the payload bytes). */
  readings: kafkaTopic.optional(),
  /** Prediction messages (the JSON published over MQTT). */
  predictions: kafkaTopic.optional(),
  /** Error messages of unscorable device messages. */
  errors: kafkaTopic.optional(),
  /** Records per produce request. */
  batchRecords: positiveInt.default(500),
  /** Backoff between attempts while Kafka is unreachable: doubles from min to max, ms. */
  retryMinMs: positiveInt.default(500),
  retryMaxMs: positiveInt.default(30_000),
  /**
   * Record formats under the Schema Registry (`schemaRegistry:`), as a pipeline's topics name
   * them: the JSON of predictions, errors (and JSON readings) is written in the topic's format
   * when forwarded, so the outbox fills while the registry is away.
   */
  formats: z
    .strictObject({
      readings: registryFormatSchema.optional(),
      predictions: registryFormatSchema.optional(),
      errors: registryFormatSchema.optional(),
    })
    .optional(),
});

const outboxSchema = z.strictObject({
  /** Folder of the outbox database (`edge.db`); relative to the config file. */
  path: z.string().min(1).default('edge-data'),
  /** Bound on records waiting for Kafka. */
  maxRecords: positiveInt.default(1_000_000),
  /** Bound on their bytes (key + value + headers). Default 256 MiB. */
  maxBytes: positiveInt.default(256 * 1024 * 1024),
  /** What a full outbox does with a new record: drop the oldest (counted) or refuse the new one (counted). */
  overflow: z.enum(['drop-oldest', 'stop-accepting']).default('drop-oldest'),
  /**
   * `normal`: every write survives a crash of the agent (SIGKILL, OOM); a power loss may lose the
   * last ones. `full`: an fsync per transaction, so also a power loss; slower on SD cards.
   */
  sync: z.enum(['normal', 'full']).default('normal'),
});

/** The whole edge agent file. */
export const edgeConfigSchema = z
  .strictObject({
    /** Stable id of this agent: MQTT client id, Kafka client id, message ids, model sync group. */
    agentId: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, 'expected 1-100 characters of A-Z a-z 0-9 . _ -'),
    mqtt: mqttSchema,
    /** Where the device id (MQTT topic `{device}`, Kafka key) comes from. Default: the whole MQTT topic. */
    device: deviceSchema.optional(),
    /**
     * Dotted path of a per-device sequence number or id in the payload: message id `<device>:<value>`,
     * so a message the broker delivers twice is recognisable downstream. Default `<agentId>:<n>` (n never reused).
     */
    messageIdField: z.string().min(1).optional(),
    model: modelSchema,
    publish: publishSchema,
    /** Omitted: nothing is forwarded and the models topic is not followed (a purely local agent). */
    kafka: kafkaConfigSchema.optional(),
    /** The Schema Registry of `forward.formats` (like a pipeline's `schemaRegistry:`). */
    schemaRegistry: schemaRegistryConfigSchema.optional(),
    forward: forwardSchema.default(forwardSchema.parse({})),
    outbox: outboxSchema.default(outboxSchema.parse({})),
    limits: z
      .strictObject({
        /** Device messages between receipt and their outputs; above it the agent stops reading MQTT. */
        maxInFlight: positiveInt.default(256),
      })
      .default({ maxInFlight: 256 }),
    /** `/metrics` (Prometheus) and `/healthz` on this port; omitted: no HTTP server. */
    metrics: z.strictObject({ port: z.number().int().min(0).max(65_535), host: z.string().min(1).default('127.0.0.1') }).optional(),
  })
  .superRefine((v, ctx) => {
    const forwards = (['readings', 'predictions', 'errors'] as const).filter((k) => v.forward[k] !== undefined);
    if (v.kafka === undefined) {
      for (const k of forwards) {
        ctx.addIssue({ code: 'custom', path: ['forward', k], message: 'forwarding to Kafka needs a kafka: section' });
      }
      if (v.model.modelsTopic !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['model', 'modelsTopic'], message: 'following a models topic needs a kafka: section' });
      }
    } else if (v.kafka.bootstrapServers === 'memory') {
      ctx.addIssue({
        code: 'custom',
        path: ['kafka', 'bootstrapServers'],
        message: 'the edge agent forwards to a real cluster: give broker addresses, e.g. [kafka.example:9092]',
      });
    }
    for (const k of ['readings', 'predictions', 'errors'] as const) {
      if (v.forward.formats?.[k] === undefined) continue;
      if (v.forward[k] === undefined) {
        ctx.addIssue({ code: 'custom', path: ['forward', 'formats', k], message: `applies to forward.${k}, which is not given` });
      } else if (v.schemaRegistry === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['forward', 'formats', k, 'format'],
          message: `the ${v.forward.formats[k]?.format} format needs a schemaRegistry: section (its url)`,
        });
      }
    }
    if (v.model.modelsSync !== undefined && v.model.modelsTopic === undefined) {
      ctx.addIssue({ code: 'custom', path: ['model', 'modelsSync'], message: 'applies to model.modelsTopic, which is not given' });
    }
    if (v.forward.retryMinMs > v.forward.retryMaxMs) {
      ctx.addIssue({ code: 'custom', path: ['forward', 'retryMaxMs'], message: 'expected retryMaxMs ≥ retryMinMs' });
    }
    if (v.device?.topicLevel !== undefined) {
      for (const [i, s] of v.mqtt.subscriptions.entries()) {
        const levels = s.topic.split('/');
        if (levels.slice(0, v.device.topicLevel + 1).includes('#') || levels.length <= v.device.topicLevel) {
          ctx.addIssue({
            code: 'custom',
            path: ['mqtt', 'subscriptions', i, 'topic'],
            message: `device.topicLevel ${v.device.topicLevel} is not a level of "${s.topic}"`,
          });
        }
      }
    }
  });

/** A validated edge agent file (paths still as written). */
export type EdgeConfig = z.output<typeof edgeConfigSchema>;
/** An edge agent file as written. */
export type EdgeConfigInput = z.input<typeof edgeConfigSchema>;
export type AlertRuleConfig = EdgeConfig['publish']['alerts'][number];

/** Resolves the relative paths of `config` against `baseDir` (the config file's folder). */
export function resolveEdgePaths(config: EdgeConfig, baseDir: string): EdgeConfig {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const tls = config.mqtt.tls;
  return {
    ...config,
    mqtt: {
      ...config.mqtt,
      ...(config.mqtt.passwordFile ? { passwordFile: abs(config.mqtt.passwordFile) } : {}),
      ...(tls
        ? {
            tls: {
              ...tls,
              ...(tls.caFile ? { caFile: abs(tls.caFile) } : {}),
              ...(tls.certFile ? { certFile: abs(tls.certFile) } : {}),
              ...(tls.keyFile ? { keyFile: abs(tls.keyFile) } : {}),
            },
          }
        : {}),
    },
    model: {
      ...config.model,
      repository: abs(config.model.repository),
      ...(config.model.modelsSync
        ? { modelsSync: { ...config.model.modelsSync, trustedKeys: config.model.modelsSync.trustedKeys.map(abs) } }
        : {}),
    },
    outbox: { ...config.outbox, path: abs(config.outbox.path) },
    ...(config.forward.formats
      ? {
          forward: {
            ...config.forward,
            formats: Object.fromEntries(
              Object.entries(config.forward.formats).map(([k, f]) => [k, f?.schemaFile ? { ...f, schemaFile: abs(f.schemaFile) } : f]),
            ),
          },
        }
      : {}),
    ...(config.schemaRegistry ? { schemaRegistry: resolveRegistryPaths(config.schemaRegistry, abs) } : {}),
  };
}

/** The registry section with its secret and certificate files absolute. */
function resolveRegistryPaths(
  r: NonNullable<EdgeConfig['schemaRegistry']>,
  abs: (p: string) => string,
): NonNullable<EdgeConfig['schemaRegistry']> {
  const tls = r.tls;
  return {
    ...r,
    ...(r.basicAuth?.passwordFile ? { basicAuth: { ...r.basicAuth, passwordFile: abs(r.basicAuth.passwordFile) } } : {}),
    ...(r.bearerTokenFile ? { bearerTokenFile: abs(r.bearerTokenFile) } : {}),
    ...(tls
      ? {
          tls: {
            ...tls,
            ...(tls.caFile ? { caFile: abs(tls.caFile) } : {}),
            ...(tls.certFile ? { certFile: abs(tls.certFile) } : {}),
            ...(tls.keyFile ? { keyFile: abs(tls.keyFile) } : {}),
          },
        }
      : {}),
  };
}

/**
 * Validates a parsed edge file.
 * @throws InflowError INVALID_CONFIG naming `source` and each field path, on one line.
 */
export function validateEdgeConfig(value: unknown, source: string): EdgeConfig {
  try {
    return validateConfig(edgeConfigSchema, value, source);
  } catch (error) {
    throw oneLineConfigError(error);
  }
}

/** Parses (YAML or JSON) and validates edge agent text; relative paths resolve against `baseDir`. */
export function parseEdgeConfig(text: string, source: string, baseDir = '.'): EdgeConfig {
  return resolveEdgePaths(validateEdgeConfig(parseConfigText(text, source), source), baseDir);
}

/** Reads, parses and validates an edge agent file; relative paths resolve against its folder. */
export async function loadEdgeConfig(path: string): Promise<EdgeConfig> {
  try {
    return resolveEdgePaths(await loadConfigFile(edgeConfigSchema, path), dirname(resolve(path)));
  } catch (error) {
    throw oneLineConfigError(error);
  }
}
