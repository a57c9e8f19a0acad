/**
 * What the edge integration tests share: a real Mosquitto (Debian's `mosquitto`) on a free
 * loopback port with a generated config, a Kafka broker the test can stop and start again with
 * its data, device publishers and MQTT collectors, the digits reference, and readers of Kafka
 * topics that de-duplicate by the `inflow-message-id` header.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { ensureKafkaJars } from '../../src/kafka/broker/broker-jars.ts';
import { findJava } from '../../src/kafka/broker/java.ts';
import { freePort, type LocalBroker, startLocalBroker } from '../../src/kafka/broker/local-broker.ts';
import type { ConsumedRecord, KafkaClient } from '../../src/kafka/index.ts';
import { uniqueName, waitFor } from '../streams/fixtures/streams-fixtures.ts';

export const ROOT = join(import.meta.dirname, '..', '..');
export const MODELS = join(ROOT, 'models');

// Shared with the streams tests: one definition of each.
export { uniqueName, waitFor };

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/** A running Mosquitto. */
export interface Mosquitto {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** Whether Debian's mosquitto is installed. */
export function mosquittoPath(): string | undefined {
  for (const p of ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto']) if (existsSync(p)) return p;
  const which = spawnSync('sh', ['-c', 'command -v mosquitto'], { encoding: 'utf8' });
  return which.status === 0 ? which.stdout.trim() : undefined;
}

/**
 * Why the edge suites are skipped, or false when they can run. Without mosquitto: skipped with a
 * loud message, or an error under CI=true (CI must install it: `apt-get install -y mosquitto`).
 */
export function edgeSkipReason(kafka: boolean): string | false {
  if (!mosquittoPath()) {
    const message = 'mosquitto is not installed (apt-get install -y mosquitto): the edge agent suites need a real MQTT broker';
    if (process.env.CI === 'true') throw new Error(`inflow tests: ${message}`);
    process.stderr.write(`\n${'!'.repeat(78)}\ninflow tests: ${message} — SKIPPED\n${'!'.repeat(78)}\n\n`);
    return message;
  }
  if (kafka && !process.env.KAFKA_BOOTSTRAP_SERVERS) return 'no Kafka broker';
  return false;
}

/** What a test's Mosquitto requires: users (a password_file made with mosquitto_passwd) and/or TLS (PEM files; clientCa = mutual TLS). */
export interface MosquittoSecurity {
  readonly users?: Readonly<Record<string, string>>;
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly clientCaFile?: string };
}

/** Starts Mosquitto on a free loopback port: persistence on, deep queues for persistent sessions. */
export async function startMosquitto(security: MosquittoSecurity = {}): Promise<Mosquitto> {
  const bin = mosquittoPath();
  if (!bin) throw new Error('mosquitto is not installed (apt-get install -y mosquitto)');
  const dir = await mkdtemp(join(tmpdir(), 'inflow-mosquitto-'));
  const port = await freePort();
  const users = Object.entries(security.users ?? {});
  for (const [i, [user, password]] of users.entries()) {
    const made = spawnSync('mosquitto_passwd', [...(i === 0 ? ['-c'] : []), '-b', join(dir, 'passwd'), user, password], {
      encoding: 'utf8',
    });
    if (made.status !== 0) throw new Error(`mosquitto_passwd failed: ${made.stderr}`);
  }
  const tls = security.tls;
  const conf = [
    `listener ${port} 127.0.0.1`,
    ...(users.length > 0 ? ['allow_anonymous false', `password_file ${join(dir, 'passwd')}`] : ['allow_anonymous true']),
    ...(tls ? [`certfile ${tls.certFile}`, `keyfile ${tls.keyFile}`] : []),
    ...(tls?.clientCaFile ? [`cafile ${tls.clientCaFile}`, 'require_certificate true'] : []),
    'persistence true',
    `persistence_location ${dir}/`,
    // Persistent sessions of the agent hold what arrives while it is down (default 1000 would drop).
    'max_queued_messages 100000',
    'max_inflight_messages 100',
    'log_dest stdout',
    // Started as root, mosquitto 2 drops to the "mosquitto" user, which cannot write the temp folder.
    ...(process.getuid?.() === 0 ? ['user root'] : []),
  ].join('\n');
  await writeFile(join(dir, 'mosquitto.conf'), `${conf}\n`);
  const log = openSync(join(dir, 'broker.log'), 'a');
  const child: ChildProcess = spawn(bin, ['-c', join(dir, 'mosquitto.conf')], { stdio: ['ignore', log, log] });
  closeSync(log);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  await waitFor('mosquitto to accept connections', async () => ((await canConnect(port)) ? true : exited ? false : undefined), {
    timeoutMs: 10_000,
  }).then((ok) => {
    if (!ok) throw new Error(`mosquitto exited at start: ${readFileSync(join(dir, 'broker.log'), 'utf8').slice(-2000)}`);
  });
  return {
    url: `${tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`,
    port,
    async stop() {
      if (!exited) child.kill('SIGTERM');
      await exit;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A Kafka broker the test owns: stop() keeps its data, start() brings it back on the same port. */
export interface RestartableKafka {
  readonly bootstrapServers: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops and removes the data. */
  dispose(): Promise<void>;
}

/**
 * The project's broker (startLocalBroker) on a data folder of the test's; a restart runs the same
 * JVM command on the same server.properties (startLocalBroker would format the folder again).
 */
export async function startRestartableKafka(): Promise<RestartableKafka> {
  const dataDir = await mkdtemp(join(tmpdir(), 'inflow-edge-kafka-'));
  const port = await freePort();
  let first: LocalBroker | undefined = await startLocalBroker({ dataDir, port, heapMb: 256 });
  let jvm: ChildProcess | undefined;
  const [java, lib] = await Promise.all([findJava(), ensureKafkaJars()]);
  const log4j = join(ROOT, 'src', 'kafka', 'broker', 'log4j2.properties');
  const stopJvm = async (): Promise<void> => {
    if (first) {
      await first.stop();
      first = undefined;
    }
    if (jvm && jvm.exitCode === null) {
      const exited = new Promise((resolve) => jvm?.once('exit', resolve));
      jvm.kill('SIGTERM');
      await exited;
    }
    jvm = undefined;
  };
  return {
    bootstrapServers: `127.0.0.1:${port}`,
    stop: stopJvm,
    async start() {
      const out = openSync(join(dataDir, 'stdout.log'), 'a');
      jvm = spawn(
        java,
        [
          '-Xms256m',
          '-Xmx256m',
          '-XX:+UseG1GC',
          `-Dlog4j2.configurationFile=${log4j}`,
          `-Dinflow.kafka.logFile=${join(dataDir, 'broker.log')}`,
          '-cp',
          `${lib}/*`,
          'kafka.Kafka',
          join(dataDir, 'server.properties'),
        ],
        { stdio: ['ignore', out, out] },
      );
      closeSync(out);
      await waitFor('the restarted Kafka broker to accept connections', async () => ((await canConnect(port)) ? true : undefined), {
        timeoutMs: 60_000,
        everyMs: 100,
      });
    },
    async dispose() {
      await stopJvm();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The digits reference (models/samples/digits-mlp.json): 8 rows of 64 pixels, labels and probabilities. */
export interface DigitsReference {
  readonly pixels: number[][];
  readonly labels: number[];
  readonly probabilities: number[][];
}

export async function digitsReference(): Promise<DigitsReference> {
  const sample = JSON.parse(await readFile(join(MODELS, 'samples', 'digits-mlp.json'), 'utf8')) as {
    inputs: { input: { shape: [number, number]; data: number[] } };
    outputs: { label: { data: number[] }; probabilities: { data: number[] } };
  };
  const [rows, width] = sample.inputs.input.shape;
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  return {
    pixels: range(rows).map((r) => sample.inputs.input.data.slice(r * width, (r + 1) * width)),
    labels: sample.outputs.label.data,
    probabilities: range(rows).map((r) => sample.outputs.probabilities.data.slice(r * 10, (r + 1) * 10)),
  };
}

/** A fresh repository folder holding digits-mlp version 1 (the agent's model sync writes into it). */
export async function digitsRepository(): Promise<string> {
  const repo = await mkdtemp(join(tmpdir(), 'inflow-edge-repo-'));
  await mkdir(join(repo, 'digits-mlp'), { recursive: true });
  await cp(join(MODELS, 'repository', 'digits-mlp'), join(repo, 'digits-mlp'), { recursive: true });
  return repo;
}

/** One device message: sample `seq % 8`, device `dev-<seq % devices>`. */
export function deviceMessage(ref: DigitsReference, seq: number, devices = 10): { topic: string; payload: string } {
  const row = ref.pixels[seq % ref.pixels.length] ?? [];
  return { topic: `devices/dev-${seq % devices}/digits`, payload: JSON.stringify({ seq, pixels: row }) };
}

/** An MQTT client (clean session) of the test, connected. */
export async function mqttClient(url: string, clientId = uniqueName('test')): Promise<MqttClient> {
  return mqtt.connectAsync(url, { clientId, clean: true, reconnectPeriod: 200 });
}

/** Publishes device messages `from .. from+count-1` at QoS 1 (each acknowledged by the broker). */
export async function publishDevices(client: MqttClient, ref: DigitsReference, from: number, count: number): Promise<void> {
  const pending: Promise<unknown>[] = [];
  for (let seq = from; seq < from + count; seq++) {
    const m = deviceMessage(ref, seq);
    pending.push(client.publishAsync(m.topic, m.payload, { qos: 1 }));
  }
  await Promise.all(pending);
}

/** Collects JSON messages of a subscription; `until(n)` resolves once n arrived. */
export async function collect(
  client: MqttClient,
  filter: string,
): Promise<{ messages: { topic: string; value: Record<string, unknown> }[]; until(n: number, timeoutMs?: number): Promise<void> }> {
  const messages: { topic: string; value: Record<string, unknown> }[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const pattern = new RegExp(`^${filter.replaceAll('+', '[^/]+').replace(/#$/, '.*')}$`);
  client.on('message', (topic, payload) => {
    if (!pattern.test(topic)) return;
    messages.push({ topic, value: JSON.parse(payload.toString()) as Record<string, unknown> });
    for (const w of [...waiters]) {
      if (messages.length < w.n) continue;
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  await client.subscribeAsync(filter, { qos: 1 });
  return {
    messages,
    until: (n, timeoutMs = 30_000) =>
      messages.length >= n
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const timer = setTimeout(
              () => reject(new Error(`only ${messages.length} of ${n} messages on "${filter}" in ${timeoutMs} ms`)),
              timeoutMs,
            );
            waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
          }),
  };
}

export async function createTopics(client: KafkaClient, topics: readonly string[], partitions = 3): Promise<void> {
  const admin = client.admin();
  try {
    await admin.createTopics(topics.map((topic) => ({ topic, partitions })));
  } finally {
    await admin.close();
  }
}

/** Every record of `topics` until `done(records)` holds (or the deadline), read by a fresh group from the start. */
export async function readUntil(
  client: KafkaClient,
  topics: readonly string[],
  done: (records: readonly ConsumedRecord[]) => boolean,
  timeoutMs = 30_000,
): Promise<ConsumedRecord[]> {
  const consumer = client.consumer({ groupId: uniqueName('edge-reader'), autoOffsetReset: 'earliest' });
  const out: ConsumedRecord[] = [];
  const deadline = Date.now() + timeoutMs;
  try {
    await consumer.subscribe([...topics]);
    while (!done(out) && Date.now() < deadline) out.push(...(await consumer.poll({ timeoutMs: 500 })));
  } finally {
    await consumer.close();
  }
  return out;
}

export function header(record: ConsumedRecord, name: string): string | undefined {
  return record.headers.find(([k]) => k === name)?.[1].toString();
}

/** Distinct message ids of `records` on `topic`, and how many records repeated one. */
export function dedupe(records: readonly ConsumedRecord[], topic: string): { ids: Set<string>; duplicates: number } {
  const ids = new Set<string>();
  let duplicates = 0;
  for (const r of records) {
    if (r.topic !== topic) continue;
    const id = header(r, 'inflow-message-id') ?? '';
    if (ids.has(id)) duplicates++;
    ids.add(id);
  }
  return { ids, duplicates };
}

/** The ids `<device>:<seq>` of device messages `from .. to-1`. */
export function expectedIds(from: number, to: number, devices = 10): string[] {
  return Array.from({ length: to - from }, (_, i) => `dev-${(from + i) % devices}:${from + i}`);
}

/** The digits agent of the tests (an object for validateEdgeConfig); `kafka` undefined = local only. */
export function agentConfig(o: {
  mqttUrl: string;
  repository: string;
  outbox: string;
  kafka?: string | undefined;
  topics?: { readings: string; predictions: string; errors: string; models?: string };
  agentId?: string;
  metricsPort?: number;
  extra?: Record<string, unknown>;
}): Record<string, unknown> {
  return {
    agentId: o.agentId ?? uniqueName('agent'),
    mqtt: { url: o.mqttUrl, subscriptions: [{ topic: 'devices/+/digits', qos: 1 }], reconnectMs: 200 },
    device: { topicLevel: 1 },
    messageIdField: 'seq',
    model: {
      repository: o.repository,
      name: 'digits-mlp',
      ...(o.topics?.models ? { modelsTopic: o.topics.models, syncStartTimeoutMs: 20_000 } : {}),
      inputs: { input: { field: 'pixels', shape: [64] } },
      outputs: { label: { tensor: 'label' }, probabilities: { tensor: 'probabilities' } },
    },
    publish: {
      predictions: { topic: 'predictions/{device}' },
      errors: { topic: 'edge/errors/{device}' },
      alerts: [{ name: 'four', topic: 'alerts/{device}', when: { field: 'label', in: [4] } }],
    },
    ...(o.kafka
      ? {
          // Short timeouts so an unreachable broker is noticed in seconds, not the 30 s default.
          kafka: { bootstrapServers: [o.kafka], clientId: 'edge-it', requestTimeoutMs: 3000, retries: 1 },
          forward: {
            readings: o.topics?.readings,
            predictions: o.topics?.predictions,
            errors: o.topics?.errors,
            retryMinMs: 100,
            retryMaxMs: 1000,
          },
        }
      : {}),
    outbox: { path: o.outbox },
    ...(o.metricsPort === undefined ? {} : { metrics: { port: o.metricsPort } }),
    ...o.extra,
  };
}
