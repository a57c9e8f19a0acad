/**
 * Options of the REST transport (handler and server), with their defaults. Limits are the
 * server's memory bound: at most `maxConcurrentRequests × maxBodyBytes` bytes of request bodies
 * are held at once.
 */
import type { Registry } from 'prom-client';
import type { Logger } from '../../observability/logger.ts';
import { DEFAULT_DECODE_LIMITS, type DecodeLimits } from '../../serving/check-inputs.ts';
import { silentLogger } from '../../observability/logger.ts';
import type { DashboardOptions } from '../dashboard/dashboard-options.ts';
import type { ReadinessGate } from '../readiness-gate.ts';
import type { StoreQuery } from '../../streams/runtime/store-query.ts';

/** A bearer token that guards a group of routes. */
export interface BearerAuth {
  /** The token callers send as `Authorization: Bearer <token>`; compared in constant time. */
  token: string;
}

/** Options of `createRestHandler`. */
export interface RestHandlerOptions {
  /** Bearer token required on the inference routes (`/v1/…`, `/v2/models/…`); health and metrics stay open. */
  auth?: BearerAuth;
  /** Enables `/admin/…` (off without a token). */
  admin?: BearerAuth;
  /** Largest request body, bytes; larger ones get 413 and reading stops. Default 32 MiB. */
  maxBodyBytes?: number;
  /**
   * Tensor elements of one inference request, all inputs together; more get 413 before any
   * element is decoded (as do inputs whose dtype or shape the model's signature rules out).
   * Default 16 Mi.
   */
  maxRequestElements?: number;
  /** BYTES elements of one inference request (each costs an object, ~100 bytes, however short); more get 413. Default 1 Mi. */
  maxRequestBytesElements?: number;
  /** Requests served at once (health and metrics excluded); more get 429 RESOURCE_EXHAUSTED. Default 1024. */
  maxConcurrentRequests?: number;
  /** Deadline of one inference, ms (TF Serving's `--rest_api_timeout_in_ms`); 504 after it. Default 30 000; 0 disables. */
  requestTimeoutMs?: number;
  /** `name` and `version` of `GET /v2` (server metadata). Defaults: `inflow` and the package version. */
  serverName?: string;
  serverVersion?: string;
  /** Fraction of successful requests written to the access log (0–1; failed ones always are). Default 0.01. */
  accessLogSampleRate?: number;
  /** Where the HTTP metrics are registered and what `/metrics` exposes. Default: the inference service's registry. */
  registry?: Registry;
  /** Dependencies besides the models that readiness (`/v2/health/ready`) waits for: Kafka when the server uses it. */
  readiness?: readonly ReadinessGate[];
  /** The live page at `/dashboard/` (on by default), with the in-process pipelines it shows; `false` turns it off. */
  dashboard?: DashboardOptions | false;
  /**
   * The state stores of the pipelines this process runs (interactive queries): served under
   * `/v1/stores` exactly as on `inflow stream --metrics-port` (store-query-http.ts), behind the
   * inference token. Absent: no store routes.
   */
  stores?: StoreQuery;
  logger?: Logger;
}

/** Options of `startRestServer`: the handler's, plus the socket's. */
export interface RestServerOptions extends RestHandlerOptions {
  /** Default `0.0.0.0`. */
  host?: string;
  /** Default 8501 (TF Serving's REST port); 0 picks a free port. */
  port?: number;
  /** Serve HTTPS with this key and certificate (PEM). */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** Time to receive a request's headers, ms (slow-loris bound). Default 10 000. */
  headersTimeoutMs?: number;
  /** Time to receive a whole request, headers and body, ms. Default 60 000. */
  bodyTimeoutMs?: number;
  /** How long an idle keep-alive connection stays open, ms. Default 5 000. */
  keepAliveTimeoutMs?: number;
}

/** Handler options with defaults applied. */
export interface ResolvedHandlerOptions {
  authToken: string | undefined;
  adminToken: string | undefined;
  maxBodyBytes: number;
  decodeLimits: DecodeLimits;
  maxConcurrentRequests: number;
  requestTimeoutMs: number;
  serverName: string;
  serverVersion: string;
  logger: Logger;
}

export const DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024;
export const DEFAULT_MAX_CONCURRENT_REQUESTS = 1024;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** Applies defaults (the package version is read by the caller and passed in). */
export function resolveHandlerOptions(options: RestHandlerOptions, packageVersion: string): ResolvedHandlerOptions {
  return {
    authToken: options.auth?.token,
    adminToken: options.admin?.token,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    decodeLimits: {
      maxElements: options.maxRequestElements ?? DEFAULT_DECODE_LIMITS.maxElements,
      maxBytesElements: options.maxRequestBytesElements ?? DEFAULT_DECODE_LIMITS.maxBytesElements,
    },
    maxConcurrentRequests: options.maxConcurrentRequests ?? DEFAULT_MAX_CONCURRENT_REQUESTS,
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    serverName: options.serverName ?? 'inflow',
    serverVersion: options.serverVersion ?? packageVersion,
    logger: options.logger ?? silentLogger,
  };
}
