/**
 * The dashboard's history: a bounded ring of snapshots taken every `intervalMs` (default 5 s,
 * 120 kept: the last 10 minutes) from the moment the server starts, so a page opened now — or
 * reloaded — charts the last minutes at once instead of starting empty. Memory is bounded by
 * `capacity` snapshots (a few KB each); the timer does not keep the process alive.
 */
import type { DashboardSnapshot } from './dashboard-state.ts';
import { resetEventLoopDelay } from './dashboard-state.ts';

/** Options of {@link createDashboardHistory}. */
export interface DashboardHistoryOptions {
  /** Takes one snapshot. */
  readonly sample: () => Promise<DashboardSnapshot>;
  /** Between two samples, ms. Default 5000. */
  readonly intervalMs?: number;
  /** Snapshots kept. Default 120. */
  readonly capacity?: number;
  /** Injected timers (tests). */
  readonly setInterval?: (fn: () => void, ms: number) => { unref?(): unknown };
  readonly clearInterval?: (handle: unknown) => void;
}

/** The ring; {@link DashboardHistory.stop} ends the sampling. */
export interface DashboardHistory {
  /** The kept snapshots, oldest first. */
  snapshots(): readonly DashboardSnapshot[];
  /** Takes a sample now (the timer calls this). */
  sampleNow(): Promise<void>;
  stop(): void;
}

export function createDashboardHistory(options: DashboardHistoryOptions): DashboardHistory {
  const capacity = options.capacity ?? 120;
  const ring: DashboardSnapshot[] = [];
  let sampling = false;
  async function sampleNow(): Promise<void> {
    if (sampling) return; // a slow snapshot never piles up behind itself
    sampling = true;
    try {
      ring.push(await options.sample());
      if (ring.length > capacity) ring.splice(0, ring.length - capacity);
      resetEventLoopDelay();
    } catch {
      // A failed sample is a gap in the history, not a server error.
    } finally {
      sampling = false;
    }
  }
  const every = options.setInterval ?? setInterval;
  const clear = options.clearInterval ?? ((h: unknown) => clearInterval(h as NodeJS.Timeout));
  const handle = every(() => void sampleNow(), options.intervalMs ?? 5000);
  handle.unref?.();
  void sampleNow();
  return {
    snapshots: () => ring.slice(),
    sampleNow,
    stop: () => clear(handle),
  };
}
