/** KafkaConfig → @platformatic/kafka base options (bootstrap, timeouts, SASL, TLS). */
import { readFileSync } from 'node:fs';
import type { KafkaConfig } from '../../config/kafka-config.ts';
import { InflowError } from '../../errors.ts';
import type { BackoffOptions } from '../connection.ts';

/** Contents of a secret file (trailing newline of a mounted Secret dropped for passwords/tokens). */
function secret(path: string, what: string, trim: boolean): string {
  try {
    const text = readFileSync(path, 'utf8');
    return trim ? text.replace(/\r?\n$/, '') : text;
  } catch (error) {
    throw new InflowError('INVALID_CONFIG', `kafka ${what}: cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
}

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

/**
 * The backoff of a client's reconnect loops (../connection.ts): exponential from 100 ms, capped at
 * `reconnectBackoffMaxMs`. Kept apart from the library's options (it has no such setting: its
 * `retryDelay` is one fixed delay between a request's retries).
 */
export function reconnectBackoff(config: Pick<KafkaConfig, 'reconnectBackoffMaxMs'>): BackoffOptions {
  return { maxMs: config.reconnectBackoffMaxMs };
}

export function connectionOptions(config: KafkaConfig & { bootstrapServers: string[] }, suffix: string): BaseClientOptions {
  const options: BaseClientOptions = {
    clientId: `${config.clientId}-${suffix}`,
    bootstrapBrokers: config.bootstrapServers,
    timeout: config.requestTimeoutMs,
    retries: config.retries,
    connectTimeout: Math.min(config.requestTimeoutMs, 10_000),
  };
  if (config.sasl) {
    const { usernameFile, passwordFile, tokenFile, ...sasl } = config.sasl;
    options.sasl = {
      ...sasl,
      ...(usernameFile ? { username: secret(usernameFile, 'sasl.usernameFile', true).trim() } : {}),
      ...(passwordFile ? { password: secret(passwordFile, 'sasl.passwordFile', true) } : {}),
      ...(tokenFile ? { token: secret(tokenFile, 'sasl.tokenFile', true) } : {}),
    };
  }
  if (config.ssl) {
    const { caFile, certFile, keyFile, ...tls } = config.ssl;
    options.tls = {
      ...tls,
      ...(caFile ? { ca: secret(caFile, 'ssl.caFile', false) } : {}),
      ...(certFile ? { cert: secret(certFile, 'ssl.certFile', false) } : {}),
      ...(keyFile ? { key: secret(keyFile, 'ssl.keyFile', false) } : {}),
    };
  }
  return options;
}
