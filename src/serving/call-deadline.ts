/**
 * The deadline of one call: a signal that aborts after `timeoutMs` with a `TimeoutError`
 * (`InflowError.from` makes it DEADLINE_EXCEEDED) or when a linked signal aborts (with its
 * reason), released by `end()` as soon as the call is over.
 *
 * Why not `AbortSignal.any([linked, AbortSignal.timeout(ms)])`: the timeout stays armed, holding
 * its signal, for the whole timeout after a call that took milliseconds, and the composite signal
 * is held by the linked one until a full GC finalizes it. At a thousand calls a second that is
 * tens of thousands of live timers and signals, promoted to the old generation, and a
 * mark-compact every few seconds — the p99 of a pipeline (issue 22; the SLO bench).
 */
export interface CallDeadline {
  readonly signal: AbortSignal;
  /** Clears the timer and the link; the signal no longer aborts. Idempotent. */
  end(): void;
}

/** Starts a deadline of `timeoutMs` ms for a call described by `what` (for the timeout's message). */
export function createCallDeadline(timeoutMs: number, what: string, linked?: AbortSignal): CallDeadline {
  const controller = new AbortController();
  const onLinked = (): void => controller.abort(linked?.reason);
  if (linked?.aborted) controller.abort(linked.reason);
  else linked?.addEventListener('abort', onLinked, { once: true });
  const timer = setTimeout(
    () => controller.abort(new DOMException(`${what} took longer than its timeout (${timeoutMs} ms)`, 'TimeoutError')),
    timeoutMs,
  );
  // Like AbortSignal.timeout(): a pending deadline does not keep the process alive.
  timer.unref();
  return {
    signal: controller.signal,
    end() {
      clearTimeout(timer);
      linked?.removeEventListener('abort', onLinked);
    },
  };
}
