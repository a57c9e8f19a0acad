/**
 * Retries, a circuit breaker and an embedded fallback around any Inferencer (the remote protocol
 * clients in practice). Only errors whose code is retriable in src/errors.ts (UNAVAILABLE,
 * RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, …) are retried, after an exponential backoff with full
 * jitter; they also count towards opening the circuit. While the circuit is open, or when retries
 * are exhausted, the call goes to the fallback (e.g. a local InferenceService over the same
 * repository) if there is one, else fails fast with UNAVAILABLE. Inference is pure, so a retry
 * can never do harm twice.
 *
 * Time (backoff sleeps, the breaker's timeout) and randomness (jitter) are injected, so tests run
 * without sleeping.
 */
import { InflowError } from '../errors.ts';
import { type Clock, systemClock } from '../serving/clock.ts';
import type { InferOptions, InferRequest, InferResponse, Inferencer, ModelMetadata } from '../serving/types.ts';
import { type CircuitBreaker, type CircuitBreakerOptions, type CircuitState, createCircuitBreaker } from './circuit-breaker.ts';

/** Retry policy. */
export interface RetryOptions {
  /** Attempts in all, the first included (1 = no retry). Default 3. */
  maxAttempts?: number;
  /** Upper bound of the first backoff, ms. Default 20. */
  initialBackoffMs?: number;
  /** Upper bound of any backoff, ms. Default 1000. */
  maxBackoffMs?: number;
  /** Growth of the bound per retry. Default 2. */
  multiplier?: number;
}

/** Defaults of {@link RetryOptions}. */
export const DEFAULT_RETRY = { maxAttempts: 3, initialBackoffMs: 20, maxBackoffMs: 1000, multiplier: 2 } as const;

/** Options of {@link createResilientInferencer}. */
export interface ResilienceOptions {
  /** What the inner inferencer calls, for messages (`circuit open for <name>`): the server's URL. */
  name: string;
  /** Retry policy; `false` makes one attempt only. */
  retry?: RetryOptions | false;
  /** Circuit breaker; `false` disables it. */
  circuitBreaker?: CircuitBreakerOptions | false;
  /** Answers when the circuit is open or retries are exhausted. Not closed by {@link ResilientInferencer.close}: the caller owns it. */
  fallback?: Inferencer | undefined;
  /** Time source of backoffs and the breaker. Default: the process clock. */
  clock?: Clock;
  /** Uniform random numbers in [0, 1) for the jitter. Default Math.random. */
  random?: () => number;
}

/** Which side answered a call. */
export type ServedBy = 'remote' | 'fallback';

/** An InferResponse that says which side answered. */
export interface ServedInferResponse extends InferResponse {
  servedBy: ServedBy;
}

/** Counters since creation. */
export interface ResilienceStats {
  /** infer() and metadata() calls. */
  calls: number;
  /** Attempts beyond the first of a call. */
  retries: number;
  /** Attempts of the inner inferencer that failed with a retriable error. */
  remoteErrors: number;
  /** Calls that failed fast because the circuit was open. */
  shortCircuited: number;
  /** Calls answered (or tried) by the fallback. */
  fallbacks: number;
  /** Calls that ended in an error for the caller. */
  failures: number;
  circuit: CircuitState;
}

/** An Inferencer with retries, a circuit breaker and a fallback. */
export interface ResilientInferencer extends Inferencer {
  infer(request: InferRequest, options?: InferOptions): Promise<ServedInferResponse>;
  stats(): ResilienceStats;
}

/** Full-jitter exponential backoff before retry `retry` (1 = the first retry), ms. */
export function backoffMs(retry: number, policy: Required<RetryOptions>, random: () => number): number {
  const bound = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * policy.multiplier ** (retry - 1));
  return bound * random();
}

/** Wraps `inner` (which it closes on close()). */
export function createResilientInferencer(inner: Inferencer, options: ResilienceOptions): ResilientInferencer {
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const retry: Required<RetryOptions> =
    options.retry === false ? { ...DEFAULT_RETRY, maxAttempts: 1 } : { ...DEFAULT_RETRY, ...stripUndefined(options.retry ?? {}) };
  const breaker: CircuitBreaker | undefined =
    options.circuitBreaker === false ? undefined : createCircuitBreaker(options.circuitBreaker ?? {}, clock);
  const { fallback, name } = options;
  const closing = new AbortController();
  const stats = { calls: 0, retries: 0, remoteErrors: 0, shortCircuited: 0, fallbacks: 0, failures: 0 };
  /** The last retriable error of any call: what an open circuit's message names as the reason. */
  let lastRemoteError: InflowError | undefined;

  /** Waits `ms` on the injected clock; rejects CANCELLED when `signal` or close() aborts. */
  function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        signal?.removeEventListener('abort', stop);
        closing.signal.removeEventListener('abort', stop);
      };
      const handle = clock.setTimer(() => {
        cleanup();
        resolve();
      }, ms * 1000);
      const stop = (): void => {
        clock.clearTimer(handle);
        cleanup();
        reject(new InflowError('CANCELLED', `call to ${name} cancelled while waiting to retry`));
      };
      signal?.addEventListener('abort', stop, { once: true });
      closing.signal.addEventListener('abort', stop, { once: true });
    });
  }

  function circuitOpen(last: InflowError | undefined): InflowError {
    const after = Math.ceil(breaker?.retryAfterMs() ?? 0);
    return new InflowError(
      'UNAVAILABLE',
      `circuit open for ${name}: ${breaker?.consecutiveFailures ?? 0} consecutive failures${last ? ` (last: ${last.message})` : ''}; ` +
        `calls fail fast and the next trial call goes through in ${after} ms`,
      { ...(last ? { cause: last } : {}), details: { circuit: breaker?.state, retryAfterMs: after } },
    );
  }

  async function viaFallback<T>(
    error: InflowError,
    run: ((inferencer: Inferencer) => Promise<T>) | undefined,
  ): Promise<{ value: T; servedBy: ServedBy }> {
    if (!fallback || !run) {
      stats.failures++;
      throw error;
    }
    stats.fallbacks++;
    try {
      return { value: await run(fallback), servedBy: 'fallback' };
    } catch (fallbackError) {
      stats.failures++;
      throw fallbackError;
    }
  }

  async function execute<T>(
    run: (inferencer: Inferencer) => Promise<T>,
    signal: AbortSignal | undefined,
    useFallback: boolean,
  ): Promise<{ value: T; servedBy: ServedBy }> {
    stats.calls++;
    const fallbackRun = useFallback ? run : undefined;
    for (let attempt = 1; ; attempt++) {
      const permit = breaker?.tryAcquire();
      if (breaker && !permit) {
        stats.shortCircuited++;
        return viaFallback(circuitOpen(lastRemoteError), fallbackRun);
      }
      try {
        const value = await run(inner);
        permit?.success();
        return { value, servedBy: 'remote' };
      } catch (thrown) {
        const error = InflowError.from(thrown);
        if (signal?.aborted || closing.signal.aborted) {
          permit?.release();
          stats.failures++;
          throw error;
        }
        if (!error.retriable) {
          // The server answered (a 4xx, a model error): it is up, and the same request fails the same way.
          permit?.success();
          stats.failures++;
          throw error;
        }
        permit?.failure();
        stats.remoteErrors++;
        lastRemoteError = error;
        if (attempt >= retry.maxAttempts) {
          const exhausted =
            attempt === 1
              ? error
              : new InflowError(error.code, `${error.message} (gave up after ${attempt} attempts)`, {
                  cause: error,
                  ...(error.details ? { details: error.details } : {}),
                });
          return viaFallback(exhausted, fallbackRun);
        }
        // An open circuit fails the next attempt fast: no point in waiting for it.
        if (breaker?.state === 'open') continue;
        stats.retries++;
        try {
          await sleep(backoffMs(attempt, retry, random), signal);
        } catch (cancelled) {
          stats.failures++;
          throw cancelled;
        }
      }
    }
  }

  return {
    async infer(request, inferOptions = {}) {
      const { value, servedBy } = await execute((inferencer) => inferencer.infer(request, inferOptions), inferOptions.signal, true);
      return { ...value, servedBy };
    },

    async metadata(model: string, version?: number): Promise<ModelMetadata> {
      return (await execute((inferencer) => inferencer.metadata(model, version), undefined, true)).value;
    },

    async ready(model?: string): Promise<boolean> {
      // Not through the breaker: a readiness probe must see the server as it is now.
      const remote = await inner.ready(model).catch((error: unknown) => {
        if (!fallback) throw error;
        return false;
      });
      if (remote || !fallback) return remote;
      return fallback.ready(model);
    },

    stats() {
      return { ...stats, circuit: breaker?.state ?? 'closed' };
    },

    async close() {
      closing.abort();
      await inner.close();
    },
  };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
