/**
 * What the server's readiness depends on besides its models: the Kafka cluster when the server
 * serves through it (the Kafka-native endpoint). While the client's connection state
 * (src/kafka/connection.ts) says the cluster is unreachable, the REST readiness routes answer 503
 * with the reason and gRPC health says NOT_SERVING, like `inflow stream`'s `/readyz`.
 *
 * Model sync alone does not hold readiness back: the models it installed are on disk and loaded,
 * and the server answers with them through an outage (a readiness probe that took the server out
 * of its load balancer would stop that for nothing). It makes the server *degraded* instead: the
 * ready answer says so in a `degraded` list, and `inflow_server_kafka_connected` is 0.
 */
import { Gauge, type Registry } from 'prom-client';
import type { KafkaClient } from '../kafka/types.ts';

/** One dependency of readiness. */
export interface ReadinessGate {
  /** Why the server is not ready now; undefined when this dependency lets it be. */
  notReadyReason(): string | undefined;
  /** Why the server serves with less than it should (ready all the same); undefined when it does not. */
  degradedReason?(): string | undefined;
  /** Calls `listener` whenever the reason may have changed; returns the unsubscribe function. */
  onChange(listener: () => void): () => void;
}

/** Options of {@link kafkaReadinessGate}. */
export interface KafkaGateOptions {
  /** Whether the cluster being away makes the server not ready (true) or only degraded (false). Default true. */
  readonly holdsReadiness?: boolean;
}

/**
 * Not ready (or, with `holdsReadiness: false`, degraded) while `client`'s cluster is
 * unreachable. `uses` names what waits for it ("the Kafka-native endpoint", "model sync"). A
 * client without a connection state (the in-process log) never holds readiness back.
 */
export function kafkaReadinessGate(client: KafkaClient, uses: readonly string[], options: KafkaGateOptions = {}): ReadinessGate {
  const connection = client.connection;
  const holds = options.holdsReadiness ?? true;
  const reason = (): string | undefined => {
    if (connection === undefined || connection.state === 'connected') return undefined;
    const why = connection.lastError ? ` (${connection.lastError.code}: ${connection.lastError.message})` : '';
    const waits = `${uses.join(' and ')} wait${uses.length > 1 ? '' : 's'} for it`;
    return `Kafka unreachable since ${new Date(connection.since).toISOString()}${why}; ${waits}${holds ? '' : '; the loaded models keep serving'}`;
  };
  return {
    notReadyReason: () => (holds ? reason() : undefined),
    degradedReason: () => (holds ? undefined : reason()),
    onChange: (listener) => connection?.onChange(() => listener()) ?? (() => undefined),
  };
}

/** The first reason any of `gates` gives, or undefined when none holds readiness back. */
export function notReadyReason(gates: readonly ReadinessGate[] | undefined): string | undefined {
  for (const gate of gates ?? []) {
    const reason = gate.notReadyReason();
    if (reason !== undefined) return reason;
  }
  return undefined;
}

/** Every reason `gates` give for serving degraded; empty when none. */
export function degradedReasons(gates: readonly ReadinessGate[] | undefined): string[] {
  const reasons: string[] = [];
  for (const gate of gates ?? []) {
    const reason = gate.degradedReason?.();
    if (reason !== undefined) reasons.push(reason);
  }
  return reasons;
}

/**
 * `inflow_server_kafka_connected{uses}`: 1 while the cluster a part of the server uses answers,
 * 0 while it is unreachable (the streams runner's `inflow_stream_kafka_connected` for the server).
 */
export function registerKafkaConnectedGauge(registry: Registry, clients: ReadonlyMap<KafkaClient, readonly string[]>): void {
  if (registry.getSingleMetric('inflow_server_kafka_connected')) return;
  new Gauge({
    name: 'inflow_server_kafka_connected',
    help: 'Whether the Kafka cluster that a part of the server (the Kafka-native endpoint, model sync) uses is reachable: 1 yes, 0 no',
    labelNames: ['uses'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [client, uses] of clients) {
        if (client.connection === undefined) continue;
        this.labels({ uses: uses.join(', ') }).set(client.connection.state === 'connected' ? 1 : 0);
      }
    },
  });
}
