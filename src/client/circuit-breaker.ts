/**
 * A circuit breaker over consecutive failures: closed (calls go through) → open after
 * `failureThreshold` failures in a row (calls fail fast) → half-open after `resetTimeoutMs`
 * (up to `halfOpenMaxCalls` trial calls) → closed when a trial succeeds, open again when one
 * fails. Time comes from an injected Clock (µs), so tests move it by hand.
 */
import type { Clock } from '../serving/clock.ts';

/** States of a {@link CircuitBreaker}. */
export const CircuitState = {
  CLOSED: 'closed',
  OPEN: 'open',
  HALF_OPEN: 'half-open',
} as const;
export type CircuitState = (typeof CircuitState)[keyof typeof CircuitState];

/** Options of {@link createCircuitBreaker}. */
export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. Default 5. */
  failureThreshold?: number;
  /** Time the circuit stays open before trial calls are let through, ms. Default 5000. */
  resetTimeoutMs?: number;
  /** Trial calls at once while half-open. Default 1. */
  halfOpenMaxCalls?: number;
}

/** Defaults of {@link CircuitBreakerOptions}. */
export const DEFAULT_CIRCUIT_BREAKER = { failureThreshold: 5, resetTimeoutMs: 5000, halfOpenMaxCalls: 1 } as const;

/** Leave to make one call; report its outcome exactly once (later reports are ignored). */
export interface CircuitPermit {
  /** The server answered (also with a non-retriable error such as 400: it is up). */
  success(): void;
  /** The server could not answer (a retriable error: unreachable, overloaded, too slow). */
  failure(): void;
  /** The call ended without telling anything (the caller cancelled it). */
  release(): void;
}

/** A circuit breaker. */
export interface CircuitBreaker {
  /** The state now (an open circuit whose timeout passed reads half-open). */
  readonly state: CircuitState;
  /** Consecutive failures counted so far. */
  readonly consecutiveFailures: number;
  /** A permit for one call, or undefined when the call must fail fast. */
  tryAcquire(): CircuitPermit | undefined;
  /** Time until trial calls are let through, ms (0 unless open). */
  retryAfterMs(): number;
}

/** Creates a closed circuit breaker. */
export function createCircuitBreaker(options: CircuitBreakerOptions, clock: Clock): CircuitBreaker {
  const threshold = options.failureThreshold ?? DEFAULT_CIRCUIT_BREAKER.failureThreshold;
  const resetMicros = (options.resetTimeoutMs ?? DEFAULT_CIRCUIT_BREAKER.resetTimeoutMs) * 1000;
  const halfOpenMax = options.halfOpenMaxCalls ?? DEFAULT_CIRCUIT_BREAKER.halfOpenMaxCalls;
  let state: CircuitState = CircuitState.CLOSED;
  let failures = 0;
  let openedAt = 0;
  let trials = 0;

  function current(): CircuitState {
    if (state === CircuitState.OPEN && clock.now() - openedAt >= resetMicros) {
      state = CircuitState.HALF_OPEN;
      trials = 0;
    }
    return state;
  }

  function open(): void {
    state = CircuitState.OPEN;
    openedAt = clock.now();
    trials = 0;
  }

  function permit(trial: boolean): CircuitPermit {
    let done = false;
    const settle = (outcome: 'success' | 'failure' | 'release'): void => {
      if (done) return;
      done = true;
      // A trial ends its half-open slot whatever happens; a late answer of a call made while
      // closed does not undo a state change made since.
      if (trial && state === CircuitState.HALF_OPEN) trials--;
      if (outcome === 'success') {
        failures = 0;
        if (trial || state === CircuitState.HALF_OPEN) state = CircuitState.CLOSED;
      } else if (outcome === 'failure') {
        failures++;
        if (trial && state === CircuitState.HALF_OPEN) open();
        else if (state === CircuitState.CLOSED && failures >= threshold) open();
      }
    };
    return {
      success: () => settle('success'),
      failure: () => settle('failure'),
      release: () => settle('release'),
    };
  }

  return {
    get state() {
      return current();
    },
    get consecutiveFailures() {
      return failures;
    },
    tryAcquire() {
      const now = current();
      if (now === CircuitState.CLOSED) return permit(false);
      if (now === CircuitState.HALF_OPEN && trials < halfOpenMax) {
        trials++;
        return permit(true);
      }
      return undefined;
    },
    retryAfterMs() {
      if (current() !== CircuitState.OPEN) return 0;
      return Math.max(0, (openedAt + resetMicros - clock.now()) / 1000);
    },
  };
}
