/**
 * Prometheus metrics of the edge agent (one registry per agent, with the inference metrics of its
 * embedded model in the same registry), and the optional small HTTP server that exposes them:
 * `GET /metrics` (Prometheus text) and `GET /healthz` (JSON status; 200 while the agent runs).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Seconds: 100 µs … 10 s. */
const LATENCY = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

export interface EdgeMetrics {
  readonly registry: Registry;
  /** Device messages received, by subscription topic filter. */
  readonly messagesIn: Counter<'subscription'>;
  /** Device messages that could not be scored, by reason (json, not-object, device, message-id, inputs, model, inference). */
  readonly rejected: Counter<'reason'>;
  readonly predictions: Counter<'model' | 'version'>;
  readonly alerts: Counter<'alert'>;
  /** Receipt → prediction published over MQTT. */
  readonly latency: Histogram;
  readonly mqttConnected: Gauge;
  readonly mqttPublishFailures: Counter<'kind'>;
  /** Messages replayed from the journal after a restart. */
  readonly replayed: Counter;
  readonly outboxRecords: Gauge;
  readonly outboxBytes: Gauge;
  /** Records removed from a full outbox (drop-oldest), and refused by it (stop-accepting, too large, disk full). */
  readonly outboxDropped: Counter<'reason'>;
  readonly outboxRefused: Counter<'reason'>;
  /** Records acknowledged by Kafka, by topic. */
  readonly forwarded: Counter<'topic'>;
  readonly forwardFailures: Counter<'code'>;
  /** Records Kafka refused for good (too large): removed so the rest can go. */
  readonly forwardDiscarded: Counter<'code'>;
  readonly kafkaConnected: Gauge;
  /** 1 while records encode under the Schema Registry (`forward.formats`). */
  readonly registryConnected: Gauge;
  /** Versions the model sync installed, and deliveries it rejected (sha256 mismatch, bad manifest). */
  readonly modelsInstalled: Counter<'model'>;
  readonly modelsRejected: Counter<'model'>;
  /** The version that answered the last prediction. */
  readonly modelVersion: Gauge<'model'>;
}

/** Creates the edge metrics in `registry` (a new one by default). */
export function createEdgeMetrics(registry: Registry = new Registry()): EdgeMetrics {
  const registers = [registry];
  return {
    registry,
    messagesIn: new Counter({
      name: 'inflow_edge_messages_in_total',
      help: 'Device messages received',
      labelNames: ['subscription'],
      registers,
    }),
    rejected: new Counter({
      name: 'inflow_edge_rejected_total',
      help: 'Device messages that could not be scored',
      labelNames: ['reason'],
      registers,
    }),
    predictions: new Counter({
      name: 'inflow_edge_predictions_total',
      help: 'Predictions made',
      labelNames: ['model', 'version'],
      registers,
    }),
    alerts: new Counter({ name: 'inflow_edge_alerts_total', help: 'Alert rules that fired', labelNames: ['alert'], registers }),
    latency: new Histogram({
      name: 'inflow_edge_message_duration_seconds',
      help: 'Device message received → prediction published over MQTT',
      buckets: LATENCY,
      registers,
    }),
    mqttConnected: new Gauge({ name: 'inflow_edge_mqtt_connected', help: '1 while connected to the MQTT broker', registers }),
    mqttPublishFailures: new Counter({
      name: 'inflow_edge_mqtt_publish_failures_total',
      help: 'MQTT publishes that failed (prediction, alert, error)',
      labelNames: ['kind'],
      registers,
    }),
    replayed: new Counter({ name: 'inflow_edge_replayed_total', help: 'Journaled messages processed again after a restart', registers }),
    outboxRecords: new Gauge({ name: 'inflow_edge_outbox_records', help: 'Records waiting for Kafka', registers }),
    outboxBytes: new Gauge({ name: 'inflow_edge_outbox_bytes', help: 'Bytes of the records waiting for Kafka', registers }),
    outboxDropped: new Counter({
      name: 'inflow_edge_outbox_dropped_total',
      help: 'Oldest records removed from a full outbox (drop-oldest)',
      labelNames: ['reason'],
      registers,
    }),
    outboxRefused: new Counter({
      name: 'inflow_edge_outbox_refused_total',
      help: 'New records a full outbox refused (stop-accepting, over maxBytes, disk full)',
      labelNames: ['reason'],
      registers,
    }),
    forwarded: new Counter({
      name: 'inflow_edge_forwarded_total',
      help: 'Records acknowledged by Kafka',
      labelNames: ['topic'],
      registers,
    }),
    forwardFailures: new Counter({
      name: 'inflow_edge_forward_failures_total',
      help: 'Produce attempts that failed (retried)',
      labelNames: ['code'],
      registers,
    }),
    forwardDiscarded: new Counter({
      name: 'inflow_edge_forward_discarded_total',
      help: 'Records Kafka refused for good (removed from the outbox)',
      labelNames: ['code'],
      registers,
    }),
    kafkaConnected: new Gauge({
      name: 'inflow_edge_kafka_connected',
      help: '1 while the cluster answered the last produce (0: unreachable)',
      registers,
    }),
    registryConnected: new Gauge({
      name: 'inflow_edge_schema_registry_connected',
      help: '1 while the last encode under the Schema Registry succeeded (forward.formats; 0: unreachable or not yet used)',
      registers,
    }),
    modelsInstalled: new Counter({
      name: 'inflow_edge_model_versions_installed_total',
      help: 'Model versions installed from the models topic',
      labelNames: ['model'],
      registers,
    }),
    modelsRejected: new Counter({
      name: 'inflow_edge_model_deliveries_rejected_total',
      help: 'Model deliveries rejected (sha256 mismatch, bad manifest); the last good version keeps serving',
      labelNames: ['model'],
      registers,
    }),
    modelVersion: new Gauge({
      name: 'inflow_edge_model_version',
      help: 'Version that answered the last prediction',
      labelNames: ['model'],
      registers,
    }),
  };
}

/** A running metrics server. */
export interface MetricsServer {
  /** The port it listens on (the OS's pick for port 0). */
  readonly port: number;
  close(): Promise<void>;
}

/** Serves `/metrics` from `registry` and `/healthz` from `health()` on host:port. */
export async function startMetricsServer(
  registry: Registry,
  health: () => Record<string, unknown>,
  options: { port: number; host: string },
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (error: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(String(error)),
      );
      return;
    }
    if (req.method === 'GET' && path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(health()));
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics or /healthz\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
