/**
 * Fetching the broker's jars from Maven Central once, into a cache folder, with the project's
 * own pom (./pom.xml). Maven's ~/.m2 caches the downloads; our folder caches the copy, marked
 * complete only after Maven succeeded (a killed fetch is redone, never half-used).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InflowError } from '../../errors.ts';

/** Kafka version the pom fetches (keep in sync with ./pom.xml's kafka.version). */
export const KAFKA_VERSION = '4.1.2';

const POM = join(dirname(fileURLToPath(import.meta.url)), 'pom.xml');

/** Cache root: $INFLOW_CACHE_DIR, else $XDG_CACHE_HOME/inflow, else ~/.cache/inflow. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.INFLOW_CACHE_DIR) return env.INFLOW_CACHE_DIR;
  return join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'inflow');
}

/** Options of {@link ensureKafkaJars}. */
export interface EnsureJarsOptions {
  cacheDir?: string;
  /** Bound on the Maven run, ms. Default 10 minutes. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Told when a download starts (it is skipped when cached). */
  onFetch?: (libDir: string) => void;
  /** Maven executable. Default `mvn` on PATH. */
  mvn?: string;
}

/** Returns the folder holding every broker jar, fetching them first when not cached. */
export async function ensureKafkaJars(options: EnsureJarsOptions = {}): Promise<string> {
  const lib = join(options.cacheDir ?? cacheRoot(), `kafka-${KAFKA_VERSION}`, 'lib');
  const marker = join(lib, '.complete');
  if (existsSync(marker)) return lib;
  options.onFetch?.(lib);
  await rm(lib, { recursive: true, force: true });
  await mkdir(lib, { recursive: true });
  const args = ['-B', '-q', '-f', POM, 'dependency:copy-dependencies', `-Dinflow.kafka.lib=${lib}`];
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
              ? 'Maven (mvn) is needed to fetch the Kafka broker jars from Maven Central (e.g. apt-get install maven); or set KAFKA_BOOTSTRAP_SERVERS to use an existing cluster'
              : `fetching Kafka ${KAFKA_VERSION} jars from Maven Central failed (check network access to the Maven registry, or set KAFKA_BOOTSTRAP_SERVERS):\n${tail}`,
            { cause: error },
          ),
        );
      },
    );
  });
  const jars = (await readdir(lib)).filter((f) => f.endsWith('.jar'));
  if (!jars.some((j) => j.startsWith('kafka_2.13-'))) {
    throw new InflowError('DOWNLOAD_FAILED', `Maven finished but ${lib} holds no kafka_2.13 jar`);
  }
  await writeFile(marker, `${new Date().toISOString()}\n`);
  return lib;
}
