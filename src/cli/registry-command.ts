/** `inflow registry up|down|status`: the project's local Schema Registry (Apicurio, Confluent-compatible API). */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { InflowError } from '../errors.ts';
import { cacheRoot } from '../kafka/broker/broker-jars.ts';
import { isAlive, stopPid } from '../kafka/broker/broker-state.ts';
import { APICURIO_VERSION, startLocalRegistry } from '../kafka/schema-registry/local-registry.ts';
import { parsePort } from './kafka-command.ts';
import { exitCodeFor } from './main.ts';

export const registryHelp = `inflow registry up|down|status [options]

Runs Apicurio Registry ${APICURIO_VERSION} (Apache-2.0) on a loopback port: a Schema Registry with the
Confluent-compatible API (/apis/ccompat/v7) that Avro, Protobuf and JSON Schema topics need.
Fetched once from Maven Central with Maven (about 104 MB); needs Java 17+, like "inflow kafka".
Its schemas are kept in memory: every "up" starts an empty registry.
State and log live in ~/.cache/inflow/registry (INFLOW_REGISTRY_HOME or INFLOW_CACHE_DIR move it).

Actions:
  up                  start it (a free port unless --port); prints the URL for schemaRegistry.url
  down                stop it (SIGTERM, then SIGKILL after 15 s)
  status              running? where? exit code 0 when running, 1 when not

Options:
  --port <n>          up: listen on this port instead of a free one
  --json              one JSON object instead of text

Examples:
  inflow registry up --port 8081
  export SCHEMA_REGISTRY_URL=$(inflow registry status --json | jq -r .url)
  inflow registry down`;

/** What `up` leaves for `status` and `down` (another process). */
export interface RegistryState {
  pid: number;
  url: string;
  logFile: string;
  startedAt: string;
}

/** Folder of the detached registry's state and log: $INFLOW_REGISTRY_HOME, else <cache>/registry. */
export function registryHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.INFLOW_REGISTRY_HOME ?? join(cacheRoot(env), 'registry');
}

const stateFile = (home: string): string => join(home, 'registry.json');

async function readState(home: string): Promise<RegistryState | undefined> {
  if (!existsSync(stateFile(home))) return undefined;
  return JSON.parse(await readFile(stateFile(home), 'utf8')) as RegistryState;
}

/** Runs `inflow registry <action>`; answers the exit code (status: 1 when no registry runs). */
export async function registryCommand(
  action: string | undefined,
  flags: { readonly json?: boolean | undefined; readonly port?: string | undefined },
  out: (line: string) => void,
): Promise<number> {
  const home = registryHome();
  const state = await readState(home);
  const running = state !== undefined && isAlive(state.pid);
  const print = (value: Record<string, unknown>, text: string): void => out(flags.json ? JSON.stringify(value) : text);
  const port = parsePort(flags.port);
  if (port !== undefined && action !== 'up') throw new InflowError('INVALID_ARGUMENT', '--port goes with "up" only');

  switch (action) {
    case 'up': {
      if (running) {
        print({ running: true, ...state }, `Schema Registry already running at ${state.url} (pid ${state.pid})`);
        return 0;
      }
      await mkdir(home, { recursive: true });
      const registry = await startLocalRegistry({
        detached: true,
        logDir: home,
        ...(port === undefined ? {} : { port }),
        onFetch: (dir) => out(`fetching Apicurio Registry ${APICURIO_VERSION} from Maven Central into ${dir} (once, about 104 MB)…`),
      });
      const next: RegistryState = { pid: registry.pid, url: registry.url, logFile: registry.logFile, startedAt: new Date().toISOString() };
      await writeFile(stateFile(home), `${JSON.stringify(next, null, 2)}\n`);
      print(
        { running: true, startMs: registry.startMs, ...next },
        `Schema Registry running at ${registry.url} (pid ${registry.pid}, ready in ${(registry.startMs / 1000).toFixed(1)} s); export SCHEMA_REGISTRY_URL=${registry.url}`,
      );
      return 0;
    }
    case 'down': {
      if (!running) {
        await rm(stateFile(home), { force: true });
        print({ running: false }, 'Schema Registry is not running');
        return 0;
      }
      const how = await stopPid(state.pid);
      await rm(stateFile(home), { force: true });
      print({ running: false, result: how }, `Schema Registry ${how} (pid ${state.pid})`);
      return 0;
    }
    case 'status':
      if (running) {
        print({ running: true, ...state }, `Schema Registry running at ${state.url} (pid ${state.pid}), log ${state.logFile}`);
        return 0;
      }
      print({ running: false }, 'Schema Registry is not running (start it with: inflow registry up)');
      return 1;
    default:
      throw new InflowError('INVALID_ARGUMENT', `unknown action "${action ?? ''}" for inflow registry; expected up, down or status`);
  }
}

/** `inflow registry …` with its own flags (main.ts hands it the arguments after "registry"). */
export async function registryMain(
  argv: string[],
  out: (line: string) => void,
  err: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: { help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' }, verbose: { type: 'boolean' }, port: { type: 'string' } },
    });
    if (values.help) {
      out(registryHelp);
      return 0;
    }
    if (positionals.length > 1) throw new InflowError('INVALID_ARGUMENT', `one action at a time, got "${positionals.join(' ')}"`);
    return await registryCommand(positionals[0], { json: values.json, port: values.port }, out);
  } catch (error) {
    const e = InflowError.from(error, (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ? 'INVALID_ARGUMENT' : 'INTERNAL');
    err(
      argv.includes('--json')
        ? JSON.stringify({ error: { code: e.code, message: e.message } })
        : `inflow: ${e.message}${argv.includes('--verbose') && e.stack ? `\n${e.stack}` : ''}`,
    );
    return exitCodeFor(e);
  }
}
