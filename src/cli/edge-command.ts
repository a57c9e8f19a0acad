/**
 * `inflow edge <config.yaml>`: runs the edge agent until SIGINT/SIGTERM, with a status line every
 * few seconds; `--dry-run` only checks the file.
 */
import { parseBootstrapServers } from '../config/kafka-config.ts';
import { type EdgeAgent, type EdgeConfig, type EdgeStatus, loadEdgeConfig, startEdgeAgent } from '../edge/index.ts';
import { InflowError } from '../errors.ts';
import { createLogger } from '../observability/logger.ts';

export const edgeHelp = `inflow edge <agent.yaml> [--kafka host:port[,host:port]] [--dry-run]

The edge agent: subscribes to MQTT topics (QoS 1, persistent session), runs the embedded model on
each device message, publishes predictions and alerts back over MQTT, and forwards readings and
predictions to Kafka through a durable outbox on disk (kept while Kafka is unreachable, drained
in order when it is back). New model versions published to the models topic
("inflow models publish") are installed and swapped in; offline, the agent serves what is on disk.
SIGINT/SIGTERM finish the messages in flight and exit 0 (unfinished ones are redone at the next start).

Options:
  --kafka <servers>   override kafka.bootstrapServers of the file (auto: the broker "inflow kafka up" started)
  --dry-run           validate the file and print what the agent would do; connects nowhere
Relative paths (model.repository, outbox.path) resolve against the file's folder.
Environment: INFLOW_LOG_LEVEL (info), ORT_DISABLE_TELEMETRY=1 is set by the agent.

Examples:
  inflow edge examples/edge/digits-agent.yaml --dry-run
  inflow topics create examples/edge/digits-agent.yaml --kafka auto
  inflow edge examples/edge/digits-agent.yaml --kafka auto
  curl -s 127.0.0.1:9464/metrics | grep inflow_edge_outbox`;

/** Flags of `inflow edge`. */
export interface EdgeFlags {
  readonly file?: string | undefined;
  readonly kafka?: string | undefined;
  readonly dryRun?: boolean | undefined;
  readonly json?: boolean | undefined;
}

/** What tests inject instead of the process's signals and timers. */
export interface EdgeHooks {
  /** Aborting it stops the agent like SIGTERM (the process signals are not listened to then). */
  readonly signal?: AbortSignal;
  /** Between status lines, ms; default 10 000; 0 = none. */
  readonly statusIntervalMs?: number;
}

function describeAgent(c: EdgeConfig): string {
  const forward = (['readings', 'predictions', 'errors'] as const)
    .filter((k) => c.forward[k] !== undefined)
    .map((k) => `${k} → ${c.forward[k]}`);
  return [
    `edge agent "${c.agentId}"`,
    `  mqtt       ${c.mqtt.url} as ${c.mqtt.clientId ?? `inflow-edge-${c.agentId}`} (clean session: ${c.mqtt.cleanSession}); subscribes ${c.mqtt.subscriptions.map((s) => `${s.topic} (QoS ${s.qos})`).join(', ')}`,
    `  model      ${c.model.name}${c.model.version ? ` version ${c.model.version}` : c.model.label ? ` label ${c.model.label}` : ''} from ${c.model.repository}${c.model.modelsTopic ? `, updated from Kafka topic ${c.model.modelsTopic}` : ''}`,
    `  publishes  predictions → ${c.publish.predictions.topic}${c.publish.errors ? `, errors → ${c.publish.errors.topic}` : ''}${c.publish.alerts.map((a) => `, alert ${a.name} → ${a.topic}`).join('')}`,
    `  kafka      ${c.kafka ? `${(c.kafka.bootstrapServers as string[]).join(',')}: ${forward.join(', ') || 'nothing forwarded'}` : 'none (local only)'}`,
    `  outbox     ${c.outbox.path} (≤ ${c.outbox.maxRecords} records, ≤ ${c.outbox.maxBytes} bytes, ${c.outbox.overflow}, sync ${c.outbox.sync})`,
    `  metrics    ${c.metrics ? `http://${c.metrics.host}:${c.metrics.port}/metrics` : 'off'}`,
  ].join('\n');
}

/** The agent as `--dry-run --json` prints it: what `describeAgent` says, without secrets. */
function agentSummary(c: EdgeConfig): Record<string, unknown> {
  return {
    agentId: c.agentId,
    mqtt: { url: c.mqtt.url, subscriptions: c.mqtt.subscriptions },
    model: {
      name: c.model.name,
      version: c.model.version,
      label: c.model.label,
      repository: c.model.repository,
      modelsTopic: c.model.modelsTopic,
    },
    publish: {
      predictions: c.publish.predictions.topic,
      errors: c.publish.errors?.topic,
      alerts: c.publish.alerts.map((a) => ({ name: a.name, topic: a.topic })),
    },
    kafka: c.kafka
      ? {
          bootstrapServers: c.kafka.bootstrapServers,
          forward: { readings: c.forward.readings, predictions: c.forward.predictions, errors: c.forward.errors },
        }
      : null,
    outbox: c.outbox,
    metrics: c.metrics ?? null,
  };
}

function statusLine(s: EdgeStatus, rate: number): string {
  const kafka = `${s.kafkaConnected === undefined ? 'off' : s.kafkaConnected ? 'up' : 'down'}${s.forwardError ? ` (${s.forwardError.code})` : ''}`;
  return `mqtt ${s.mqttConnected ? 'up' : 'down'}  kafka ${kafka}  ${rate.toFixed(0)} msg/s  in-flight ${s.inFlight}  outbox ${s.outbox.records} (${(s.outbox.bytes / 1024).toFixed(0)} KiB, dropped ${s.outbox.dropped}, refused ${s.outbox.refused})  model ${s.model.name} v${s.model.versions.join(',') || '-'}`;
}

async function totalIn(agent: EdgeAgent): Promise<number> {
  return (await agent.metrics.messagesIn.get()).values.reduce((a, v) => a + v.value, 0);
}

/** `inflow edge`: validates, starts the agent, and runs it until stopped. */
export async function edgeCommand(flags: EdgeFlags, out: (line: string) => void, hooks: EdgeHooks = {}): Promise<void> {
  if (!flags.file)
    throw new InflowError('INVALID_ARGUMENT', 'an agent file is required: inflow edge <agent.yaml> (see inflow edge --help)');
  let config = await loadEdgeConfig(flags.file);
  if (flags.kafka !== undefined) {
    const servers = parseBootstrapServers(flags.kafka);
    if (servers.length === 0 || config.kafka === undefined) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `--kafka needs broker addresses and a kafka: section in ${flags.file}; got "${flags.kafka}"`,
      );
    }
    config = { ...config, kafka: { ...config.kafka, bootstrapServers: servers } };
  }
  if (flags.dryRun) {
    out(flags.json ? JSON.stringify({ valid: true, file: flags.file, agent: agentSummary(config) }) : describeAgent(config));
    return;
  }
  // onnxruntime reads it from the C environment when its first session is created.
  process.env.ORT_DISABLE_TELEMETRY ??= '1';
  const logger = createLogger({ name: 'inflow.edge' });
  const agent = await startEdgeAgent(config, { logger });
  out(`${describeAgent(config)}\nrunning${agent.metricsPort === undefined ? '' : ` (metrics on port ${agent.metricsPort})`}; Ctrl-C stops`);
  let last = { at: performance.now(), n: await totalIn(agent) };
  const interval = hooks.statusIntervalMs ?? 10_000;
  const timer =
    interval > 0
      ? setInterval(() => {
          void totalIn(agent).then((n) => {
            const now = performance.now();
            out(statusLine(agent.status(), ((n - last.n) * 1000) / Math.max(1, now - last.at)));
            last = { at: now, n };
          });
        }, interval)
      : undefined;
  const reason = await new Promise<string>((resolve) => {
    if (hooks.signal) {
      if (hooks.signal.aborted) resolve('abort');
      else hooks.signal.addEventListener('abort', () => resolve('abort'), { once: true });
      return;
    }
    const onSignal = (name: string): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      // A second signal exits at once; journaled messages are redone at the next start.
      process.once(name, () => process.exit(130));
      resolve(name);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  clearInterval(timer);
  out(`stopping (${reason}): finishing messages in flight…`);
  const final = agent.status();
  await agent.close();
  out(`stopped. ${statusLine(final, 0)}`);
}
