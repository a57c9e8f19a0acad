/**
 * The runtime's logger. Servables log rarely (which execution provider a session got, worker
 * restarts), so one process-wide logger is enough. A library is silent unless its caller asks:
 * until the host sets one with {@link setRuntimeLogger} (the CLI does), nothing is written.
 */
import { type Logger, silentLogger } from '../observability/logger.ts';

let current: Logger = silentLogger;

/** The logger servables write to. */
export function runtimeLogger(): Logger {
  return current;
}

/** Makes servables log to `logger` (e.g. a child of the server's root logger). */
export function setRuntimeLogger(logger: Logger): void {
  current = logger;
}
