/**
 * `inflow demo`: both deployment modes side by side, live, on real code paths. It starts the
 * model server (REST + gRPC, admin API, dashboard) on the example models, replays the bundled
 * labelled digits as events into an input topic at a steady rate, and runs two stream pipelines
 * on it with the streams runner — the model EMBEDDED in one, REMOTE on the server in the other —
 * while a downstream consumer scores their predictions against the labels. The in-process log by
 * default (no cluster, no Java); `--kafka auto` or `--kafka host:port` for a real broker.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { InflowError } from '../errors.ts';
import { createLogger } from '../observability/logger.ts';
import { setRuntimeLogger } from '../runtime/index.ts';
import type { RunningModelServer } from '../server/model-server.ts';
import { loadDigitsDataset } from './digits-dataset.ts';
import { createLiveView, type ModeSummary, summarize, summaryTable } from './demo-display.ts';
import { createDemoPipeline, DEMO_PROTOCOLS, type DemoPipeline, type DemoProtocol, demoTopics } from './demo-pipelines.ts';
import { digitEvents, replayDataset } from './demo-replay.ts';
import { type Scoreboard, startScoreboard } from './demo-scoreboard.ts';
import { demoRepository, openDemoKafka, startDemoServer } from './demo-setup.ts';
import { createLiveLines, type ProgressStream, withSpinner } from './progress.ts';

export const demoHelp = `inflow demo [--records N] [--rate R] [--kafka auto|host:port] [options]

Starts the model server on the example models (REST + gRPC, dashboard), replays the bundled
labelled digits (scikit-learn's load_digits, held-out rows) as events into a topic at a steady
rate, and runs two stream pipelines on it: the model EMBEDDED in the pipeline, and REMOTE on the
model server. Shows live progress (records/s, latency, accuracy against the labels) and ends
with a summary table. Ctrl-C stops everything cleanly.

Options:
  --records <n>       events to replay (default 20000)
  --rate <n>          events per second (default 1000; 0 = as fast as possible)
  --kafka <where>     default: the in-process log (no cluster, no Java);
                      auto: start the project's local Kafka broker (Java 17+), stopped at the end;
                      host:port[,host:port]: a running cluster (the demo's topics are deleted after)
  --remote <protocol> how the remote pipeline calls the server: oip-grpc (default), oip-rest,
                      tfserving-grpc, tfserving-rest
  --exactly-once      run both pipelines exactly-once (Kafka transactions; outputs read committed)
  --rest-port <n>     REST/dashboard port (default 8501, or a free one when 8501 is taken)
  --grpc-port <n>     gRPC port (default 8500, or a free one when 8500 is taken)
  --stay              keep the server and dashboard up after the summary, until Ctrl-C
  --json              print the summary as JSON (progress goes to stderr)
  --scene <name>      card-payments: the stateful example instead (examples/pipelines/card-payments.yaml:
                      per-card window features + a merchants table → card-fraud-gbt; takes --kafka,
                      --rate (default 300), --json)
                      monitoring: live accuracy and drift on a stream whose images shift part-way, a
                      guarded rollout of a broken version rolled back and of a retrained one promoted
                      (takes --kafka, --rate (default 1000), --rest-port, --stay, --json)
  --avro              with --scene card-payments: Avro records under the Schema Registry at SCHEMA_REGISTRY_URL

Examples:
  inflow demo
  inflow demo --records 2000 --rate 2000
  inflow demo --kafka auto --exactly-once
  inflow demo --kafka 127.0.0.1:9092 --remote oip-rest --stay
  inflow demo --scene card-payments
  inflow demo --scene monitoring
  SCHEMA_REGISTRY_URL=http://127.0.0.1:8081/apis/ccompat/v7 inflow demo --scene card-payments --avro --kafka auto`;

/** Flags of `inflow demo`, as typed. */
export interface DemoFlags {
  readonly records?: string | undefined;
  readonly rate?: string | undefined;
  readonly kafka?: string | undefined;
  readonly remote?: string | undefined;
  readonly exactlyOnce?: boolean | undefined;
  readonly restPort?: string | undefined;
  readonly grpcPort?: string | undefined;
  readonly stay?: boolean | undefined;
  readonly json?: boolean | undefined;
  /** A scene instead of the two-mode demo (demo-stateful.ts). */
  readonly scene?: string | undefined;
  readonly avro?: boolean | undefined;
}

/** Stops the run when predictions stop arriving for this long, ms. */
const STALL_MS = 30_000;

function integer(text: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new InflowError('INVALID_ARGUMENT', `${name} must be an integer ${min}-${max}, got "${text}"`);
  return n;
}

/** `promise`, or DEADLINE_EXCEEDED with `message` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new InflowError('DEADLINE_EXCEEDED', message)), ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** SIGINT/SIGTERM abort the run (a second one exits at once with 130). */
function onStopSignal(controller: AbortController, err: ProgressStream): () => void {
  let first = true;
  const handler = (name: string): void => {
    if (!first) process.exit(130);
    first = false;
    err.write(`\n${name}: stopping everything (a second Ctrl-C exits at once)…\n`);
    controller.abort(new InflowError('CANCELLED', `stopped by ${name}`));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

/** Runs the demo; resolves when it ended (summary printed) and everything it started is stopped. */
export async function demoCommand(flags: DemoFlags, out: (line: string) => void): Promise<void> {
  if (flags.scene === 'monitoring') {
    if (flags.avro) throw new InflowError('INVALID_ARGUMENT', '--avro applies to --scene card-payments, not to --scene monitoring');
    const { monitoringDemo } = await import('./demo-monitoring.ts');
    return monitoringDemo(flags, out);
  }
  if (flags.scene !== undefined || flags.avro) {
    const { DEMO_SCENES, statefulDemo } = await import('./demo-stateful.ts');
    if (!DEMO_SCENES.includes(flags.scene as (typeof DEMO_SCENES)[number]))
      throw new InflowError('INVALID_ARGUMENT', `--scene must be one of ${DEMO_SCENES.join(', ')}, got "${flags.scene ?? ''}"`);
    return statefulDemo(flags, out);
  }
  const records = integer(flags.records, '--records', 20_000, 1, 10_000_000);
  const rate = integer(flags.rate, '--rate', 1000, 0, 1_000_000);
  const protocol = (flags.remote ?? 'oip-grpc') as DemoProtocol;
  if (!DEMO_PROTOCOLS.includes(protocol)) {
    throw new InflowError('INVALID_ARGUMENT', `--remote must be one of ${DEMO_PROTOCOLS.join(', ')}, got "${flags.remote ?? ''}"`);
  }
  const restPort = flags.restPort === undefined ? undefined : integer(flags.restPort, '--rest-port', 0, 0, 65535);
  const grpcPort = flags.grpcPort === undefined ? undefined : integer(flags.grpcPort, '--grpc-port', 0, 0, 65535);
  const progress: ProgressStream = flags.json ? process.stderr : process.stdout;
  const say = (line: string): void => void progress.write(`${line}\n`);
  const logger = createLogger({ name: 'inflow.demo', level: process.env.INFLOW_LOG_LEVEL ?? 'warn' });
  setRuntimeLogger(logger);

  const dataset = await loadDigitsDataset();
  const stop = new AbortController();
  const unlisten = onStopSignal(stop, progress);
  // Undo steps, run last-in first-out whatever happens.
  const undo: Array<{ what: string; run: () => Promise<unknown> }> = [];
  const run = randomUUID().slice(0, 8);
  const topics = demoTopics(run);
  let server: RunningModelServer | undefined;
  const pipelines: DemoPipeline[] = [];
  let scoreboard: Scoreboard | undefined;
  try {
    const kafka = await openDemoKafka(flags.kafka, progress);
    undo.push({ what: 'Kafka client', run: () => kafka.close() });
    const admin = kafka.client.admin();
    undo.push({ what: 'Kafka admin', run: () => admin.close() });
    await admin.createTopics([
      { topic: topics.input, partitions: 4 },
      { topic: topics.scored.embedded, partitions: 4 },
      { topic: topics.scored.remote, partitions: 4 },
      { topic: topics.dlq.embedded, partitions: 1 },
      { topic: topics.dlq.remote, partitions: 1 },
    ]);
    if (kafka.external) {
      const all = [topics.input, ...Object.values(topics.scored), ...Object.values(topics.dlq)];
      undo.push({ what: 'demo topics', run: () => admin.deleteTopics(all) });
    }
    say(`inflow demo on ${kafka.description}: ${records.toLocaleString('en-US')} events at ${rate > 0 ? `${rate}/s` : 'full speed'}`);

    const repo = await demoRepository();
    undo.push({ what: 'scratch model repository', run: () => repo.remove() });
    const adminToken = randomBytes(12).toString('hex');
    server = await withSpinner(
      progress,
      'loading and warming up the example models, starting the model server',
      startDemoServer({
        modelRepository: repo.root,
        restPort,
        grpcPort,
        adminToken,
        logger,
        pipelines: () => pipelines.map((p) => ({ name: p.mode, registry: p.runner.metrics.registry, status: () => p.runner.stats() })),
      }),
      (s) => `model server: ${s.inference.repository.models().length} models, REST ${s.restAddress ?? '-'}, gRPC ${s.grpcAddress ?? '-'}`,
    );
    const running = server;
    undo.push({ what: 'model server', run: () => running.close() });
    const remoteUrl = protocol.endsWith('-rest') ? `http://${running.restAddress ?? ''}` : (running.grpcAddress ?? '');
    const settings = { run, topics, modelRepository: repo.root, remoteUrl, protocol, exactlyOnce: flags.exactlyOnce ?? false };
    for (const mode of ['embedded', 'remote'] as const) {
      const p = await withSpinner(progress, `building the ${mode} pipeline`, createDemoPipeline(mode, settings, kafka.client, logger));
      pipelines.push(p);
      undo.push({ what: `${mode} pipeline`, run: () => p.runner.close().finally(() => p.built.close()) });
    }
    const dashboard = `http://${running.restAddress ?? ''}/dashboard/#admin=${adminToken}`;
    say(`dashboard: ${dashboard}`);
    say(`  embedded: digits-mlp runs inside the pipeline (exactly what "inflow stream" runs)`);
    say(`  remote:   the pipeline calls the model server over ${protocol} at ${remoteUrl}`);
    say(`  digits-mlp v2 is a copy of v1 in a scratch repository: a 90/10 split and a 10 % shadow to watch and edit`);

    const sentAt = new Float64Array(records).fill(Number.NaN);
    scoreboard = await startScoreboard({
      client: kafka.client,
      groupId: `inflow-demo-scoreboard-${run}`,
      topics: topics.scored,
      labels: dataset.labels,
      sentAt,
      readCommitted: flags.exactlyOnce ?? false,
    });
    const board = scoreboard;
    undo.push({ what: 'scoreboard', run: () => board.close() });
    // On a real broker joining a group takes a moment: start measuring once every reader is in.
    await within(board.assigned, 30_000, 'the demo consumer got no partitions within 30 s; is the cluster healthy?');
    for (const p of pipelines) {
      await p.runner.start();
      // A pipeline that fails ends the run with its error.
      p.runner.done.catch((error: unknown) => stop.abort(InflowError.from(error)));
    }

    const producer = kafka.client.producer();
    undo.push({ what: 'producer', run: () => producer.close() });
    const live = createLiveLines(progress);
    const view = createLiveView(records, board.modes);
    let sent = 0;
    let lastProgress = { at: performance.now(), scored: 0 };
    const ticker = setInterval(() => {
      live.update(view(sent));
      const scored = [...board.modes.values()].reduce((a, s) => a + s.scored, 0);
      const now = performance.now();
      if (scored !== lastProgress.scored) lastProgress = { at: now, scored };
      else if (now - lastProgress.at > STALL_MS) {
        stop.abort(
          new InflowError(
            'DEADLINE_EXCEEDED',
            `no prediction arrived for ${STALL_MS / 1000} s; see the log on stderr (INFLOW_LOG_LEVEL=info)`,
          ),
        );
      }
    }, 250);
    const replayStartedAt = performance.now();
    let outcome: unknown;
    try {
      sent = await replayDataset({
        producer,
        topic: topics.input,
        event: digitEvents(dataset.pixels),
        records,
        rate,
        sentAt,
        signal: stop.signal,
        onProgress: (n) => void (sent = n),
      });
      await board.complete(records, stop.signal);
    } catch (error) {
      outcome = error;
    } finally {
      clearInterval(ticker);
    }
    live.finish(view(sent));
    if (stop.signal.aborted) outcome = stop.signal.reason;
    const cancelled = outcome instanceof InflowError && outcome.code === 'CANCELLED';
    if (outcome !== undefined && !cancelled) throw InflowError.from(outcome);

    const summaries: ModeSummary[] = [];
    for (const p of pipelines) {
      const score = board.modes.get(p.mode);
      if (!score) continue;
      const dlq = (await p.runner.metrics.deadLettered.get()).values.reduce((a, v) => a + v.value, 0);
      summaries.push(summarize(p.mode, p.mode === 'embedded' ? 'in the pipeline' : `server, ${protocol}`, score, replayStartedAt, dlq));
    }
    if (flags.json) {
      out(JSON.stringify({ records, sent, rate, kafka: kafka.description, stoppedEarly: cancelled, dashboard, modes: summaries }));
    } else {
      out('');
      out(cancelled ? `stopped after ${sent} of ${records} events; what was scored so far:` : `summary (${dataset.source}):`);
      for (const line of summaryTable(summaries)) out(line);
      out('latency: from handing an event to the producer to reading its prediction downstream (end to end, both via Kafka)');
    }
    if (flags.stay && !cancelled) {
      say(`the model server and the dashboard stay up: ${dashboard} — Ctrl-C stops`);
      await new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }));
    }
  } finally {
    unlisten();
    for (const step of undo.reverse()) {
      await step.run().catch((error: unknown) => logger.warn({ err: (error as Error).message }, `stopping the ${step.what} failed`));
    }
    logger.flush();
  }
}
