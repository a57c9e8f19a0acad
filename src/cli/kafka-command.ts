/** `inflow kafka up|down|restart|status`: the project's local single-node Kafka broker. */
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InflowError } from '../errors.ts';
import {
  type BrokerState,
  brokerHome,
  clearBrokerState,
  isAlive,
  readBrokerState,
  stopPid,
  writeBrokerState,
} from '../kafka/broker/broker-state.ts';
import { existingBroker, startLocalBroker } from '../kafka/broker/local-broker.ts';
import { onlyWith, parsePort, servicePrinter, serviceMain } from './detached-service.ts';

export const kafkaHelp = `inflow kafka up|down|restart|status [options]

Runs Apache Kafka 4.x (single node, KRaft) on a loopback port, fetched once from Maven
Central with Maven (the first time takes about a minute; progress is shown); needs Java 17+.
State and data live in ~/.cache/inflow/broker (INFLOW_BROKER_HOME or INFLOW_CACHE_DIR move it).

Actions:
  up                  start it (a free port unless --port); prints the bootstrap address.
                      After "down --keep-data" it resumes that data: same address, topics, offsets.
  down                stop it (SIGTERM, then SIGKILL after 15 s) and delete its data
  restart             stop it and start it again with its data, on the same address
  status              running? where? exit code 0 when running, 1 when not

Options:
  --port <n>          up: listen on this port instead of a free one
  --data <dir>        up: keep the data in this folder; a folder that holds a broker is resumed
  --keep-data         down: keep the data for the next "up" (a broker outage you can end)
  --json              one JSON object instead of text

Examples:
  inflow kafka up --port 9092
  inflow kafka status
  inflow kafka down --keep-data && sleep 60 && inflow kafka up   # a 60 s outage, nothing lost
  inflow kafka restart
  inflow kafka down`;

/** Flags of `inflow kafka`. */
export interface KafkaFlags {
  readonly json?: boolean | undefined;
  readonly port?: string | undefined;
  readonly data?: string | undefined;
  readonly keepData?: boolean | undefined;
}

/** Prints download progress at most every few seconds (a line per file would be ~80 lines). */
function progressPrinter(out: (line: string) => void): (p: { files: number; bytes: number }) => void {
  let last = 0;
  return ({ files, bytes }) => {
    const now = Date.now();
    if (now - last < 3000) return;
    last = now;
    out(`  … ${files} files, ${(bytes / 1e6).toFixed(1)} MB downloaded`);
  };
}

/** Runs `inflow kafka <action>`; answers the exit code (status: 1 when no broker runs). */
export async function kafkaCommand(action: string | undefined, flags: KafkaFlags, out: (line: string) => void): Promise<number> {
  const home = brokerHome();
  const state = await readBrokerState(home);
  const running = state !== undefined && !state.stopped && isAlive(state.pid);
  const print = servicePrinter(flags.json, out);
  const port = parsePort(flags.port);
  onlyWith('--port', port !== undefined, action, 'up');
  onlyWith('--data', flags.data !== undefined, action, 'up');
  onlyWith('--keep-data', flags.keepData === true, action, 'down');

  const up = async (dataDir: string | undefined): Promise<number> => {
    await mkdir(home, { recursive: true });
    const dir = dataDir ?? join(home, `data-${Date.now()}`);
    const resuming = existsSync(dir) && existingBroker(dir) !== undefined;
    const broker = await startLocalBroker({
      dataDir: dir,
      detached: true,
      ...(port === undefined ? {} : { port }),
      onFetch: (lib) => out(`fetching the Kafka broker jars from Maven Central into ${lib} (once, about a minute)…`),
      onProgress: progressPrinter(out),
    });
    const next: BrokerState = {
      pid: broker.pid,
      bootstrapServers: broker.bootstrapServers,
      dataDir: broker.dataDir,
      logFile: broker.logFile,
      startedAt: new Date().toISOString(),
    };
    await writeBrokerState(home, next);
    print(
      { running: true, resumed: resuming, ...next },
      `Kafka running at ${broker.bootstrapServers} (pid ${broker.pid})${resuming ? `, resumed the data in ${broker.dataDir}` : ''}; export KAFKA_BOOTSTRAP_SERVERS=${broker.bootstrapServers}`,
    );
    return 0;
  };

  switch (action) {
    case 'up': {
      if (running) {
        print({ running: true, ...state }, `Kafka already running at ${state.bootstrapServers} (pid ${state.pid})`);
        return 0;
      }
      // Data kept by "down --keep-data" is resumed unless another folder is named.
      return up(flags.data !== undefined ? resolve(flags.data) : state?.stopped ? state.dataDir : undefined);
    }
    case 'down': {
      if (!state || state.stopped) {
        print({ running: false }, `Kafka is not running${state?.stopped ? ` (its data is kept in ${state.dataDir})` : ''}`);
        return 0;
      }
      const how = await stopPid(state.pid);
      if (flags.keepData) {
        await writeBrokerState(home, { ...state, stopped: true });
        print(
          { running: false, result: how, dataDir: state.dataDir },
          `Kafka ${how} (pid ${state.pid}); data kept in ${state.dataDir}: "inflow kafka up" resumes it at ${state.bootstrapServers}`,
        );
        return 0;
      }
      await clearBrokerState(home);
      // Only folders this command made under its home are deleted; one named by --data is the user's.
      if (state.dataDir.startsWith(join(home, 'data-'))) await rm(state.dataDir, { recursive: true, force: true });
      print({ running: false, result: how }, `Kafka ${how} (pid ${state.pid})`);
      return 0;
    }
    case 'restart': {
      if (!state) throw new InflowError('FAILED_PRECONDITION', 'no local Kafka broker to restart; start one with: inflow kafka up');
      if (running) await stopPid(state.pid);
      return up(state.dataDir);
    }
    case 'status':
      if (running) {
        print({ running: true, ...state }, `Kafka running at ${state.bootstrapServers} (pid ${state.pid}), log ${state.logFile}`);
        return 0;
      }
      print(
        { running: false, ...(state?.stopped ? { dataDir: state.dataDir } : {}) },
        state?.stopped
          ? `Kafka is not running; its data is kept in ${state.dataDir} (resume it with: inflow kafka up)`
          : 'Kafka is not running (start it with: inflow kafka up)',
      );
      return 1;
    default:
      throw new InflowError('INVALID_ARGUMENT', `unknown action "${action ?? ''}" for inflow kafka; expected up, down, restart or status`);
  }
}

/** `inflow kafka …` with its own flags (main.ts hands it the arguments after "kafka"). */
export function kafkaMain(
  argv: string[],
  out: (line: string) => void,
  err: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<number> {
  return serviceMain(argv, out, err, {
    help: kafkaHelp,
    options: { port: { type: 'string' }, data: { type: 'string' }, 'keep-data': { type: 'boolean' } },
    run: ({ action, values }) =>
      kafkaCommand(
        action,
        {
          json: values.json === true,
          port: values.port as string | undefined,
          data: values.data as string | undefined,
          keepData: values['keep-data'] === true,
        },
        out,
      ),
  });
}
