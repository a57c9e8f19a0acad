/**
 * The edge agent wired together (`inflow edge`): MQTT in → journal → decode → embedded model →
 * MQTT out (prediction, alerts, errors) → outbox → Kafka, with the model repository fed from the
 * Kafka models topic. Offline first: nothing on the MQTT → model → MQTT path waits for Kafka;
 * Kafka-bound records wait in the durable outbox, and the repository serves what is on disk.
 *
 * Start order: the store (and the journal left by a crash), the model from disk, the models topic
 * (waiting at most `syncStartTimeoutMs`), the forwarder, the replay of journaled messages, MQTT,
 * then the metrics server. Close reverses it: stop taking MQTT messages (unacknowledged ones stay
 * with the broker), let in-flight messages finish (bounded), disconnect, stop forwarding.
 */
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { createModelSync, loadSyncPolicy, type ModelSync, type ModelSyncEvent, registerModelSyncMetrics } from '../delivery/index.ts';
import { createKafkaClient, type KafkaClient } from '../kafka/index.ts';
import { registryClientFromConfig } from '../kafka/schema-registry/registry-from-config.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';
import { createInferenceMetrics } from '../observability/metrics.ts';
import type { PlatformLoader } from '../repository/model-repository.ts';
import { loadServable } from '../runtime/index.ts';
import { createCallDeadline } from '../serving/call-deadline.ts';
import { createLocalInference, type LocalInference } from '../serving/local-inference.ts';
import { createMessageDecoder, createPredictionBuilder } from './device-message.ts';
import type { EdgeConfig } from './edge-config.ts';
import { createEdgeMetrics, type EdgeMetrics, type MetricsServer, startMetricsServer } from './edge-metrics.ts';
import { createEdgeOutputs } from './edge-outputs.ts';
import { forwardEncoder } from './forward-encoder.ts';
import { type EdgeStore, type EdgeStoreStats, openEdgeStore } from './edge-store.ts';
import { createMessageProcessor, type MessageProcessor } from './message-processor.ts';
import { type MqttLink, mqttSecrets, openMqttLink } from './mqtt-link.ts';
import { type OutboxForwarder, startOutboxForwarder } from './outbox-forwarder.ts';

/** What tests (and embedders) inject. */
export interface EdgeAgentDeps {
  /** Used instead of a client made from `config.kafka` (and not closed by the agent). */
  readonly kafkaClient?: KafkaClient;
  /** Loads a model version; src/runtime's `loadServable` by default. */
  readonly load?: PlatformLoader;
  readonly logger?: Logger;
  /** Progress, for tests and status lines. */
  readonly onEvent?: (event: EdgeEvent) => void;
  /** How long close() lets in-flight messages finish, ms. Default 5000. */
  readonly drainTimeoutMs?: number;
}

export type EdgeEvent =
  | { type: 'completed'; messages: number; stored: number }
  | { type: 'forwarded'; count: number }
  | { type: 'model'; event: ModelSyncEvent };

/** What `/healthz` and the status line say. */
export interface EdgeStatus {
  agentId: string;
  mqttConnected: boolean;
  /** undefined: no Kafka configured. */
  kafkaConnected: boolean | undefined;
  /** Whether records encode under the Schema Registry (`forward.formats`); absent without formats. */
  registryConnected?: boolean;
  /** Why forwarding to Kafka fails (e.g. KAFKA_TOPIC_NOT_FOUND with the broker up); absent while it works. */
  forwardError?: { code: string; message: string };
  outbox: EdgeStoreStats;
  inFlight: number;
  model: { name: string; versions: number[] };
}

/** A running agent. */
export interface EdgeAgent {
  readonly metrics: EdgeMetrics;
  /** The metrics server's port, when one is configured. */
  readonly metricsPort: number | undefined;
  readonly inference: LocalInference;
  status(): EdgeStatus;
  close(): Promise<void>;
}

/** Whether an MQTT topic matches a subscription filter (`+` one level, `#` the rest). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

async function versionsOnDisk(repository: string, model: string): Promise<boolean> {
  try {
    return (await readdir(join(repository, model))).some((name) => /^[1-9][0-9]*$/.test(name));
  } catch {
    return false;
  }
}

/** Resolves true once `model` can answer, false after `timeoutMs`. */
async function waitReady(inference: LocalInference, model: string, timeoutMs: number): Promise<boolean> {
  if (await inference.ready(model)) return true;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      off();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    const off = inference.repository.onChange((changed) => {
      if (changed === model) void inference.ready(model).then((ok) => ok && finish(true));
    });
  });
}

/** Starts the agent described by `config` (paths already resolved, see loadEdgeConfig). */
export async function startEdgeAgent(config: EdgeConfig, deps: EdgeAgentDeps = {}): Promise<EdgeAgent> {
  // The parts bind their own `component` to `parts`; binding it here too would repeat the key in
  // every line of theirs (pino concatenates the bindings of nested children).
  const parts = (deps.logger ?? silentLogger).child({ agent: config.agentId });
  const log = parts.child({ component: 'edge' });
  const emit = (event: EdgeEvent): void => deps.onEvent?.(event);
  const registry = new Registry();
  const metrics = createEdgeMetrics(registry);
  const cleanups: (() => Promise<void> | void)[] = [];
  const cleanup = async (): Promise<void> => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch (error) {
        log.warn({ err: (error as Error).message }, 'closing a part of the edge agent failed');
      }
    }
  };

  try {
    const store: EdgeStore = openEdgeStore({ dir: config.outbox.path, ...config.outbox });
    cleanups.push(() => store.close());
    const ownClient = deps.kafkaClient === undefined && config.kafka !== undefined;
    const client: KafkaClient | undefined =
      deps.kafkaClient ?? (config.kafka ? createKafkaClient(config.kafka, { logger: log }) : undefined);
    if (ownClient && client) cleanups.push(() => client.close());

    await mkdir(config.model.repository, { recursive: true });
    const inference = await createLocalInference({
      modelRepository: config.model.repository,
      load: deps.load ?? loadServable,
      watch: true,
      ...(config.model.loadAll ? {} : { models: [config.model.name] }),
      logger: parts,
      metrics: createInferenceMetrics(registry),
    });
    cleanups.push(() => inference.close());

    let sync: ModelSync | undefined;
    if (client && config.model.modelsTopic !== undefined) {
      sync = createModelSync({
        client,
        topic: config.model.modelsTopic,
        repository: config.model.repository,
        groupId: `inflow-edge-${config.agentId}-models`,
        startTimeoutMs: config.model.syncStartTimeoutMs,
        ...(await loadSyncPolicy(config.model.modelsSync)),
        logger: parts,
        onEvent: (event) => {
          if (event.type === 'installed') metrics.modelsInstalled.inc({ model: event.model });
          if (event.type === 'rejected') {
            metrics.modelsRejected.inc({ model: event.model });
            log.warn(
              { model: event.model, version: event.version, reason: event.reason },
              'model delivery rejected; the last good version keeps serving',
            );
          }
          if (event.type === 'installed' || event.type === 'deleted' || event.type === 'control') {
            inference.repository
              .refresh()
              .catch((error: unknown) => log.error({ err: (error as Error).message }, 'loading a delivered model failed'));
          }
          emit({ type: 'model', event });
        },
      });
      const started = sync;
      registerModelSyncMetrics(registry, sync);
      cleanups.push(() => started.close());
      await sync.start();
    }

    // Offline start: what is on disk loads (after the repository's settle delay) before messages are taken.
    if (await versionsOnDisk(config.model.repository, config.model.name)) {
      const ready = await waitReady(inference, config.model.name, config.model.readyTimeoutMs);
      if (!ready)
        log.warn(
          { model: config.model.name, waitedMs: config.model.readyTimeoutMs },
          'no version of the model is ready yet; messages fail until one is',
        );
    }

    let forwarder: OutboxForwarder | undefined;
    const forwarding = [config.forward.readings, config.forward.predictions, config.forward.errors].some((t) => t !== undefined);
    if (client && forwarding) {
      forwarder = startOutboxForwarder({
        store,
        producer: client.producer({ idempotent: true, acks: 'all' }),
        batchRecords: config.forward.batchRecords,
        retryMinMs: config.forward.retryMinMs,
        retryMaxMs: config.forward.retryMaxMs,
        metrics,
        logger: parts,
        onForwarded: (count) => emit({ type: 'forwarded', count }),
        ...(config.forward.formats && config.schemaRegistry
          ? {
              encode: forwardEncoder(config.forward, registryClientFromConfig(config.schemaRegistry, { baseDir: '.', attempts: 1 })),
              registryUrl: config.schemaRegistry.url,
            }
          : {}),
      });
      const f = forwarder;
      cleanups.push(() => f.close());
    }

    const outputs = createEdgeOutputs(config);
    const decode = createMessageDecoder({
      agentId: config.agentId,
      device: config.device,
      messageIdField: config.messageIdField,
      inputs: config.model.inputs,
    });
    const predict = createPredictionBuilder(config.model.outputs);
    const { name, version, label, timeoutMs } = config.model;
    // Outputs of replayed messages may be published before the link is open: they wait for it.
    let resolveMqtt: (link: MqttLink) => void = () => undefined;
    const mqttOpened = new Promise<MqttLink>((resolve) => (resolveMqtt = resolve));
    const processor: MessageProcessor = createMessageProcessor({
      store,
      maxInFlight: config.limits.maxInFlight,
      metrics,
      logger: parts,
      publish: async (p) => {
        await (await mqttOpened).publish(p.topic, p.payload, p);
      },
      onCompleted: (messages, stored) => {
        if (stored > 0) forwarder?.wake();
        emit({ type: 'completed', messages, stored });
      },
      handlers: {
        decode,
        infer: async (message) => {
          // Released when the call ends, not armed for timeoutMs after every message (../serving/call-deadline.ts).
          const deadline = createCallDeadline(timeoutMs, `inference of ${name}`);
          try {
            return await inference.infer(
              {
                model: name,
                ...(version === undefined ? {} : { version }),
                ...(label === undefined ? {} : { label }),
                inputs: message.inputs,
              },
              { signal: deadline.signal, key: message.device },
            );
          } finally {
            deadline.end();
          }
        },
        predict: (message, response, ts) => predict(message, response.model, response.version, response.outputs, ts),
        ...outputs,
      },
    });
    cleanups.push(() => processor.close(deps.drainTimeoutMs ?? 5000));

    // Messages acknowledged to the broker by an earlier run and not finished: first, in order.
    const pending = store.pendingJournal();
    if (pending.length > 0) log.info({ messages: pending.length }, 'replaying journaled messages from the last run');
    const filters = config.mqtt.subscriptions.map((s) => s.topic);
    const replay = (async () => {
      for (const entry of pending) {
        metrics.replayed.inc();
        await processor.admit(entry.topic, entry.payload, entry.id, entry.receivedAt);
      }
    })().catch(() => undefined); // only refused while closing: the rows stay journaled

    const opening = openMqttLink({
      ...config.mqtt,
      ...mqttSecrets(config.mqtt),
      clientId: config.mqtt.clientId ?? `inflow-edge-${config.agentId}`,
      logger: parts,
      onConnection: (up) => metrics.mqttConnected.set(up ? 1 : 0),
      onMessage: async (topic, payload) => {
        await replay;
        metrics.messagesIn.inc({ subscription: filters.find((f) => topicMatches(f, topic)) ?? 'other' });
        // Room first, then the journal: a message waiting for room is not journaled yet, so a crash
        // meanwhile leaves it only with the broker (redelivered), not also in the journal (a duplicate).
        await processor.room();
        await processor.admit(topic, payload, store.journal(topic, payload), Date.now());
      },
    });
    const mqttLink = opening.link;
    resolveMqtt(mqttLink);
    // Cleanups run in reverse: stop taking messages, drain the processor, then disconnect.
    cleanups.splice(cleanups.length - 1, 0, () => mqttLink.close());
    cleanups.push(() => mqttLink.pause());
    await opening.ready;

    const status = (): EdgeStatus => ({
      agentId: config.agentId,
      mqttConnected: mqttLink.connected,
      kafkaConnected: forwarder?.connected,
      ...(forwarder?.registryConnected !== undefined ? { registryConnected: forwarder.registryConnected } : {}),
      ...(forwarder?.lastError ? { forwardError: forwarder.lastError } : {}),
      outbox: store.stats(),
      inFlight: processor.inFlight,
      model: { name, versions: inference.repository.available(name) },
    });
    let server: MetricsServer | undefined;
    if (config.metrics) {
      server = await startMetricsServer(registry, () => ({ ...status() }), config.metrics);
      const s = server;
      cleanups.push(() => s.close());
    }
    log.info(
      {
        mqtt: config.mqtt.url,
        model: name,
        versions: inference.repository.available(name),
        outbox: store.stats().records,
        metricsPort: server?.port,
      },
      'edge agent running',
    );
    return {
      metrics,
      metricsPort: server?.port,
      inference,
      status,
      close: cleanup,
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
