/**
 * What a route module gives the handler: for a method and path, the matched route. Route
 * functions are created once per handler (no per-request closures); the regex match carries
 * the path parameters.
 */
import { InflowError } from '../../errors.ts';
import type { LocalInference } from '../../serving/local-inference.ts';
import type { Exchange } from './http-exchange.ts';
import type { ResolvedHandlerOptions } from './rest-options.ts';

/**
 * Who may call a route: `inference` (the `auth` token when set, counted against
 * `maxConcurrentRequests`), `open` (health, metrics: never limited, also during shutdown),
 * `admin` (the admin token).
 */
export type RouteAccess = 'inference' | 'open' | 'admin';

export type RouteRun = (exchange: Exchange, match: RegExpExecArray) => Promise<void>;

export interface RouteMatch {
  /** Metrics label. */
  route: string;
  access: RouteAccess;
  run: RouteRun;
  match: RegExpExecArray;
}

/** What route modules are built from. */
export interface RouteDeps {
  inference: LocalInference;
  options: ResolvedHandlerOptions;
  /** Whether the server is ready for traffic (false once shutdown began). */
  accepting(): boolean;
  /** Why a dependency (Kafka) holds readiness back; undefined when none does. */
  notReady(): string | undefined;
  /** Why the server serves degraded while ready (model sync cannot reach Kafka); empty when it does not. */
  degraded(): string[];
}

/** Decodes a URL path segment; malformed escapes are INVALID_ARGUMENT with `what` named. */
export function decodeSegment(segment: string, what: string): string {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new InflowError('INVALID_ARGUMENT', `${what} "${segment}" has a malformed %-escape`);
  }
}

/** A decimal version from a path; INVALID_ARGUMENT with TF Serving's text when it is not a safe integer. */
export function parseVersion(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const version = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(version)) throw new InflowError('INVALID_ARGUMENT', `Failed to convert version: ${text} to numeric.`);
  return version;
}

/** Routing key header: the same key always reaches the same version of a weighted split. */
export function routingKey(exchange: Exchange): string | undefined {
  const key = exchange.req.headers['x-routing-key'];
  return typeof key === 'string' ? key : undefined;
}
