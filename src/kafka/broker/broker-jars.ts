/**
 * Fetching the broker's jars from Maven Central once, into a cache folder, with the project's
 * own pom (./pom.xml). Maven's ~/.m2 caches the downloads; our folder caches the copy, marked
 * complete only after Maven succeeded (a killed fetch is redone, never half-used).
 */
import { spawn } from 'node:child_process';
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
  /** Told after each file Maven downloaded: files and bytes so far (the first fetch takes ~a minute). */
  onProgress?: (progress: FetchProgress) => void;
  /** Maven executable. Default `mvn` on PATH. */
  mvn?: string;
}

/** Files and bytes Maven downloaded so far. */
export interface FetchProgress {
  readonly files: number;
  readonly bytes: number;
}

const UNITS: Record<string, number> = { B: 1, kB: 1000, KB: 1000, MB: 1_000_000, GB: 1_000_000_000 };

/**
 * Size of one Maven transfer line, e.g. `Downloaded from central: https://…/x.jar (6.3 MB at 2.1 MB/s)`;
 * undefined for any other line.
 */
export function downloadedBytes(line: string): number | undefined {
  const m = /^(?:\[INFO\] )?Downloaded from [^:]+: \S+ \(([\d.]+) (B|kB|KB|MB|GB)/.exec(line.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * (UNITS[m[2] as string] ?? 1));
}

/** Returns the folder holding every broker jar, fetching them first when not cached. */
export async function ensureKafkaJars(options: EnsureJarsOptions = {}): Promise<string> {
  const lib = join(options.cacheDir ?? cacheRoot(), `kafka-${KAFKA_VERSION}`, 'lib');
  const marker = join(lib, '.complete');
  if (existsSync(marker)) return lib;
  options.onFetch?.(lib);
  await rm(lib, { recursive: true, force: true });
  await mkdir(lib, { recursive: true });
  // Not quiet: Maven's "Downloaded from …" lines are the progress (-B keeps them one per file).
  const args = ['-B', '-f', POM, 'dependency:copy-dependencies', `-Dinflow.kafka.lib=${lib}`];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(options.mvn ?? 'mvn', args, {
      ...(options.signal ? { signal: options.signal } : {}),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Our own bound (spawn's `timeout` keeps its timer when the executable is missing).
    const timer = setTimeout(() => child.kill('SIGTERM'), options.timeoutMs ?? 600_000);
    const tail: string[] = [];
    let files = 0;
    let bytes = 0;
    let partial = '';
    const onText = (chunk: Buffer): void => {
      const text = partial + chunk.toString();
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        tail.push(line);
        if (tail.length > 8) tail.shift();
        const size = downloadedBytes(line);
        if (size === undefined) continue;
        files += 1;
        bytes += size;
        options.onProgress?.({ files, bytes });
      }
    };
    child.stdout.on('data', onText);
    child.stderr.on('data', onText);
    const failed = (error: Error & { code?: string }): void => {
      clearTimeout(timer);
      const missing = error.code === 'ENOENT';
      reject(
        new InflowError(
          'DOWNLOAD_FAILED',
          missing
            ? 'Maven (mvn) is needed to fetch the Kafka broker jars from Maven Central (e.g. apt-get install maven); or set KAFKA_BOOTSTRAP_SERVERS to use an existing cluster'
            : `fetching Kafka ${KAFKA_VERSION} jars from Maven Central failed (check network access to the Maven registry, or set KAFKA_BOOTSTRAP_SERVERS):\n${[...tail, partial].join('\n').trim()}`,
          { cause: error },
        ),
      );
    };
    child.once('error', failed);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else failed(new Error(`mvn exited with ${code ?? signal}`));
    });
  });
  const jars = (await readdir(lib)).filter((f) => f.endsWith('.jar'));
  if (!jars.some((j) => j.startsWith('kafka_2.13-'))) {
    throw new InflowError('DOWNLOAD_FAILED', `Maven finished but ${lib} holds no kafka_2.13 jar`);
  }
  await writeFile(marker, `${new Date().toISOString()}\n`);
  return lib;
}
