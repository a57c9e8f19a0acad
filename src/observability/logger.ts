/**
 * Structured logging (pino). One root logger per process; components take a child with
 * `component` set. Level from `INFLOW_LOG_LEVEL` (default `info`; tests use `silent`). With
 * tracing on (./tracing.ts), lines logged inside a span carry `trace_id` and `span_id`.
 */
import { type DestinationStream, type Logger, pino } from 'pino';
import { traceFields } from './tracing.ts';

export type { Logger } from 'pino';

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  level?: string;
  name?: string;
  /** Where lines go; default stderr. */
  destination?: DestinationStream;
}

/** Creates a JSON logger writing to stderr (stdout stays free for command output). */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      name: options.name ?? 'inflow',
      level: options.level ?? process.env.INFLOW_LOG_LEVEL ?? 'info',
      // With tracing on, a line logged inside a span carries its trace_id and span_id (OpenTelemetry's log correlation fields).
      mixin: traceFields,
    },
    options.destination ?? pino.destination({ fd: 2, sync: false }),
  );
}

/** A logger that drops everything, for libraries used without one. */
export const silentLogger: Logger = pino({ level: 'silent' });
