/**
 * A local Schema Registry for tests, benchmarks and the demo: Apicurio Registry 3 (Apache-2.0),
 * whose Confluent-compatible API lives at `/apis/ccompat/v7`. Its ready-to-run server package
 * comes from Maven Central once (./pom.xml), like the broker's jars, and runs on the same
 * Java 17 the broker needs. Storage is in-memory (H2): every start is an empty registry.
 * Every wait is bounded; stop is SIGTERM, then SIGKILL.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InflowError } from '../../errors.ts';
import { cacheRoot } from '../broker/broker-jars.ts';
import { findJava } from '../broker/java.ts';
import { freePort } from '../broker/local-broker.ts';

/** Apicurio Registry version the pom fetches (keep in sync with ./pom.xml's apicurio.version). */
export const APICURIO_VERSION = '3.0.9';

/** Path of the Confluent-compatible API on an Apicurio server. */
export const CCOMPAT_PATH = '/apis/ccompat/v7';

const POM = join(dirname(fileURLToPath(import.meta.url)), 'pom.xml');
const RUNNER = `apicurio-registry-app-${APICURIO_VERSION}-runner.jar`;

/** Options of {@link ensureRegistryApp}. */
export interface EnsureRegistryOptions {
  cacheDir?: string;
  /** Bound on the Maven run, ms. Default 10 minutes. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Told when a download starts (it is skipped when cached). */
  onFetch?: (dir: string) => void;
  /** Maven executable. Default `mvn` on PATH. */
  mvn?: string;
}

/**
 * Returns the folder holding Apicurio's runner jar, fetching and unpacking the server package
 * (~104 MB) first when not cached. The folder is marked complete only after Maven succeeded.
 */
export async function ensureRegistryApp(options: EnsureRegistryOptions = {}): Promise<string> {
  const dir = join(options.cacheDir ?? cacheRoot(), `apicurio-registry-${APICURIO_VERSION}`);
  const marker = join(dir, '.complete');
  if (existsSync(marker)) return dir;
  options.onFetch?.(dir);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const args = ['-B', '-q', '-f', POM, 'dependency:unpack', `-Dinflow.registry.dir=${dir}`];
  await new Promise<void>((resolve, reject) => {
    execFile(
      options.mvn ?? 'mvn',
      args,
      { timeout: options.timeoutMs ?? 600_000, signal: options.signal, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (!error) return resolve();
        const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
        const tail = `${stdout}${stderr}`.trim().split('\n').slice(-8).join('\n');
        reject(
          new InflowError(
            'DOWNLOAD_FAILED',
            missing
              ? 'Maven (mvn) is needed to fetch Apicurio Registry from Maven Central (e.g. apt-get install maven); or set SCHEMA_REGISTRY_URL to use an existing registry'
              : `fetching Apicurio Registry ${APICURIO_VERSION} from Maven Central failed (check network access to the Maven registry, or set SCHEMA_REGISTRY_URL):\n${tail}`,
            { cause: error },
          ),
        );
      },
    );
  });
  if (!(await readdir(dir)).includes(RUNNER)) {
    throw new InflowError('DOWNLOAD_FAILED', `Maven finished but ${dir} holds no ${RUNNER}`);
  }
  await writeFile(marker, `${new Date().toISOString()}\n`);
  return dir;
}

/** Options of {@link startLocalRegistry}. Times are milliseconds. */
export interface LocalRegistryOptions extends EnsureRegistryOptions {
  /** HTTP port on 127.0.0.1; a free one by default. */
  port?: number;
  /** JVM heap, MiB. Default 192 (an empty in-memory registry needs little). */
  heapMb?: number;
  /** Bound on start (JVM start + ready), ms. Default 90 s. */
  startTimeoutMs?: number;
  /** Bound on a graceful stop before SIGKILL, ms. Default 10 s. */
  stopTimeoutMs?: number;
  /** Folder for its log; a fresh temp folder (removed on stop) by default. */
  logDir?: string;
  /** Keep the JVM running after this process exits (for tooling that starts it for later use). */
  detached?: boolean;
}

/** A running local registry. */
export interface LocalRegistry {
  /** Base URL of the Confluent-compatible API, e.g. `http://127.0.0.1:40123/apis/ccompat/v7`. */
  readonly url: string;
  readonly pid: number;
  readonly logFile: string;
  /** Time from spawn to answering its API, ms. */
  readonly startMs: number;
  /** SIGTERM, then SIGKILL after the bound; removes a temp log folder. */
  stop(): Promise<void>;
}

/** Resolves with the HTTP status of GET url (0 when nothing answers). */
function probe(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'GET', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('error', () => resolve(0));
    req.once('timeout', () => req.destroy());
    req.end();
  });
}

function logTail(logFile: string, lines = 15): string {
  try {
    return readFileSync(logFile, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no registry log)';
  }
}

/** Fetches the server package if needed, starts it and waits until its ccompat API answers. */
export async function startLocalRegistry(options: LocalRegistryOptions = {}): Promise<LocalRegistry> {
  const java = await findJava();
  const appDir = await ensureRegistryApp(options);
  const ownDir = options.logDir === undefined;
  const logDir = options.logDir ?? (await mkdtemp(join(tmpdir(), 'inflow-registry-')));
  await mkdir(logDir, { recursive: true });
  const logFile = join(logDir, 'registry.log');
  const port = options.port ?? (await freePort());
  const deadline = Date.now() + (options.startTimeoutMs ?? 90_000);
  const out = openSync(logFile, 'a');
  const started = Date.now();
  // Serial GC and C1 only: the registry of a test run is small and short-lived; this starts in
  // ~3.5 s at ~190 MB instead of ~5 s at ~280 MB (measured on a loaded 2-core machine).
  const child: ChildProcess = spawn(
    java,
    [
      `-Xmx${options.heapMb ?? 192}m`,
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      // The default bind is 0.0.0.0:8080: a test registry listens on loopback only.
      '-Dquarkus.http.host=127.0.0.1',
      `-Dquarkus.http.port=${port}`,
      '-Dquarkus.log.console.color=false',
      '-jar',
      join(appDir, RUNNER),
    ],
    { cwd: appDir, stdio: ['ignore', out, out], detached: options.detached ?? false },
  );
  closeSync(out);
  if (options.detached) child.unref();
  let exited: number | null | undefined;
  const exitPromise = new Promise<void>((resolve) => child.once('exit', (code) => ((exited = code), resolve())));

  const stop = async (): Promise<void> => {
    if (exited === undefined && child.pid !== undefined) {
      child.kill('SIGTERM');
      const killTimer = setTimeout(() => child.kill('SIGKILL'), options.stopTimeoutMs ?? 10_000);
      await exitPromise;
      clearTimeout(killTimer);
    }
    if (ownDir && !options.detached) await rm(logDir, { recursive: true, force: true });
  };

  const url = `http://127.0.0.1:${port}${CCOMPAT_PATH}`;
  while ((await probe(`${url}/subjects`)) !== 200) {
    if (exited !== undefined) {
      throw new InflowError('UNAVAILABLE', `Schema Registry exited (code ${exited}) before it answered; its log:\n${logTail(logFile)}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new InflowError('DEADLINE_EXCEEDED', `Schema Registry did not answer on ${url} in time; its log:\n${logTail(logFile)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { url, pid: child.pid ?? -1, logFile, startMs: Date.now() - started, stop };
}
