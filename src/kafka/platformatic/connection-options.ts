/** KafkaConfig → @platformatic/kafka base options (bootstrap, timeouts, SASL, TLS). */
import type { KafkaConfig } from '../../config/kafka-config.ts';

/** The subset of @platformatic/kafka BaseOptions inflow sets. */
export interface BaseClientOptions {
  clientId: string;
  bootstrapBrokers: string[];
  timeout: number;
  retries: number;
  connectTimeout: number;
  sasl?: { mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512' | 'OAUTHBEARER'; username?: string; password?: string; token?: string };
  tls?: { ca?: string; cert?: string; key?: string; rejectUnauthorized: boolean; servername?: string };
}

export function connectionOptions(config: KafkaConfig & { bootstrapServers: string[] }, suffix: string): BaseClientOptions {
  const options: BaseClientOptions = {
    clientId: `${config.clientId}-${suffix}`,
    bootstrapBrokers: config.bootstrapServers,
    timeout: config.requestTimeoutMs,
    retries: config.retries,
    connectTimeout: Math.min(config.requestTimeoutMs, 10_000),
  };
  if (config.sasl) options.sasl = { ...config.sasl };
  if (config.ssl) options.tls = { ...config.ssl };
  return options;
}
