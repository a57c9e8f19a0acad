/**
 * The agent's MQTT connections (mqtt.js). Messages come in on a persistent session (fixed client
 * id, clean = false), so the broker queues QoS 1 messages while the agent is away; outputs go out
 * on a second connection (`<clientId>-out`), whose publishes resolve on the broker's PUBACK.
 *
 * Acknowledgement: mqtt.js sends the PUBACK of an incoming QoS 1 message when `handleMessage`
 * calls back, and reads no further packet of that connection until then. `onMessage` is awaited
 * there: it returns once the message is journaled and there is room in the agent (backpressure:
 * while it waits, the broker holds the rest). Because the incoming connection stalls meanwhile,
 * the PUBACKs of the agent's own publishes must arrive on another one — hence two connections.
 * A message whose handler never returns before a shutdown is not acknowledged, so the broker
 * delivers it again to the next session.
 */
import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { InflowError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';

/** TLS of the MQTT connection: PEM contents. */
export interface MqttTls {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly rejectUnauthorized: boolean;
  readonly servername?: string;
}

/** The `mqtt:` settings whose secrets come from files or the environment. */
export interface MqttSecretSettings {
  readonly password?: string | undefined;
  readonly passwordFile?: string | undefined;
  readonly passwordEnv?: string | undefined;
  readonly tls?:
    | {
        readonly caFile?: string | undefined;
        readonly certFile?: string | undefined;
        readonly keyFile?: string | undefined;
        readonly rejectUnauthorized: boolean;
        readonly servername?: string | undefined;
      }
    | undefined;
}

/**
 * Reads the password (inline, `passwordFile` or `passwordEnv`) and the TLS files of the `mqtt:`
 * section, at start, so a missing Secret fails with the field that names it.
 * @throws InflowError INVALID_CONFIG naming the field and the file or variable.
 */
export function mqttSecrets(settings: MqttSecretSettings, env: NodeJS.ProcessEnv = process.env): { password?: string; tls?: MqttTls } {
  const file = (path: string, field: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      throw new InflowError(
        'INVALID_CONFIG',
        `mqtt.${field}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
        {
          cause: error,
        },
      );
    }
  };
  let password = settings.password;
  if (settings.passwordFile !== undefined) password = file(settings.passwordFile, 'passwordFile').replace(/\r?\n$/, '');
  if (settings.passwordEnv !== undefined) {
    password = env[settings.passwordEnv];
    if (password === undefined)
      throw new InflowError('INVALID_CONFIG', `mqtt.passwordEnv: the environment variable ${settings.passwordEnv} is not set`);
  }
  const t = settings.tls;
  const tls: MqttTls | undefined = t && {
    rejectUnauthorized: t.rejectUnauthorized,
    ...(t.caFile ? { ca: file(t.caFile, 'tls.caFile') } : {}),
    ...(t.certFile ? { cert: file(t.certFile, 'tls.certFile') } : {}),
    ...(t.keyFile ? { key: file(t.keyFile, 'tls.keyFile') } : {}),
    ...(t.servername ? { servername: t.servername } : {}),
  };
  return { ...(password === undefined ? {} : { password }), ...(tls ? { tls } : {}) };
}

export interface MqttLinkOptions {
  readonly url: string;
  readonly clientId: string;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  /** TLS material (PEM text), see {@link mqttSecrets}. */
  readonly tls?: MqttTls | undefined;
  readonly protocolVersion: 4 | 5;
  readonly cleanSession: boolean;
  /** MQTT 5 session expiry, seconds. */
  readonly sessionExpirySec: number;
  readonly keepaliveSec: number;
  readonly reconnectMs: number;
  readonly connectTimeoutMs: number;
  readonly subscriptions: readonly { readonly topic: string; readonly qos: 0 | 1 | 2 }[];
  /** Called for each incoming message in order; the acknowledgement waits for it. Must not throw. */
  readonly onMessage: (topic: string, payload: Buffer) => Promise<void>;
  readonly onConnection?: (connected: boolean) => void;
  readonly logger?: Logger;
}

export interface PublishOptions {
  readonly qos: 0 | 1 | 2;
  readonly retain: boolean;
}

/** A live MQTT connection (it reconnects by itself). */
export interface MqttLink {
  /** Resolves on the broker's acknowledgement (at once for QoS 0); queued while disconnected. */
  publish(topic: string, payload: Buffer | string, options: PublishOptions): Promise<void>;
  readonly connected: boolean;
  /** Stops taking messages: handlers not yet called are never called (those messages stay unacknowledged). */
  pause(): void;
  /** Disconnects (the broker keeps the session). */
  close(): Promise<void>;
}

/** A link being opened: usable at once (publishes queue until connected); `ready` settles the start. */
export interface OpeningMqttLink {
  readonly link: MqttLink;
  /**
   * Resolves once both connections are up and the subscriptions exist; rejects (UNAVAILABLE) after
   * `connectTimeoutMs` without that (the link is closed then). With a session the broker kept, the
   * subscriptions exist already and the SUBACK is not waited for: it queues behind the session's
   * backlog, which is only read as fast as the agent takes it.
   */
  readonly ready: Promise<void>;
}

/** Opens both connections and subscribes. */
export function openMqttLink(options: MqttLinkOptions): OpeningMqttLink {
  const log = (options.logger ?? silentLogger).child({ component: 'edge-mqtt', url: options.url });
  const clientOptions: IClientOptions = {
    clientId: options.clientId,
    clean: options.cleanSession,
    protocolVersion: options.protocolVersion,
    keepalive: options.keepaliveSec,
    reconnectPeriod: options.reconnectMs,
    connectTimeout: options.connectTimeoutMs,
    resubscribe: true,
    ...(options.username === undefined ? {} : { username: options.username }),
    ...(options.password === undefined ? {} : { password: options.password }),
    ...(options.tls ?? {}),
    ...(options.protocolVersion === 5 ? { properties: { sessionExpiryInterval: options.sessionExpirySec } } : {}),
  };
  const client: MqttClient = mqtt.connect(options.url, clientOptions);
  // Outputs: its own session, so queued publishes are resent after a reconnect of this process.
  const out: MqttClient = mqtt.connect(options.url, { ...clientOptions, clientId: `${options.clientId}-out`.slice(0, 128) });
  let paused = false;
  client.handleMessage = (packet: IPublishPacket, callback: (error?: Error) => void): void => {
    if (paused) return;
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : Buffer.from(packet.payload);
    options.onMessage(packet.topic, payload).then(
      () => {
        if (!paused) callback();
      },
      (error: unknown) => {
        // While stopping, messages waiting for room are refused on purpose: the broker keeps them.
        if (!paused)
          log.error({ err: (error as Error).message, topic: packet.topic }, 'a message handler failed; the message stays unacknowledged');
      },
    );
  };
  const report = (): void => options.onConnection?.(client.connected && out.connected);
  for (const [c, role] of [
    [client, 'in'],
    [out, 'out'],
  ] as const) {
    c.on('connect', (connack) => {
      log.info({ role, sessionPresent: connack.sessionPresent }, 'MQTT connected');
      report();
    });
    c.on('close', report);
    c.on('offline', () => log.warn({ role }, 'MQTT broker unreachable; reconnecting'));
    c.on('error', (error) => log.warn({ role, err: error.message }, 'MQTT error'));
  }

  const firstConnack = new Promise<boolean>((resolve) => client.once('connect', (connack) => resolve(connack.sessionPresent)));
  const subscriptions = Object.fromEntries(options.subscriptions.map((s) => [s.topic, { qos: s.qos }]));
  const subscribe = async (): Promise<void> => {
    const grants = await client.subscribeAsync(subscriptions);
    const refused = grants.filter((g) => g.qos === 128);
    if (refused.length > 0) {
      throw new InflowError(
        'PERMISSION_DENIED',
        `MQTT broker refused the subscription to ${refused.map((g) => `"${g.topic}"`).join(', ')}`,
      );
    }
  };

  const link: MqttLink = {
    async publish(topic, payload, o) {
      await out.publishAsync(topic, payload, { qos: o.qos, retain: o.retain });
    },
    get connected() {
      return client.connected && out.connected;
    },
    pause() {
      paused = true;
    },
    async close() {
      paused = true;
      await Promise.all([client.endAsync(true), out.endAsync()]);
    },
  };

  let timer: ReturnType<typeof setTimeout> | undefined;
  const ready = Promise.race([
    (async () => {
      const sessionPresent = await firstConnack;
      if (!out.connected) await new Promise<void>((resolve) => out.once('connect', () => resolve()));
      if (!sessionPresent) await subscribe();
      else subscribe().catch((error: unknown) => log.error({ err: (error as Error).message }, 'MQTT subscription failed'));
    })(),
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new InflowError(
              'UNAVAILABLE',
              `no MQTT connection to ${options.url} within ${options.connectTimeoutMs} ms; expected a reachable broker (check mqtt.url)`,
            ),
          ),
        options.connectTimeoutMs,
      );
    }),
  ]).then(
    () => clearTimeout(timer),
    async (error: unknown) => {
      clearTimeout(timer);
      paused = true;
      await Promise.all([client.endAsync(true).catch(() => undefined), out.endAsync(true).catch(() => undefined)]);
      throw error;
    },
  );
  return { link, ready };
}
