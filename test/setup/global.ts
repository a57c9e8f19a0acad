/**
 * Global setup of `npm test` (node --test-global-setup): one real Kafka broker for the whole
 * run, unless KAFKA_BOOTSTRAP_SERVERS names an existing cluster; always stopped at the end.
 * Without Java the integration suites are skipped with a loud message on a laptop, and the
 * run fails under CI=true.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalBroker, type LocalBroker } from '../../src/kafka/broker/local-broker.ts';

let broker: LocalBroker | undefined;
let runTmp: string | undefined;

export async function globalSetup(): Promise<void> {
  // One temp folder for the whole run (test repositories, broker data, sockets), removed at the
  // end: every test file inherits TMPDIR, so os.tmpdir() points inside it.
  runTmp = mkdtempSync(join(tmpdir(), 'inflow-test-run-'));
  process.env.TMPDIR = runTmp;
  if (process.env.KAFKA_BOOTSTRAP_SERVERS) {
    process.stderr.write(`inflow tests: using the Kafka cluster at ${process.env.KAFKA_BOOTSTRAP_SERVERS}\n`);
    return;
  }
  const started = Date.now();
  try {
    broker = await startLocalBroker({
      onFetch: (lib) => process.stderr.write(`inflow tests: fetching Kafka broker jars into ${lib} (once)\n`),
    });
  } catch (error) {
    const message = (error as Error).message;
    if (process.env.CI === 'true') {
      throw new Error(`inflow tests: a Kafka broker is required under CI=true and could not be started: ${message}`, { cause: error });
    }
    process.stderr.write(
      `\n${'!'.repeat(78)}\ninflow tests: NO KAFKA BROKER — integration suites against Apache Kafka are SKIPPED.\n${message}\n${'!'.repeat(78)}\n\n`,
    );
    return;
  }
  process.env.KAFKA_BOOTSTRAP_SERVERS = broker.bootstrapServers;
  process.stderr.write(
    `inflow tests: Kafka broker at ${broker.bootstrapServers} (pid ${broker.pid}) ready in ${Date.now() - started} ms (JVM start ${broker.startMs} ms)\n`,
  );
}

export async function globalTeardown(): Promise<void> {
  if (broker) {
    const started = Date.now();
    await broker.stop();
    process.stderr.write(`inflow tests: Kafka broker stopped in ${Date.now() - started} ms\n`);
  }
  if (runTmp) rmSync(runTmp, { recursive: true, force: true });
}
