/**
 * The project's own single-node Kafka 4.x broker (KRaft, broker + controller in one JVM) on
 * free loopback ports, for tests, benchmarks, the demo and `inflow kafka up`. Facts:
 * shared/reference/kafka-broker.md. Every wait is bounded; stop is SIGTERM, then SIGKILL.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { InflowError } from '../../errors.ts';
import { ensureKafkaJars, type EnsureJarsOptions } from './broker-jars.ts';
import { findJava } from './java.ts';

const execFileAsync = promisify(execFile);
const LOG4J = join(dirname(fileURLToPath(import.meta.url)), 'log4j2.properties');

/** Options of {@link startLocalBroker}. Times are milliseconds. */
export interface LocalBrokerOptions extends EnsureJarsOptions {
  /**
   * Data and log folder; a fresh temp folder (removed on stop) by default. A folder that holds
   * a broker already (formatted storage and its server.properties, e.g. after
   * `stop({ keepData: true })`) is resumed: same cluster, same ports, same topics and offsets.
   */
  dataDir?: string;
  /** Client port; a free one by default (a resumed folder keeps its own unless this is given). */
  port?: number;
  /** JVM heap, MiB. Default 512. */
  heapMb?: number;
  /** Bound on start (format + JVM start + ready), ms. Default 90 s. */
  startTimeoutMs?: number;
  /** Bound on a graceful stop before SIGKILL, ms. Default 15 s. */
  stopTimeoutMs?: number;
  /** Extra server.properties lines. */
  properties?: Record<string, string>;
  /**
   * Clients must log in with SASL/PLAIN as one of these users (name → password) on the client
   * port (SASL_PLAINTEXT); for tests of authentication failures.
   */
  saslUsers?: Record<string, string>;
  /** Keep the JVM running after this process exits (for `inflow kafka up`). */
  detached?: boolean;
}

/** A running local broker. */
export interface LocalBroker {
  readonly bootstrapServers: string;
  readonly pid: number;
  readonly dataDir: string;
  readonly logFile: string;
  /** Time from spawn to accepting connections, ms. */
  readonly startMs: number;
  /** Whether this start resumed an existing data folder instead of formatting a new one. */
  readonly resumed: boolean;
  /**
   * SIGTERM, then SIGKILL after the bound; removes a temp data folder unless `keepData` (then
   * `startLocalBroker({ dataDir })` starts the same broker again, with its data).
   */
  stop(options?: { keepData?: boolean }): Promise<void>;
}

/** The client and controller ports of a data folder's server.properties, when it holds a formatted broker. */
export function existingBroker(dataDir: string): { port: number; controllerPort: number; properties: string } | undefined {
  const config = join(dataDir, 'server.properties');
  if (!existsSync(config) || !existsSync(join(dataDir, 'data', 'meta.properties'))) return undefined;
  const properties = readFileSync(config, 'utf8');
  const listeners = /^listeners=(?:SASL_)?PLAINTEXT:\/\/[^:]+:(\d+),CONTROLLER:\/\/[^:]+:(\d+)$/m.exec(properties);
  if (!listeners) return undefined;
  return { port: Number(listeners[1]), controllerPort: Number(listeners[2]), properties };
}

/** A free TCP port on 127.0.0.1 (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Resolves true once something accepts TCP connections on the port. */
function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** server.properties for one node on loopback; exactly-once needs the RF-1 transaction log settings. */
export function serverProperties(port: number, controllerPort: number, logDirs: string, extra: Record<string, string> = {}): string {
  const props: Record<string, string> = {
    'process.roles': 'broker,controller',
    'node.id': '1',
    'controller.quorum.bootstrap.servers': `127.0.0.1:${controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    'inter.broker.listener.name': 'PLAINTEXT',
    'controller.listener.names': 'CONTROLLER',
    'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    'log.dirs': logDirs,
    'num.partitions': '1',
    'offsets.topic.replication.factor': '1',
    'offsets.topic.num.partitions': '5',
    'transaction.state.log.replication.factor': '1',
    'transaction.state.log.min.isr': '1',
    'transaction.state.log.num.partitions': '5',
    'share.coordinator.state.topic.replication.factor': '1',
    'share.coordinator.state.topic.min.isr': '1',
    'group.initial.rebalance.delay.ms': '0',
    // Topics are created on purpose, never by a typo in a producer.
    'auto.create.topics.enable': 'false',
    ...extra,
  };
  return `${Object.entries(props)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')}\n`;
}

/** server.properties lines for SASL/PLAIN on the client listener (the broker logs in to itself too). */
function saslProperties(port: number, controllerPort: number, users: Record<string, string>): Record<string, string> {
  const self = randomBytes(12).toString('hex');
  const quote = (v: string): string => JSON.stringify(v);
  const accounts = Object.entries({ 'inflow-broker': self, ...users })
    .map(([name, password]) => `user_${name}=${quote(password)}`)
    .join(' ');
  return {
    listeners: `SASL_PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    'advertised.listeners': `SASL_PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    'inter.broker.listener.name': 'SASL_PLAINTEXT',
    'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT',
    'sasl.enabled.mechanisms': 'PLAIN',
    'sasl.mechanism.inter.broker.protocol': 'PLAIN',
    'listener.name.sasl_plaintext.plain.sasl.jaas.config': `org.apache.kafka.common.security.plain.PlainLoginModule required username="inflow-broker" password=${quote(self)} ${accounts};`,
  };
}

/**
 * A KRaft cluster id: 16 random bytes, base64url without padding — never starting with "-",
 * which the storage tool's argument parser would take for an option (Kafka's Uuid.randomUuid
 * redraws those too).
 */
export function randomClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** Last lines of the broker's log, for error messages. */
function logTail(logFile: string, lines = 15): string {
  try {
    return readFileSync(logFile, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no broker log)';
  }
}

/** Fetches the jars if needed, formats storage, starts the broker and waits until it accepts connections. */
export async function startLocalBroker(options: LocalBrokerOptions = {}): Promise<LocalBroker> {
  const java = await findJava();
  const lib = await ensureKafkaJars(options);
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'inflow-kafka-')));
  await mkdir(dataDir, { recursive: true });
  const config = join(dataDir, 'server.properties');
  const logFile = join(dataDir, 'broker.log');
  const classpath = `${lib}/*`;
  const deadline = Date.now() + (options.startTimeoutMs ?? 90_000);
  const previous = existingBroker(dataDir);
  // KRaft records the controller's endpoint in the formatted storage (--standalone): a resumed
  // folder keeps its controller port; the client port may move when asked to.
  const port = options.port ?? previous?.port ?? (await freePort());
  const controllerPort = previous?.controllerPort ?? (await freePort());
  await writeFile(
    config,
    serverProperties(port, controllerPort, join(dataDir, 'data'), {
      ...(options.saslUsers ? saslProperties(port, controllerPort, options.saslUsers) : {}),
      ...options.properties,
    }),
  );
  if (!previous) {
    const clusterId = randomClusterId();
    try {
      await execFileAsync(
        java,
        ['-cp', classpath, 'kafka.tools.StorageTool', 'format', '--config', config, '--cluster-id', clusterId, '--standalone'],
        { timeout: Math.max(1000, deadline - Date.now()) },
      );
    } catch (error) {
      throw new InflowError('UNAVAILABLE', `formatting Kafka storage in ${dataDir} failed: ${(error as Error).message}`, { cause: error });
    }
  }

  const out = openSync(join(dataDir, 'stdout.log'), 'a');
  const started = Date.now();
  const child: ChildProcess = spawn(
    java,
    [
      `-Xms${options.heapMb ?? 512}m`,
      `-Xmx${options.heapMb ?? 512}m`,
      '-XX:+UseG1GC',
      `-Dlog4j2.configurationFile=${LOG4J}`,
      `-Dinflow.kafka.logFile=${logFile}`,
      '-cp',
      classpath,
      'kafka.Kafka',
      config,
    ],
    { stdio: ['ignore', out, out], detached: options.detached ?? false },
  );
  closeSync(out);
  if (options.detached) child.unref();
  let exited: number | null | undefined;
  const exitPromise = new Promise<void>((resolve) => child.once('exit', (code) => ((exited = code), resolve())));

  const stop = async (stopOptions: { keepData?: boolean } = {}): Promise<void> => {
    if (exited === undefined && child.pid !== undefined) {
      child.kill('SIGTERM');
      const killTimer = setTimeout(() => child.kill('SIGKILL'), options.stopTimeoutMs ?? 15_000);
      await exitPromise;
      clearTimeout(killTimer);
    }
    if (ownDir && !options.detached && !stopOptions.keepData) await rm(dataDir, { recursive: true, force: true });
  };

  while (!(await canConnect(port))) {
    if (exited !== undefined) {
      throw new InflowError(
        'UNAVAILABLE',
        `Kafka broker exited (code ${exited}) before it accepted connections; its log:\n${logTail(logFile)}`,
      );
    }
    if (Date.now() > deadline) {
      await stop();
      throw new InflowError(
        'DEADLINE_EXCEEDED',
        `Kafka broker did not accept connections on 127.0.0.1:${port} in time; its log:\n${logTail(logFile)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    bootstrapServers: `127.0.0.1:${port}`,
    pid: child.pid ?? -1,
    dataDir,
    logFile,
    startMs: Date.now() - started,
    resumed: previous !== undefined,
    stop,
  };
}
