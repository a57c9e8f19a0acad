/**
 * The state file of a detached local broker (`inflow kafka up`), so `status` and `down` find it
 * from another process.
 */
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheRoot } from './broker-jars.ts';

export interface BrokerState {
  pid: number;
  bootstrapServers: string;
  dataDir: string;
  logFile: string;
  startedAt: string;
  /** Stopped by `inflow kafka down --keep-data`: not running, data kept for the next `up`. */
  stopped?: boolean;
}

/** Folder of the detached broker's data and state: $INFLOW_BROKER_HOME, else <cache>/broker. */
export function brokerHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.INFLOW_BROKER_HOME ?? join(cacheRoot(env), 'broker');
}

const stateFile = (home: string): string => join(home, 'broker.json');

export async function writeBrokerState(home: string, state: BrokerState): Promise<void> {
  await writeFile(stateFile(home), `${JSON.stringify(state, null, 2)}\n`);
}

export async function readBrokerState(home: string): Promise<BrokerState | undefined> {
  if (!existsSync(stateFile(home))) return undefined;
  return JSON.parse(await readFile(stateFile(home), 'utf8')) as BrokerState;
}

export async function clearBrokerState(home: string): Promise<void> {
  await rm(stateFile(home), { force: true });
}

/** Whether a process with this pid is alive (signal 0 probes without signalling). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after `timeoutMs`; resolves once the process is gone. */
export async function stopPid(pid: number, timeoutMs = 15_000): Promise<'stopped' | 'killed' | 'not running'> {
  if (!isAlive(pid)) return 'not running';
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return 'stopped';
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  process.kill(pid, 'SIGKILL');
  return 'killed';
}
