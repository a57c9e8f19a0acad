/**
 * Structured logging (pino). One root logger per process; components take a child with
 * `component` set. Level from `INFLOW_LOG_LEVEL` (default `info`; tests use `silent`).
 */
import { type Logger, pino } from 'pino';

export type { Logger } from 'pino';

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  level?: string;
  name?: string;
}

/** Creates a JSON logger writing to stderr (stdout stays free for command output). */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      name: options.name ?? 'inflow',
      level: options.level ?? process.env.INFLOW_LOG_LEVEL ?? 'info',
    },
    pino.destination({ fd: 2, sync: false }),
  );
}

/** A logger that drops everything, for libraries used without one. */
export const silentLogger: Logger = pino({ level: 'silent' });
