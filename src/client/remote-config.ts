/**
 * Schema of the remote client's configuration (a `remote:` section of a config file, or the
 * options of `createRemoteInferencer`): where the model server is, how it is spoken to, and the
 * retry and circuit-breaker policies. Times are milliseconds.
 */
import { z } from 'zod';
import { DEFAULT_CIRCUIT_BREAKER } from './circuit-breaker.ts';
import { RemoteProtocol } from './remote-errors.ts';
import { DEFAULT_RETRY } from './resilient-inferencer.ts';

const positiveInt = z.number().int().positive();

/** Retry policy (see resilient-inferencer.ts). */
export const retryConfigSchema = z.strictObject({
  maxAttempts: positiveInt.default(DEFAULT_RETRY.maxAttempts),
  initialBackoffMs: z.number().min(0).default(DEFAULT_RETRY.initialBackoffMs),
  maxBackoffMs: z.number().min(0).default(DEFAULT_RETRY.maxBackoffMs),
  multiplier: z.number().min(1).default(DEFAULT_RETRY.multiplier),
});

/** Circuit breaker (see circuit-breaker.ts). */
export const circuitBreakerConfigSchema = z.strictObject({
  failureThreshold: positiveInt.default(DEFAULT_CIRCUIT_BREAKER.failureThreshold),
  resetTimeoutMs: z.number().min(0).default(DEFAULT_CIRCUIT_BREAKER.resetTimeoutMs),
  halfOpenMaxCalls: positiveInt.default(DEFAULT_CIRCUIT_BREAKER.halfOpenMaxCalls),
});

const REST_URL = /^https?:\/\/[^\s/]+(?:\/\S*)?$/;
const HOST_PORT = /^(?:\[[0-9a-fA-F:.]+\]|[^\s:/]+):\d{1,5}$/;

/** The remote client's configuration. */
export const remoteClientConfigSchema = z
  .strictObject({
    protocol: z.enum([RemoteProtocol.TFSERVING_REST, RemoteProtocol.TFSERVING_GRPC, RemoteProtocol.OIP_REST, RemoteProtocol.OIP_GRPC]),
    /** `http(s)://host:port[/base]` for REST, `host:port` for gRPC. */
    url: z.string().min(1),
    /** OIP REST: send inputs and ask for outputs with the binary tensor data extension (OIP gRPC is always raw). */
    oipBinary: z.boolean().default(false),
    /** Bearer token sent with every call (`Authorization: Bearer …` header or metadata). */
    auth: z.strictObject({ token: z.string().min(1) }).optional(),
    /** Deadline of one attempt (connect, send, whole answer), ms; 0 disables. */
    timeoutMs: z.number().int().min(0).default(10_000),
    /** REST: connections kept open to the server. */
    maxSockets: positiveInt.default(64),
    /** Largest answer, bytes (REST body, gRPC message; gRPC also bounds what is sent). */
    maxMessageBytes: positiveInt.default(64 * 1024 * 1024),
    /** TF Serving REST: how long a model's signature (for the JSON dtypes) is reused, ms. */
    metadataTtlMs: z.number().int().min(0).default(60_000),
    /** gRPC: the channel's reconnect backoff after the server went away, ms. */
    reconnectBackoffMs: z
      .strictObject({ initial: positiveInt.default(100), max: positiveInt.default(2000) })
      .default({ initial: 100, max: 2000 }),
    /** `false`: one attempt per call. */
    retry: z.union([z.literal(false), retryConfigSchema]).default(retryConfigSchema.parse({})),
    /** `false`: no circuit breaker. */
    circuitBreaker: z.union([z.literal(false), circuitBreakerConfigSchema]).default(circuitBreakerConfigSchema.parse({})),
  })
  .superRefine((config, context) => {
    const rest = config.protocol.endsWith('-rest');
    if (rest ? !REST_URL.test(config.url) : !HOST_PORT.test(config.url)) {
      context.addIssue({
        code: 'custom',
        path: ['url'],
        message: rest
          ? `"${config.url}" is not a REST URL; expected "http(s)://host:port", e.g. "http://127.0.0.1:8501"`
          : `"${config.url}" is not a gRPC address; expected "host:port", e.g. "127.0.0.1:8500"`,
      });
    }
    if (config.oipBinary && !config.protocol.startsWith('oip-')) {
      context.addIssue({ code: 'custom', path: ['oipBinary'], message: `applies to the OIP protocols only, not ${config.protocol}` });
    }
  });

/** Validated configuration. */
export type RemoteClientConfig = z.output<typeof remoteClientConfigSchema>;
/** Configuration as written (defaults optional). */
export type RemoteClientConfigInput = z.input<typeof remoteClientConfigSchema>;
