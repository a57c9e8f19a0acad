/**
 * `--kafka auto`: every command that reaches Kafka finds the project's local broker, the one
 * `inflow kafka up` started on a free port, instead of a hard-coded address.
 */
import { InflowError } from '../errors.ts';
import { brokerHome, isAlive, readBrokerState } from '../kafka/broker/broker-state.ts';

/** The bootstrap address of the running local broker; a clear error when none runs. */
export async function localBrokerAddress(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const state = await readBrokerState(brokerHome(env));
  // Stopped with --keep-data: it comes back at the same address, and clients wait for it.
  if (state?.stopped) return state.bootstrapServers;
  if (state === undefined || !isAlive(state.pid)) {
    throw new InflowError(
      'KAFKA_UNREACHABLE',
      '--kafka auto: no local Kafka broker is running; start one with "inflow kafka up" (or give --kafka host:port)',
    );
  }
  return state.bootstrapServers;
}

/** `argv` with `--kafka auto` (or `--kafka=auto`) replaced by the local broker's address. */
export async function resolveKafkaAuto(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const at = argv.findIndex((a, i) => a === '--kafka=auto' || (a === '--kafka' && argv[i + 1] === 'auto'));
  if (at < 0) return [...argv];
  const address = await localBrokerAddress(env);
  const rest = argv[at] === '--kafka=auto' ? argv.slice(at + 1) : argv.slice(at + 2);
  return [...argv.slice(0, at), '--kafka', address, ...(await resolveKafkaAuto(rest, env))];
}
