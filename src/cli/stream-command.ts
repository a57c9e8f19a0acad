/**
 * `inflow stream <pipeline.yaml>`: runs a pipeline declared in YAML until SIGINT/SIGTERM, with
 * a status line every few seconds; `--dry-run` (and `inflow validate`) only check the file.
 */
import { registerProcessMetrics } from '../observability/metrics.ts';
import { statSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { type KafkaConfig, kafkaConfigSchema, parseBootstrapServers } from '../config/kafka-config.ts';
import { validateConfig } from '../config/load-config.ts';
import { InflowError } from '../errors.ts';
import { loadSyncPolicy, startRepositorySync } from '../delivery/index.ts';
import { createKafkaClient, type KafkaClient } from '../kafka/index.ts';
import { createLogger, type Logger } from '../observability/logger.ts';
import type { LocalInference } from '../serving/local-inference.ts';
import { type StreamProbes, startStreamProbes } from './stream-probes.ts';
import { createStreamsRunner, type StreamsMetrics, type StreamsRunner } from '../streams/index.ts';
import {
  type BuiltPipeline,
  buildPipeline,
  loadPipelineFile,
  oneLineConfigError,
  type PipelineConfig,
  type PipelineDeps,
} from '../streams/pipeline/index.ts';

export const streamHelp = `inflow stream <pipeline.yaml> [--kafka host:port[,host:port]|memory] [--threads N|auto] [--describe] [--dry-run]

Runs a stream pipeline declared in YAML: source topic → filter / select / rename → predict
(embedded model, or a remote model server with embedded fallback) → split → to topics.
Prints a status line every 5 s; SIGINT/SIGTERM drain in-flight records, commit and exit 0.
Topics are not created: "inflow topics create <pipeline.yaml>" creates them (--partitions).

Options:
  --kafka <servers>   override kafka.bootstrapServers of the file (auto: the broker "inflow kafka up"
                      started; "memory": the in-process log,
                      useful with --dry-run only: nothing else can write to it)
  --threads <n|auto>  stream threads in this instance (Kafka Streams' num.stream.threads; default
                      the file's threads:, else 1): each a worker thread with its own consumer in
                      the group, producer and models; auto = the CPUs available
  --describe          print the pipeline and its topology, then run
  --dry-run           validate the file and print the topology; loads no model, connects nowhere
  --metrics-port <n>  serve /metrics (Prometheus), /healthz and /readyz on this port (probes of a pod),
                      and the pipeline's stores by key under /v1/stores (interactive queries)
  --application-server <host:port>
                      the address other instances give callers for keys this instance owns
                      (this instance's --metrics-port as reachable from them, e.g. the pod IP)
  --state-dir <dir>   keep the state stores (aggregations, process steps) on disk under <dir>
                      (lmdb, <dir>/<applicationId>/<task>/<store>), overriding the file's state.dir;
                      without either, stores are in memory and restored from their changelogs
Relative modelRepository paths resolve against the pipeline file's folder.

Examples:
  inflow stream examples/pipelines/digits-embedded.yaml --dry-run
  inflow topics create examples/pipelines/digits-remote.yaml --kafka auto
  inflow stream examples/pipelines/digits-remote.yaml --kafka auto --describe
  inflow validate examples/pipelines/digits-remote.yaml`;

export const validateHelp = `inflow validate <pipeline.yaml>

Checks a pipeline file: the schema (unknown keys are errors), the cross-field rules (source
first, to last, model source names, fallbacks), and that every embedded model has a folder in
its repository. Loads no model and connects nowhere. Exit code 0 when valid, 2 otherwise.

Examples:
  inflow validate examples/pipelines/digits-embedded.yaml`;

/** Flags of `inflow stream`. */
export interface StreamFlags {
  readonly file?: string | undefined;
  readonly kafka?: string | undefined;
  readonly describe?: boolean | undefined;
  readonly dryRun?: boolean | undefined;
  readonly metricsPort?: string | undefined;
  readonly applicationServer?: string | undefined;
  /** Overrides the file's `state.dir` (relative to the working directory). */
  readonly stateDir?: string | undefined;
  readonly json?: boolean | undefined;
}

/** What tests inject instead of the process's signals, timers, broker and models. */
export interface StreamHooks {
  /** Used instead of a client made from the kafka section (and not closed by the command). */
  readonly client?: KafkaClient;
  /** Aborting it stops the pipeline like SIGINT (the process signals are not listened to then). */
  readonly signal?: AbortSignal;
  /** Between status lines, ms; default 5000. */
  readonly statusIntervalMs?: number;
  readonly deps?: PipelineDeps;
  readonly logger?: Logger;
  /**
   * Set when this runs as stream thread `threadIndex` of an instance (stream-threads.ts): the
   * runner's instance id (and so its transactional id) gets `-t<index>`, like Kafka Streams'
   * `<client.id>-StreamThread-<n>`, so each thread has its own producer and fencing.
   */
  readonly threadIndex?: number;
  /** Called once the runner exists (the stream threads answer their coordinator's probes from it). */
  readonly onRunner?: (runner: StreamsRunner, built: BuiltPipeline) => void;
}

async function loadWithKafka(file: string, kafka: string | undefined): Promise<{ config: PipelineConfig; kafka: KafkaConfig }> {
  const config = await loadPipelineFile(file);
  if (kafka === undefined) return { config, kafka: config.kafka };
  const bootstrapServers = kafka === 'memory' ? kafka : parseBootstrapServers(kafka);
  try {
    return { config, kafka: validateConfig(kafkaConfigSchema, { ...config.kafka, bootstrapServers }, '--kafka') };
  } catch (error) {
    throw oneLineConfigError(error);
  }
}

interface MetricValues {
  get(): Promise<{ values: { value: number; metricName?: string; labels: Partial<Record<string, string | number>> }[] }>;
}

/** The sum of a metric's values: of its `_sum` or `_count` series for a histogram, without one topic for a counter. */
async function total(metric: MetricValues, o: { suffix?: string; exceptTopic?: string } = {}): Promise<number> {
  const { values } = await metric.get();
  return values
    .filter(
      (v) =>
        (o.suffix === undefined || v.metricName?.endsWith(o.suffix)) && (o.exceptTopic === undefined || v.labels.topic !== o.exceptTopic),
    )
    .reduce((a, v) => a + v.value, 0);
}

/**
 * One status line from the runner's metrics: totals since start (out: records written to the
 * pipeline's topics, dlq: to the dead-letter topic), and the input rate since the last line —
 * or, for the final line (`final`), the mean rate over the whole run (a rate over the last few
 * microseconds printed "in 5961 (5961000/s)").
 */
export function createStatus(metrics: StreamsMetrics, dlqTopic: string, now: () => number = () => performance.now()) {
  const started = now();
  let last = { at: started, in: 0 };
  return async (final = false): Promise<string> => {
    const [recordsIn, out, dlq, skipped, inFlight, lag, batchSum, batchCount] = await Promise.all([
      total(metrics.recordsIn),
      total(metrics.recordsOut, { exceptTopic: dlqTopic }),
      total(metrics.deadLettered),
      total(metrics.skipped),
      total(metrics.inFlight),
      total(metrics.consumerLag),
      total(metrics.batchSize, { suffix: '_sum' }),
      total(metrics.batchSize, { suffix: '_count' }),
    ]);
    const at = now();
    const from = final ? { at: started, in: 0 } : last;
    const seconds = (at - from.at) / 1000;
    // Under a second of data says nothing about a rate.
    const rate = seconds >= 1 ? `${((recordsIn - from.in) / seconds).toFixed(0)}/s${final ? ` over ${seconds.toFixed(0)} s` : ''}` : '-/s';
    last = { at, in: recordsIn };
    const batch = batchCount > 0 ? (batchSum / batchCount).toFixed(1) : '-';
    return `in ${recordsIn} (${rate})  out ${out}  dlq ${dlq}${skipped ? `  skipped ${skipped}` : ''}  in-flight ${inFlight}  lag ${lag}  batch mean ${batch}`;
  };
}

/**
 * Readiness of a running pipeline: not while stopping, failed, cut off from Kafka (the runner
 * retries meanwhile), restoring state, or while the Schema Registry is unreachable (records that
 * need a schema wait for it).
 */
export function pipelineReady(runner: StreamsRunner, built: BuiltPipeline): boolean {
  const st = runner.stats();
  return (
    st.state === 'running' && st.connection === 'connected' && st.restoring === 0 && (built.schemaRegistry?.health().reachable ?? true)
  );
}

/** Resolves on SIGINT/SIGTERM (or `signal`); a second process signal exits at once with 130. */
function stopRequested(signal: AbortSignal | undefined, out: (line: string) => void): { stopped: Promise<string>; dispose(): void } {
  if (signal) {
    return {
      stopped: new Promise((res) => (signal.aborted ? res('abort') : signal.addEventListener('abort', () => res('abort'), { once: true }))),
      dispose: () => undefined,
    };
  }
  let first = true;
  let resolveStop!: (name: string) => void;
  const stopped = new Promise<string>((res) => (resolveStop = res));
  const onSignal = (name: string): void => {
    if (!first) {
      out(`${name} again: exiting without draining (uncommitted records are reprocessed on restart)`);
      process.exit(130);
    }
    first = false;
    resolveStop(name);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    stopped,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** `--state-dir`: an absolute path to a directory that exists or can be created (lmdb creates it). */
function stateDirFlag(value: string): string {
  if (value.trim() === '') throw new InflowError('INVALID_ARGUMENT', '--state-dir needs a directory, got an empty value');
  const dir = resolve(value);
  let kind: 'directory' | 'other' | 'missing' = 'missing';
  try {
    kind = statSync(dir).isDirectory() ? 'directory' : 'other';
  } catch {
    // Missing: the stores create it.
  }
  if (kind === 'other')
    throw new InflowError(
      'INVALID_ARGUMENT',
      `--state-dir "${value}" exists and is not a directory; give a directory for the state stores`,
    );
  return dir;
}

/** `inflow stream`: validates, builds and runs the pipeline until stopped. */
export async function streamCommand(flags: StreamFlags, out: (line: string) => void, hooks: StreamHooks = {}): Promise<void> {
  const file = flags.file;
  if (!file)
    throw new InflowError('INVALID_ARGUMENT', 'a pipeline file is required: inflow stream <pipeline.yaml> (see inflow stream --help)');
  const { config, kafka } = await loadWithKafka(file, flags.kafka);
  const deps: PipelineDeps = { baseDir: dirname(file), source: file, ...hooks.deps };
  if (flags.dryRun) {
    const built = await buildPipeline(config, { ...deps, dryRun: true });
    out(flags.json ? JSON.stringify({ valid: true, ...pipelineSummary(file, built), describe: built.describe() }) : built.describe());
    await built.close();
    return;
  }
  if (kafka.bootstrapServers === 'memory' && !hooks.client) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      'the in-process log (memory) has no producers besides this process, so the pipeline would never see a record; use --dry-run to check the file, or a broker: --kafka host:port',
    );
  }
  const logger = hooks.logger ?? createLogger({ name: 'inflow.stream' });
  // Without an injected client the servers are brokers: memory was refused above.
  const client: KafkaClient = hooks.client ?? createKafkaClient(kafka, { logger });
  let built: BuiltPipeline;
  try {
    built = await buildPipeline(config, {
      logger,
      syncModels: async (root, topic, policy) => {
        const sync = await startRepositorySync({ client, topic, modelRepository: root, logger, policy: await loadSyncPolicy(policy) });
        return {
          attach: (inferencer) => {
            if ('repository' in inferencer) sync.attach((inferencer as LocalInference).repository);
            if ('metrics' in inferencer) sync.registerMetrics((inferencer as LocalInference).metrics.registry);
          },
          close: () => sync.close(),
        };
      },
      ...deps,
    });
  } catch (error) {
    if (!hooks.client) await client.close().catch(() => undefined);
    throw error;
  }
  let runner: StreamsRunner | undefined;
  let status: ((final?: boolean) => Promise<string>) | undefined;
  let started = false;
  const stop = stopRequested(hooks.signal, out);
  let timer: ReturnType<typeof setInterval> | undefined;
  let probes: StreamProbes | undefined;
  try {
    if (flags.describe) out(built.describe());
    if (flags.applicationServer !== undefined && !/^[^\s:/]+:\d{1,5}$/.test(flags.applicationServer)) {
      throw new InflowError('INVALID_ARGUMENT', `--application-server must be host:port, got "${flags.applicationServer}"`);
    }
    const created = createStreamsRunner(built.topology, {
      ...built.runnerOptions,
      client,
      ...(flags.applicationServer === undefined ? {} : { applicationServer: flags.applicationServer }),
      ...(hooks.threadIndex === undefined ? {} : { instanceId: `${built.runnerOptions.instanceId ?? hostname()}-t${hooks.threadIndex}` }),
      ...(flags.stateDir === undefined ? {} : { stateDir: stateDirFlag(flags.stateDir) }),
    });
    runner = created;
    hooks.onRunner?.(created, built);
    if (flags.metricsPort !== undefined) {
      const port = Number(flags.metricsPort);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        throw new InflowError('INVALID_ARGUMENT', `--metrics-port must be a port number 0-65535, got "${flags.metricsPort}"`);
      }
      registerProcessMetrics(created.metrics.registry);
      const registries = () => [
        created.metrics.registry,
        ...[...built.inferencers.values()].flatMap((i) => ('metrics' in i ? [(i as LocalInference).metrics.registry] : [])),
      ];
      probes = await startStreamProbes(
        port,
        '0.0.0.0',
        () => [...new Set(registries())],
        () => pipelineReady(created, built),
        built.topology.stores.size > 0 ? created.stores : undefined,
      );
      out(`metrics and probes on :${probes.port} (/metrics, /healthz, /readyz${built.topology.stores.size > 0 ? ', /v1/stores' : ''})`);
    }
    status = createStatus(runner.metrics, built.runnerOptions.deadLetterTopic ?? `${config.applicationId}-dlq`);
    await runner.start().catch((error: unknown) => {
      // The runner says which topics are missing; the CLI adds the command that creates them.
      const e = InflowError.from(error);
      if (e.code !== 'KAFKA_TOPIC_NOT_FOUND') throw error;
      throw new InflowError(
        e.code,
        `${e.message}; inflow topics create ${file}${flags.kafka ? ` --kafka ${flags.kafka}` : ''} creates them`,
        { cause: error },
      );
    });
    started = true;
    const t = built.topology;
    out(
      `pipeline ${config.applicationId} running (${config.guarantee}): ${t.inputTopics.join(', ')} → ${t.outputTopics.join(', ')}; Ctrl-C stops`,
    );
    const line = status;
    timer = setInterval(() => void line().then(out, () => undefined), hooks.statusIntervalMs ?? 5000);
    const outcome = await Promise.race([stop.stopped, runner.done.then(() => 'closed')]);
    clearInterval(timer);
    if (outcome !== 'closed') {
      out(`stopping (${outcome}): draining in-flight records, committing…`);
      await runner.close();
    }
    // done rejects with the fatal error when the runner failed (also while draining).
    await runner.done;
    out(`stopped. ${await status(true)}`);
  } catch (error) {
    if (status && started) {
      const line = await status(true).catch(() => '');
      if (line) out(`failed. ${line}`);
    }
    throw error;
  } finally {
    if (timer) clearInterval(timer);
    await probes?.close();
    stop.dispose();
    if (runner) await runner.close().catch(() => undefined);
    await built.close().catch((e: unknown) => logger.warn({ err: (e as Error).message }, 'closing a model source failed'));
    if (!hooks.client) await client.close().catch(() => undefined);
  }
}

/** A built pipeline as `--json` prints it: its file, name, guarantee and topics. */
function pipelineSummary(file: string, built: BuiltPipeline): Record<string, unknown> {
  const t = built.topology;
  return {
    file,
    applicationId: built.config.applicationId,
    guarantee: built.config.guarantee,
    inputTopics: t.inputTopics,
    outputTopics: t.outputTopics,
    deadLetterTopic: built.runnerOptions.deadLetterTopic ?? `${built.config.applicationId}-dlq`,
    nodes: t.nodes.size,
  };
}

/** `inflow validate <pipeline.yaml>`: the checks of `stream --dry-run`, with one line of output (one JSON object with `json`). */
export async function validateCommand(file: string | undefined, out: (line: string) => void, json = false): Promise<void> {
  if (!file) throw new InflowError('INVALID_ARGUMENT', 'a file is required: inflow validate <pipeline.yaml>');
  const config = await loadPipelineFile(file);
  const built = await buildPipeline(config, { baseDir: dirname(file), source: file, dryRun: true });
  await built.close();
  out(
    json
      ? JSON.stringify({ valid: true, ...pipelineSummary(file, built) })
      : `${file}: valid pipeline "${config.applicationId}" (${built.topology.nodes.size} nodes)`,
  );
}
