/**
 * What the server's readiness depends on besides its models: the Kafka cluster when the server
 * uses one (the Kafka-native endpoint, model sync). While the client's connection state
 * (src/kafka/connection.ts) says the cluster is unreachable, the REST readiness routes answer 503
 * with the reason and gRPC health says NOT_SERVING, like `inflow stream`'s `/readyz`.
 */
import type { KafkaClient } from '../kafka/types.ts';

/** One dependency of readiness. */
export interface ReadinessGate {
  /** Why the server is not ready now; undefined when this dependency lets it be. */
  notReadyReason(): string | undefined;
  /** Calls `listener` whenever the reason may have changed; returns the unsubscribe function. */
  onChange(listener: () => void): () => void;
}

/**
 * Not ready while `client`'s cluster is unreachable. `uses` names what waits for it ("the
 * Kafka-native endpoint", "model sync"). A client without a connection state (the in-process
 * log) never holds readiness back.
 */
export function kafkaReadinessGate(client: KafkaClient, uses: readonly string[]): ReadinessGate {
  const connection = client.connection;
  return {
    notReadyReason() {
      if (connection === undefined || connection.state === 'connected') return undefined;
      const why = connection.lastError ? ` (${connection.lastError.code}: ${connection.lastError.message})` : '';
      return `Kafka unreachable since ${new Date(connection.since).toISOString()}${why}; ${uses.join(' and ')} wait for it`;
    },
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
