/**
 * Riding out broker outages, once for every Kafka user in inflow (pipelines, the Kafka-native
 * endpoint, model sync, the edge outbox): which failures are worth retrying, capped exponential
 * backoff with jitter, and a per-client connection state that changes — and is logged — once
 * per outage, not once per retry. The real client's consumers and producers retry through
 * {@link retryTransient}; callers read {@link ConnectionMonitor.state} for `/readyz` and metrics.
 *
 * Retrying cannot fix authentication/authorization failures, a fenced producer or invalid
 * configuration: those codes are not retriable in src/errors.ts and pass straight through.
 */
import { InflowError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';

export const ConnectionState = { CONNECTED: 'connected', DISCONNECTED: 'disconnected' } as const;
export type ConnectionState = (typeof ConnectionState)[keyof typeof ConnectionState];

/** A change of a client's connection state. */
export interface ConnectionChange {
  readonly state: ConnectionState;
  /** The failure that disconnected the client (on `disconnected`). */
  readonly error?: InflowError;
  /** How long the previous state lasted, ms. */
  readonly afterMs: number;
}

/** What one client last saw of its cluster. */
export interface ConnectionMonitor {
  readonly state: ConnectionState;
  /** When the state last changed, ms since the epoch. */
  readonly since: number;
  /** The failure behind the current `disconnected` state. */
  readonly lastError: InflowError | undefined;
  /** Reports a transient failure: the first one after `connected` changes the state (and logs once). */
  failed(error: InflowError): void;
  /** Reports a request that worked: the first one after `disconnected` changes the state back. */
  succeeded(): void;
  /** Calls `listener` on every change; returns the unsubscribe function. */
  onChange(listener: (change: ConnectionChange) => void): () => void;
}

/** Options of {@link createConnectionMonitor}. */
export interface ConnectionMonitorOptions {
  /** Gets one line per change: a warning on disconnect, info on reconnect. */
  readonly logger?: Logger;
  /** What is connected, for the log lines ("Kafka at 127.0.0.1:9092"). */
  readonly name?: string;
  readonly now?: () => number;
}

export function createConnectionMonitor(options: ConnectionMonitorOptions = {}): ConnectionMonitor {
  const now = options.now ?? Date.now;
  const log = options.logger ?? silentLogger;
  const name = options.name ?? 'Kafka';
  const listeners = new Set<(change: ConnectionChange) => void>();
  let state: ConnectionState = 'connected';
  let since = now();
  let lastError: InflowError | undefined;
  const change = (next: ConnectionState, error?: InflowError): void => {
    const afterMs = now() - since;
    state = next;
    since = now();
    lastError = error;
    if (next === 'disconnected') {
      log.warn({ code: error?.code, err: error?.message }, `${name} unreachable; retrying with backoff until it is back`);
    } else {
      log.info({ downMs: afterMs }, `${name} reachable again after ${(afterMs / 1000).toFixed(1)} s`);
    }
    const event: ConnectionChange = error ? { state: next, error, afterMs } : { state: next, afterMs };
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (e) {
        log.warn({ err: (e as Error).message }, 'a connection state listener failed');
      }
    }
  };
  return {
    get state() {
      return state;
    },
    get since() {
      return since;
    },
    get lastError() {
      return lastError;
    },
    failed(error) {
      if (state === 'connected') change('disconnected', error);
      else lastError = error;
    },
    succeeded() {
      if (state === 'disconnected') change('connected');
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/** Backoff bounds, ms. */
export interface BackoffOptions {
  /** First delay; default 100. */
  readonly initialMs?: number;
  /** Cap; default 5000 (an outage is noticed at most ~5 s after it ends). */
  readonly maxMs?: number;
  /** [0, 1) source of the jitter; default Math.random. */
  readonly random?: () => number;
}

/**
 * Delay before retry number `attempt` (0-based): exponential, capped, with "equal jitter" —
 * half the capped delay plus a random half — so many clients that lost the same broker do not
 * come back in lockstep, and no delay collapses to zero.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const initial = options.initialMs ?? 100;
  const max = options.maxMs ?? 5000;
  const capped = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  return Math.round(capped / 2 + (options.random ?? Math.random)() * (capped / 2));
}

/**
 * Whether retrying may fix `error`: the broker (or the network, or a coordinator) is away or
 * busy. Never for authentication/authorization, fencing, bad configuration or bad input.
 */
export function isTransient(error: InflowError): boolean {
  return error.retriable && error.code !== 'KAFKA_REBALANCE';
}

/** What {@link retryTransient} reports each outcome to. */
export type ConnectionReporter = Pick<ConnectionMonitor, 'failed' | 'succeeded'>;

/**
 * One reporter for several monitors: a component that logs its own state changes (its own
 * monitor) and also keeps the client's shared state — what `/readyz` reads — up to date.
 */
export function reportTo(...monitors: ReadonlyArray<ConnectionReporter | undefined>): ConnectionReporter {
  const all = monitors.filter((m): m is ConnectionReporter => m !== undefined);
  return {
    failed: (error) => {
      for (const m of all) m.failed(error);
    },
    succeeded: () => {
      for (const m of all) m.succeeded();
    },
  };
}

/** Options of {@link retryTransient}. */
export interface RetryOptions extends BackoffOptions {
  readonly monitor?: ConnectionReporter;
  /** Called before each wait (stats, events — not logs: the monitor logs the state changes). */
  readonly onRetry?: (error: InflowError, delayMs: number, attempt: number) => void;
  /** Stops the retries: the last error is thrown as CANCELLED. */
  readonly signal?: AbortSignal;
  /** Maps what `fn` threw onto an InflowError (the client layer's error mapping). */
  readonly toError?: (error: unknown) => InflowError;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Gives up after this long (ms, from the first try) and throws the last error; default: never. */
  readonly maxWaitMs?: number;
  readonly now?: () => number;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Runs `fn` until it succeeds or fails for a reason retrying cannot fix, waiting
 * {@link backoffDelay} between tries — for as long as the outage lasts. Reports each outcome
 * to the monitor (which logs only the changes). Only for operations that are safe to repeat.
 */
export async function retryTransient<T>(fn: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const toError = options.toError ?? ((e: unknown) => InflowError.from(e, 'KAFKA_ERROR'));
  const wait = options.sleep ?? sleep;
  const now = options.now ?? Date.now;
  const giveUpAt = options.maxWaitMs === undefined ? Number.POSITIVE_INFINITY : now() + options.maxWaitMs;
  for (let attempt = 0; ; attempt++) {
    try {
      const value = await fn();
      options.monitor?.succeeded();
      return value;
    } catch (thrown) {
      const error = toError(thrown);
      if (!isTransient(error)) throw error;
      options.monitor?.failed(error);
      if (options.signal?.aborted) {
        throw new InflowError('CANCELLED', `stopped while Kafka was unreachable: ${error.message}`, { cause: error });
      }
      const delay = backoffDelay(attempt, options);
      if (now() + delay > giveUpAt) throw error;
      options.onRetry?.(error, delay, attempt);
      await wait(delay, options.signal);
      if (options.signal?.aborted) {
        throw new InflowError('CANCELLED', `stopped while Kafka was unreachable: ${error.message}`, { cause: error });
      }
    }
  }
}
