/**
 * Errors as the CLI prints them: one line that says what went wrong and what to do. Node's own
 * errors that users meet (a flag parseArgs does not know, a port in use) are translated here;
 * everything else is an InflowError already.
 */
import { InflowError } from '../errors.ts';

/** Longest message printed without --verbose, characters. */
const MAX_LINE = 600;

/** The port of an EADDRINUSE failure (Node's error, or the gRPC server's wrapped one), if it is one. */
function addressInUse(error: unknown): string | undefined {
  const e = error as { code?: unknown; message?: unknown; port?: unknown; address?: unknown };
  const message = typeof e?.message === 'string' ? e.message : '';
  if (e?.code !== 'EADDRINUSE' && !message.includes('EADDRINUSE')) return undefined;
  if (typeof e.port === 'number') return `${typeof e.address === 'string' ? e.address : ''}:${e.port}`;
  return /address already in use ([^\s\]]+)/.exec(message)?.[1] ?? 'the port';
}

/** Turns anything thrown into the InflowError a command reports (see {@link oneLine}). */
export function cliError(error: unknown): InflowError {
  const code = (error as { code?: unknown })?.code;
  if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
    // Node's text goes on about positionals after "--": its first sentence is what matters.
    const first = ((error as Error).message.split('\n')[0] ?? '').split(/\.\s/)[0] ?? '';
    return new InflowError('INVALID_ARGUMENT', `${first}; run the command with --help for its options`, {
      cause: error,
    });
  }
  const where = addressInUse(error);
  if (where !== undefined) {
    return new InflowError(
      'FAILED_PRECONDITION',
      `${where} is already in use; stop what listens there, or choose other ports (--rest-port / --grpc-port; 0 picks a free one)`,
      { cause: error },
    );
  }
  return InflowError.from(error);
}

/**
 * The message on one line (multi-line messages joined with "; ", but a line that introduces a
 * list with ":" is followed by a space: "…options: url …; timeoutMs …"), bounded in length.
 */
export function oneLine(error: InflowError): string {
  const lines = error.message
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const text = lines.reduce((joined, line, i) => (i === 0 ? line : `${joined}${joined.endsWith(':') ? ' ' : '; '}${line}`), '');
  return text.length <= MAX_LINE ? text : `${text.slice(0, MAX_LINE)}… (--verbose prints all of it)`;
}
