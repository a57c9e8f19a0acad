/**
 * The runtime's logger. Servables log rarely (which execution provider a session got, worker
 * restarts), so one process-wide child is enough; the host sets it once with
 * {@link setRuntimeLogger}, and until then a root logger named `inflow.runtime` is created on first use.
 */
import { createLogger, type Logger } from '../observability/logger.ts';

let current: Logger | undefined;

/** The logger servables write to. */
export function runtimeLogger(): Logger {
  current ??= createLogger({ name: 'inflow.runtime' });
  return current;
}

/** Makes servables log to `logger` (e.g. a child of the server's root logger). */
export function setRuntimeLogger(logger: Logger): void {
  current = logger;
}
