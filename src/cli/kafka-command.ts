/** `inflow kafka up|down|status`: the project's local single-node Kafka broker. */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { InflowError } from '../errors.ts';
import { brokerHome, clearBrokerState, isAlive, readBrokerState, stopPid, writeBrokerState } from '../kafka/broker/broker-state.ts';
import { startLocalBroker } from '../kafka/broker/local-broker.ts';

export const kafkaHelp = `inflow kafka up|down|status [--json]

Runs Apache Kafka 4.x (single node, KRaft) on a free loopback port, fetched once from
Maven Central with Maven; needs Java 17+. Data lives in ~/.cache/inflow/broker.

Examples:
  inflow kafka up        # start it; prints the bootstrap address
  inflow kafka status    # running? where?
  inflow kafka down      # stop it (SIGTERM, then SIGKILL after 15 s)`;

export async function kafkaCommand(action: string | undefined, json: boolean, out: (line: string) => void): Promise<void> {
  const home = brokerHome();
  const state = await readBrokerState(home);
  const running = state !== undefined && isAlive(state.pid);
  const print = (value: Record<string, unknown>, text: string): void => out(json ? JSON.stringify(value) : text);
  switch (action) {
    case 'up': {
      if (running) return print({ running: true, ...state }, `Kafka already running at ${state.bootstrapServers} (pid ${state.pid})`);
      await mkdir(home, { recursive: true });
      const broker = await startLocalBroker({
        dataDir: join(home, `data-${Date.now()}`),
        detached: true,
        onFetch: (lib) => out(`fetching Kafka broker jars into ${lib} (once)…`),
      });
      const next = {
        pid: broker.pid,
        bootstrapServers: broker.bootstrapServers,
        dataDir: broker.dataDir,
        logFile: broker.logFile,
        startedAt: new Date().toISOString(),
      };
      await writeBrokerState(home, next);
      return print(
        { running: true, ...next },
        `Kafka running at ${broker.bootstrapServers} (pid ${broker.pid}); export KAFKA_BOOTSTRAP_SERVERS=${broker.bootstrapServers}`,
      );
    }
    case 'down': {
      if (!state) return print({ running: false }, 'Kafka is not running');
      const how = await stopPid(state.pid);
      await clearBrokerState(home);
      return print({ running: false, result: how }, `Kafka ${how} (pid ${state.pid})`);
    }
    case 'status':
      return running
        ? print({ running: true, ...state }, `Kafka running at ${state.bootstrapServers} (pid ${state.pid}), log ${state.logFile}`)
        : print({ running: false }, 'Kafka is not running (start it with: inflow kafka up)');
    default:
      throw new InflowError('INVALID_ARGUMENT', `unknown action "${action ?? ''}" for inflow kafka; expected up, down or status`);
  }
}
