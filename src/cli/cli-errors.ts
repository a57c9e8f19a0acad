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

/** Exit code per error code: 2 for caller mistakes, 3 for unavailable dependencies, 1 otherwise. */
export function exitCodeFor(error: InflowError): number {
  if (error.httpStatus >= 400 && error.httpStatus < 500) return 2;
  if (error.code === 'JAVA_MISSING' || error.code === 'DOWNLOAD_FAILED' || error.retriable) return 3;
  return 1;
}

/**
 * A file or folder the user named that cannot be used (Node's fs errors carry `code` and `path`):
 * what is wrong with which path, as a caller error, instead of Node's "ENOENT: no such file or
 * directory, open 'x'" reported as an internal one.
 */
function fileError(error: unknown): InflowError | undefined {
  const e = error as { code?: unknown; path?: unknown };
  if (typeof e?.path !== 'string') return undefined;
  const path = e.path;
  switch (e.code) {
    case 'ENOENT':
      return new InflowError('NOT_FOUND', `${path}: no such file or folder; check the path`, { cause: error });
    case 'EACCES':
    case 'EPERM':
      return new InflowError('PERMISSION_DENIED', `${path}: permission denied; check its owner and mode`, { cause: error });
    case 'EISDIR':
      return new InflowError('INVALID_ARGUMENT', `${path} is a folder; expected a file`, { cause: error });
    case 'ENOTDIR':
      return new InflowError('INVALID_ARGUMENT', `${path}: a part of the path is a file; expected a folder`, { cause: error });
    case 'EEXIST':
      return new InflowError('ALREADY_EXISTS', `${path} already exists; remove it or choose another path`, { cause: error });
    default:
      return undefined;
  }
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
  return fileError(error) ?? InflowError.from(error);
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

/**
 * Writes a command's error to stderr: one line of text, or under `--json` one JSON object
 * (`{"error": {"code", "message", "exitCode"}}`) so a script reading the output can parse it too.
 * `--verbose` adds the stack (to the text, or as `stack`).
 */
export function reportError(
  e: InflowError,
  argv: readonly string[],
  exitCode: number,
  err: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): void {
  const verbose = argv.includes('--verbose') && e.stack !== undefined;
  if (argv.includes('--json')) {
    const error = { code: e.code, message: oneLine(e), exitCode, ...(verbose ? { stack: e.stack } : {}) };
    err(JSON.stringify({ error }));
  } else {
    err(`inflow: ${oneLine(e)}${verbose ? `\n${e.stack}` : ''}`);
  }
}

/**
 * What a command's catch does: the error as the CLI reports it ({@link cliError}), printed by
 * {@link reportError} (to `err`, stderr by default); answers the exit code.
 */
export function commandFailed(error: unknown, argv: readonly string[], err?: (line: string) => void): number {
  const e = cliError(error);
  const code = exitCodeFor(e);
  reportError(e, argv, code, err);
  return code;
}

/**
 * `--rate -5` as parseArgs sees it is an option "-5" ("argument is ambiguous"): a negative number
 * after a flag that takes a value is joined to it (`--rate=-5`), so the command's own check says
 * what is wrong with the value.
 */
export function joinNegativeValues(argv: readonly string[], takesValue: (flag: string) => boolean): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const next = argv[i + 1];
    if (arg.startsWith('--') && !arg.includes('=') && next !== undefined && /^-\d/.test(next) && takesValue(arg.slice(2))) {
      out.push(`${arg}=${next}`);
      i += 1;
    } else out.push(arg);
  }
  return out;
}
