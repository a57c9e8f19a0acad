/** Finding a Java 17+ runtime for the local Kafka broker (Kafka 4.x needs 17 on the broker). */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { InflowError } from '../../errors.ts';

const run = promisify(execFile);

/** Minimum Java major version for a Kafka 4.x broker. */
export const MIN_JAVA = 17;

const NEED_JAVA = `Java ${MIN_JAVA}+ is needed to run a local Kafka broker (e.g. apt-get install openjdk-17-jre-headless); or set KAFKA_BOOTSTRAP_SERVERS to use an existing cluster`;

/** Parses the major version from `java -version` output ("17.0.15", "1.8.0_392" → 8). */
export function parseJavaMajor(output: string): number | undefined {
  const match = /version "(\d+)(?:\.(\d+))?/.exec(output);
  if (!match) return undefined;
  const first = Number(match[1]);
  return first === 1 ? Number(match[2]) : first;
}

/** The java executable: $JAVA_HOME/bin/java when set, else `java` on PATH. */
export function javaExecutable(env: NodeJS.ProcessEnv = process.env): string {
  return env.JAVA_HOME ? join(env.JAVA_HOME, 'bin', 'java') : 'java';
}

/** Resolves to the java executable after checking its version; JAVA_MISSING otherwise. */
export async function findJava(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const java = javaExecutable(env);
  let output: string;
  try {
    const { stdout, stderr } = await run(java, ['-version'], { timeout: 15_000, env });
    output = `${stderr}${stdout}`;
  } catch (error) {
    throw new InflowError('JAVA_MISSING', `${NEED_JAVA} (cannot run "${java}": ${(error as Error).message.split('\n')[0]})`, {
      cause: error,
    });
  }
  const major = parseJavaMajor(output);
  if (major === undefined || major < MIN_JAVA) {
    throw new InflowError(
      'JAVA_MISSING',
      `${NEED_JAVA} (found ${major === undefined ? 'an unknown version' : `Java ${major}`} at "${java}")`,
    );
  }
  return java;
}
