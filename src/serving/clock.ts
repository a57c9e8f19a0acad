/**
 * Time source of the serving layer, in microseconds, injectable so that tests drive batching
 * delays by hand instead of sleeping.
 */

/** Opaque handle of a pending timer (Node's Timeout object, a number in browsers, anything a test clock uses). */
export type TimerHandle = object | number;

/** A monotonic clock with one-shot timers; all times are microseconds (µs). */
export interface Clock {
  /** Monotonic time now, in µs (arbitrary origin). */
  now(): number;
  /** Calls `fn` once after `micros` µs; the returned handle cancels it. */
  setTimer(fn: () => void, micros: number): TimerHandle;
  /** Cancels a timer; a handle that already fired or was cleared is ignored. */
  clearTimer(handle: TimerHandle): void;
}

/**
 * The process clock: `performance.now()` for time and `setTimeout` for timers. Node's timers
 * have millisecond resolution, so a delay under 1 ms fires after about 1 ms (a delay of 0 fires
 * on the next timer phase).
 */
export const systemClock: Clock = {
  now: () => performance.now() * 1000,
  // Negative delays (a due time already past) fire at once; Node warns on negative timeouts.
  setTimer: (fn, micros) => setTimeout(fn, Math.max(0, micros / 1000)),
  clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** A clock that only moves when told to (tests). */
export interface ManualClock extends Clock {
  /** Moves time forward by `micros` µs and fires the timers that fall due, in due order. */
  advance(micros: number): void;
  /** Timers not yet fired or cleared. */
  readonly pendingTimers: number;
}

interface ManualTimer {
  due: number;
  seq: number;
  fn: () => void;
}

/** Creates a {@link ManualClock} starting at `start` µs. */
export function createManualClock(start = 0): ManualClock {
  let now = start;
  let seq = 0;
  const timers = new Set<ManualTimer>();
  return {
    now: () => now,
    setTimer(fn, micros) {
      const timer: ManualTimer = { due: now + Math.max(0, micros), seq: seq++, fn };
      timers.add(timer);
      return timer;
    },
    clearTimer(handle) {
      timers.delete(handle as ManualTimer);
    },
    advance(micros) {
      const target = now + micros;
      for (;;) {
        // Fire one at a time: a timer's callback may set or clear others.
        let next: ManualTimer | undefined;
        for (const t of timers) if (t.due <= target && (!next || t.due < next.due || (t.due === next.due && t.seq < next.seq))) next = t;
        if (!next) break;
        timers.delete(next);
        now = Math.max(now, next.due);
        next.fn();
      }
      now = target;
    },
    get pendingTimers() {
      return timers.size;
    },
  };
}
