/**
 * Schema of the `kafka:` section shared by every config file: where the cluster is and how
 * to reach it. The client layer (src/kafka) takes the validated type, never raw options.
 */
import { z } from 'zod';

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:/]+):\d{1,5}$/, 'expected "host:port", e.g. "127.0.0.1:9092"');

/** Only one of `a` and `b` may be set. */
function oneOf<T extends Record<string, unknown>>(a: keyof T & string, b: keyof T & string) {
  return (value: T, ctx: z.RefinementCtx): void => {
    if (value[a] !== undefined && value[b] !== undefined)
      ctx.addIssue({ code: 'custom', path: [b], message: `set ${a} or ${b}, not both` });
  };
}

/**
 * SASL authentication (KIP-43 / KIP-84); passed through to the client. Secrets may be given as
 * files (`passwordFile`, `tokenFile`: a mounted Kubernetes Secret), read when the client is made.
 */
export const saslConfigSchema = z
  .strictObject({
    mechanism: z.enum(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512', 'OAUTHBEARER']),
    username: z.string().min(1).optional(),
    /** The user name from a file (a Kubernetes Secret's key, e.g. a Strimzi KafkaUser's). */
    usernameFile: z.string().min(1).optional(),
    password: z.string().optional(),
    passwordFile: z.string().min(1).optional(),
    /** OAUTHBEARER token. */
    token: z.string().optional(),
    tokenFile: z.string().min(1).optional(),
  })
  .superRefine(oneOf('username', 'usernameFile'))
  .superRefine(oneOf('password', 'passwordFile'))
  .superRefine(oneOf('token', 'tokenFile'));

/** TLS: PEM contents, or PEM files (`caFile`, `certFile`, `keyFile`) read when the client is made. */
export const sslConfigSchema = z
  .strictObject({
    ca: z.string().optional(),
    caFile: z.string().min(1).optional(),
    cert: z.string().optional(),
    certFile: z.string().min(1).optional(),
    key: z.string().optional(),
    keyFile: z.string().min(1).optional(),
    rejectUnauthorized: z.boolean().default(true),
    servername: z.string().optional(),
  })
  .superRefine(oneOf('ca', 'caFile'))
  .superRefine(oneOf('cert', 'certFile'))
  .superRefine(oneOf('key', 'keyFile'));

/** The `kafka:` section. Times are milliseconds. */
export const kafkaConfigSchema = z.strictObject({
  /** `memory` selects the in-process log (no cluster); anything else is a list of brokers. */
  bootstrapServers: z.union([z.literal('memory'), z.array(hostPort).min(1)]).default('memory'),
  clientId: z.string().min(1).default('inflow'),
  /** Bound on every request to the cluster (connect, metadata, produce, commit), ms. */
  requestTimeoutMs: z.number().int().positive().default(30_000),
  /** Connect retries before KAFKA_UNREACHABLE is raised. */
  retries: z.number().int().min(0).default(3),
  /**
   * Cap of the backoff between reconnect attempts after a broker outage (consumers rejoining
   * their group, transactions, offset reads), ms: the longest a client waits after the broker is
   * back. 1000 like the Java client's `reconnect.backoff.max.ms`.
   */
  reconnectBackoffMaxMs: z.number().int().positive().default(1000),
  sasl: saslConfigSchema.optional(),
  ssl: sslConfigSchema.optional(),
});

/** Validated `kafka:` section. */
export type KafkaConfig = z.output<typeof kafkaConfigSchema>;
/** `kafka:` section as written in a file (defaults optional). */
export type KafkaConfigInput = z.input<typeof kafkaConfigSchema>;

/** Parses `KAFKA_BOOTSTRAP_SERVERS`-style text ("h1:9092,h2:9092") into a list. */
export function parseBootstrapServers(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
