/**
 * What `inflow kafka` and `inflow registry` share: each runs a local JVM service detached from
 * the command (`up`), stops it (`down`) and reports it (`status`, exit code 1 when it does not
 * run), keeping its pid and address in a JSON state file for the next command. The commands'
 * own parts — what `up` starts, Kafka's kept data and `restart` — stay in their files.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';
import { InflowError } from '../errors.ts';
import { isAlive } from '../kafka/broker/broker-state.ts';
import { commandFailed } from './cli-errors.ts';

/** The value of `--port` (undefined when absent); INVALID_ARGUMENT unless 1-65535. */
export function parsePort(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InflowError('INVALID_ARGUMENT', `--port must be a port number 1-65535, got "${value}"`);
  }
  return port;
}

/** A flag given with an action it does not go with: INVALID_ARGUMENT naming the action it goes with. */
export function onlyWith(flag: string, given: boolean, action: string | undefined, wanted: string): void {
  if (given && action !== wanted) throw new InflowError('INVALID_ARGUMENT', `${flag} goes with "${wanted}" only`);
}

/** Prints one result: a JSON object under --json, else the text line. */
export type ServicePrinter = (value: Record<string, unknown>, text: string) => void;

export function servicePrinter(json: boolean | undefined, out: (line: string) => void): ServicePrinter {
  return (value, text) => out(json ? JSON.stringify(value) : text);
}

/** The JSON state file a detached service's `up` leaves for later commands (another process). */
export interface ServiceStateFile<S extends { readonly pid: number }> {
  read(): Promise<S | undefined>;
  write(state: S): Promise<void>;
  clear(): Promise<void>;
  /** The state when its process is alive, else undefined. */
  running(): Promise<S | undefined>;
}

export function serviceStateFile<S extends { readonly pid: number }>(file: string): ServiceStateFile<S> {
  const read = async (): Promise<S | undefined> => (existsSync(file) ? (JSON.parse(await readFile(file, 'utf8')) as S) : undefined);
  return {
    read,
    async write(state) {
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, `${JSON.stringify(state, null, 2)}\n`);
    },
    clear: () => rm(file, { force: true }),
    async running() {
      const state = await read();
      return state !== undefined && isAlive(state.pid) ? state : undefined;
    },
  };
}

/** The parsed command line of a service command: its action and flags. */
export interface ServiceArgs {
  readonly action: string | undefined;
  readonly values: Record<string, string | boolean | undefined>;
}

/**
 * `inflow <service> …` (main.ts hands it the arguments after the service's name): parses the
 * flags (--help, --json, --verbose and the command's own), allows one action, runs it and
 * answers its exit code; errors are reported as every command reports them (./cli-errors.ts).
 */
export async function serviceMain(
  argv: string[],
  out: (line: string) => void,
  err: (line: string) => void,
  spec: { readonly help: string; readonly options: ParseArgsOptionsConfig; readonly run: (args: ServiceArgs) => Promise<number> },
): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: { help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' }, verbose: { type: 'boolean' }, ...spec.options },
    });
    if (values.help) {
      out(spec.help);
      return 0;
    }
    if (positionals.length > 1) throw new InflowError('INVALID_ARGUMENT', `one action at a time, got "${positionals.join(' ')}"`);
    return await spec.run({ action: positionals[0], values });
  } catch (error) {
    return commandFailed(error, argv, err);
  }
}
