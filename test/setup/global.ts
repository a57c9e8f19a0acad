/**
 * Global setup of `npm test` (node --test-global-setup): one real Kafka broker and one real
 * Schema Registry (Apicurio, Confluent-compatible API) for the whole run, started side by
 * side, unless KAFKA_BOOTSTRAP_SERVERS / SCHEMA_REGISTRY_URL name existing ones; always
 * stopped at the end; and one real OpenTelemetry Collector (./otel-collector.ts) for the tracing
 * tests. Without Java (or Go, for the collector) the integration suites are skipped with a loud message on a
 * laptop, and the run fails under CI=true.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalBroker, type LocalBroker } from '../../src/kafka/broker/local-broker.ts';
import { type LocalRegistry, startLocalRegistry } from '../../src/kafka/schema-registry/local-registry.ts';
import { type LocalCollector, startLocalCollector } from './otel-collector.ts';

let broker: LocalBroker | undefined;
let registry: LocalRegistry | undefined;
let collector: LocalCollector | undefined;
let runTmp: string | undefined;

export async function globalSetup(): Promise<void> {
  // One temp folder for the whole run (test repositories, broker data, sockets), removed at the
  // end: every test file inherits TMPDIR, so os.tmpdir() points inside it.
  runTmp = mkdtempSync(join(tmpdir(), 'inflow-test-run-'));
  process.env.TMPDIR = runTmp;
  // Two JVMs starting at once share the cores, but the run waits for the slower one only.
  const results = await Promise.allSettled([setUpBroker(), setUpRegistry(), setUpCollector(runTmp)]);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) {
    await globalTeardown(); // the one that did start must not outlive the failed run
    throw failed.reason;
  }
}

function skipOrFail(what: string, error: unknown): void {
  const message = (error as Error).message;
  if (process.env.CI === 'true') {
    throw new Error(`inflow tests: ${what} is required under CI=true and could not be started: ${message}`, { cause: error });
  }
  process.stderr.write(
    `\n${'!'.repeat(78)}\ninflow tests: NO ${what.toUpperCase()} — the suites that need it are SKIPPED.\n${message}\n${'!'.repeat(78)}\n\n`,
  );
}

async function setUpRegistry(): Promise<void> {
  if (process.env.SCHEMA_REGISTRY_URL) {
    process.stderr.write(`inflow tests: using the Schema Registry at ${process.env.SCHEMA_REGISTRY_URL}\n`);
    return;
  }
  const started = Date.now();
  try {
    registry = await startLocalRegistry({
      onFetch: (dir) => process.stderr.write(`inflow tests: fetching Apicurio Registry into ${dir} (once)\n`),
    });
  } catch (error) {
    skipOrFail('a Schema Registry', error);
    return;
  }
  process.env.SCHEMA_REGISTRY_URL = registry.url;
  process.stderr.write(
    `inflow tests: Schema Registry at ${registry.url} (pid ${registry.pid}) ready in ${Date.now() - started} ms (JVM start ${registry.startMs} ms)\n`,
  );
}

/** The OpenTelemetry Collector of the tracing tests (INFLOW_OTELCOL_ENDPOINT, INFLOW_OTELCOL_FILE). */
async function setUpCollector(dir: string): Promise<void> {
  if (process.env.INFLOW_OTELCOL_ENDPOINT && process.env.INFLOW_OTELCOL_FILE) {
    process.stderr.write(`inflow tests: using the OpenTelemetry Collector at ${process.env.INFLOW_OTELCOL_ENDPOINT}\n`);
    return;
  }
  const started = Date.now();
  try {
    collector = await startLocalCollector(dir);
  } catch (error) {
    skipOrFail('OpenTelemetry Collector', error);
    return;
  }
  process.env.INFLOW_OTELCOL_ENDPOINT = collector.endpoint;
  process.env.INFLOW_OTELCOL_FILE = collector.file;
  process.stderr.write(
    `inflow tests: OpenTelemetry Collector at ${collector.endpoint} (pid ${collector.pid}) ready in ${Date.now() - started} ms\n`,
  );
}

async function setUpBroker(): Promise<void> {
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
    skipOrFail('a Kafka broker', error);
    return;
  }
  process.env.KAFKA_BOOTSTRAP_SERVERS = broker.bootstrapServers;
  process.stderr.write(
    `inflow tests: Kafka broker at ${broker.bootstrapServers} (pid ${broker.pid}) ready in ${Date.now() - started} ms (JVM start ${broker.startMs} ms)\n`,
  );
}

export async function globalTeardown(): Promise<void> {
  if (collector) {
    await collector.stop();
    collector = undefined;
  }
  if (registry) {
    const started = Date.now();
    await registry.stop();
    process.stderr.write(`inflow tests: Schema Registry stopped in ${Date.now() - started} ms\n`);
  }
  if (broker) {
    const started = Date.now();
    await broker.stop();
    process.stderr.write(`inflow tests: Kafka broker stopped in ${Date.now() - started} ms\n`);
  }
  if (runTmp) rmSync(runTmp, { recursive: true, force: true });
}
