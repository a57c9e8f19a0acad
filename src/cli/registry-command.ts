/** `inflow registry up|down|status`: the project's local Schema Registry (Apicurio, Confluent-compatible API). */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { InflowError } from '../errors.ts';
import { cacheRoot } from '../kafka/broker/broker-jars.ts';
import { stopPid } from '../kafka/broker/broker-state.ts';
import { APICURIO_VERSION, startLocalRegistry } from '../kafka/schema-registry/local-registry.ts';
import { onlyWith, parsePort, serviceMain, serviceStateFile, servicePrinter } from './detached-service.ts';

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

/** Runs `inflow registry <action>`; answers the exit code (status: 1 when no registry runs). */
export async function registryCommand(
  action: string | undefined,
  flags: { readonly json?: boolean | undefined; readonly port?: string | undefined },
  out: (line: string) => void,
): Promise<number> {
  const home = registryHome();
  const stateFile = serviceStateFile<RegistryState>(join(home, 'registry.json'));
  const state = await stateFile.running();
  const print = servicePrinter(flags.json, out);
  const port = parsePort(flags.port);
  onlyWith('--port', port !== undefined, action, 'up');

  switch (action) {
    case 'up': {
      if (state) {
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
      await stateFile.write(next);
      print(
        { running: true, startMs: registry.startMs, ...next },
        `Schema Registry running at ${registry.url} (pid ${registry.pid}, ready in ${(registry.startMs / 1000).toFixed(1)} s); export SCHEMA_REGISTRY_URL=${registry.url}`,
      );
      return 0;
    }
    case 'down': {
      if (!state) {
        await stateFile.clear();
        print({ running: false }, 'Schema Registry is not running');
        return 0;
      }
      const how = await stopPid(state.pid);
      await stateFile.clear();
      print({ running: false, result: how }, `Schema Registry ${how} (pid ${state.pid})`);
      return 0;
    }
    case 'status':
      if (state) {
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
export function registryMain(
  argv: string[],
  out: (line: string) => void,
  err: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<number> {
  return serviceMain(argv, out, err, {
    help: registryHelp,
    options: { port: { type: 'string' } },
    run: ({ action, values }) => registryCommand(action, { json: values.json === true, port: values.port as string | undefined }, out),
  });
}
