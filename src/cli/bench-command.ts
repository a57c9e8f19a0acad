/**
 * `inflow bench`: load against a model server (any protocol of the remote client) or through a
 * stream pipeline, with a progress bar and a percentile table. It parses its own flags (main.ts
 * hands it the arguments after `bench`).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { InflowError } from '../errors.ts';
import { createLogger } from '../observability/logger.ts';
import { setRuntimeLogger } from '../runtime/index.ts';
import { benchPipeline } from './bench-pipeline.ts';
import { benchServer } from './bench-server.ts';
import { commandFailed } from './cli-errors.ts';
import { serverInferencer, serverProtocol } from './cli-remote.ts';
import { loadDigitsDataset } from './digits-dataset.ts';
import { digitEvents } from './demo-replay.ts';
import { formatMs, type LatencyRecorder } from './latency-recorder.ts';
import { createLiveLines, progressBar } from './progress.ts';
import { parseInferRequest, readRequestText } from './request-input.ts';
import { formatCount, renderTable } from './text-table.ts';

export const benchHelp = `inflow bench --server <url> --model <name> [options]
inflow bench --pipeline <file.yaml> [options]

Load with a progress bar, then a table of throughput and latency percentiles (exact: every
latency is kept). Against a server: closed-loop callers, each sending its next request when the
last one answered; failures are counted by error code, never retried. Through a pipeline: the
pipeline runs in this process (streams runner), events go to its source topic at --rate, and the
latency is from producing an event to reading its output downstream.

Server options:
  --server <url>        http(s)://host:port (OIP REST) or host:port (OIP gRPC)
  --protocol <p>        oip-rest, oip-grpc, tfserving-rest or tfserving-grpc (default from the URL)
  --model <name>        the model to call
  --input <file|->      the request (OIP v2, TF Serving or a sample; default: the package's
                        models/samples/<model>.json)
  --requests <n>        requests to send (default 2000)
  --concurrency <n>     callers in parallel (default 8)
  --keys <n>            send routing keys k-0 … k-(n-1) in turn (weighted splits route by key)
Pipeline options:
  --pipeline <file>     a pipeline file (see inflow stream --help)
  --kafka <servers>     default: the in-process log; host:port[,…] runs it on that cluster, auto on
                        the broker "inflow kafka up" started
                        (missing topics are created)
  --records <n>         events (default 5000); the bundled digits as {"id", "pixels"} events
  --rate <n>            events per second (default 0: as fast as the producer takes them)
Both: --json (the results as JSON), --verbose (stacks with errors)

Examples:
  inflow bench --server 127.0.0.1:8500 --model digits-mlp --requests 5000 --concurrency 16
  inflow bench --server http://127.0.0.1:8501 --protocol tfserving-rest --model digits-mlp
  inflow bench --pipeline examples/pipelines/digits-embedded.yaml --records 20000
  inflow bench --pipeline examples/pipelines/digits-remote.yaml --rate 2000 --kafka auto`;

const SAMPLES = join(import.meta.dirname, '..', '..', 'models', 'samples');

function count(text: string | undefined, name: string, fallback: number, min = 1): number {
  if (text === undefined) return fallback;
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new InflowError('INVALID_ARGUMENT', `${name} must be an integer ≥ ${min}, got "${text}"`);
  return n;
}

/** The percentile columns of a latency recorder. */
function percentiles(l: LatencyRecorder): Record<string, number> {
  return { p50: l.percentile(50), p90: l.percentile(90), p99: l.percentile(99), p999: l.percentile(99.9), max: l.max, mean: l.mean };
}

function percentileRow(l: LatencyRecorder): string[] {
  const p = percentiles(l);
  return [
    formatMs(p.p50 ?? Number.NaN),
    formatMs(p.p90 ?? Number.NaN),
    formatMs(p.p99 ?? Number.NaN),
    formatMs(p.p999 ?? Number.NaN),
    formatMs(l.max),
  ];
}

/** Stops the run on SIGINT/SIGTERM (results so far are printed). */
function stopOnSignal(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const stop = (): void => controller.abort(new InflowError('CANCELLED', 'stopped by a signal'));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
  };
}

async function run(argv: string[], out: (line: string) => void): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: false,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      json: { type: 'boolean' },
      verbose: { type: 'boolean' },
      server: { type: 'string' },
      protocol: { type: 'string' },
      model: { type: 'string' },
      input: { type: 'string' },
      requests: { type: 'string' },
      concurrency: { type: 'string' },
      keys: { type: 'string' },
      pipeline: { type: 'string' },
      kafka: { type: 'string' },
      records: { type: 'string' },
      rate: { type: 'string' },
    },
  });
  if (values.help) return out(benchHelp);
  if ((values.server === undefined) === (values.pipeline === undefined)) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      'give --server <url> (load a model server) or --pipeline <file.yaml> (load a pipeline); see inflow bench --help',
    );
  }
  const progress = process.stderr;
  const live = createLiveLines(progress);
  const stop = stopOnSignal();
  const logger = createLogger({ name: 'inflow.bench', level: process.env.INFLOW_LOG_LEVEL ?? 'warn' });
  setRuntimeLogger(logger);
  try {
    if (values.server !== undefined) {
      if (!values.model) throw new InflowError('INVALID_ARGUMENT', '--model <name> is required with --server (e.g. --model digits-mlp)');
      const model = values.model;
      const requests = count(values.requests, '--requests', 2000);
      const concurrency = count(values.concurrency, '--concurrency', 8);
      const keys = count(values.keys, '--keys', 0, 0);
      const sample = join(SAMPLES, `${model}.json`);
      const text =
        values.input === undefined && existsSync(sample)
          ? await readFile(sample, 'utf8')
          : await readRequestText(values.input, `models/samples/${model}.json`);
      const protocol = serverProtocol(values.server, values.protocol);
      const inferencer = serverInferencer(values.server, protocol, { maxSockets: Math.max(64, concurrency) });
      try {
        const request = await parseInferRequest(text, { model }, () => inferencer.metadata(model));
        progress.write(`bench ${model} on ${protocol} ${values.server}: ${requests} requests, ${concurrency} in parallel\n`);
        const r = await benchServer({
          inferencer,
          request,
          requests,
          concurrency,
          keys,
          signal: stop.signal,
          onProgress: (done) => live.update([`${progressBar(done, requests)}  ${formatCount(done)}/${formatCount(requests)} requests`]),
        });
        live.finish([`${progressBar(r.sent, requests)}  ${formatCount(r.sent)}/${formatCount(requests)} requests`]);
        const failed = Object.values(r.errors).reduce((a, n) => a + n, 0);
        const rps = r.seconds > 0 ? r.ok / r.seconds : 0;
        if (values.json) {
          out(
            JSON.stringify({
              target: values.server,
              protocol,
              model,
              concurrency,
              sent: r.sent,
              ok: r.ok,
              errors: r.errors,
              seconds: r.seconds,
              requestsPerSecond: rps,
              rowsPerSecond: rps * r.rowsPerRequest,
              latencyMs: percentiles(r.latency),
            }),
          );
        } else {
          for (const line of renderTable([
            ['REQUESTS', 'OK', 'ERRORS', 'REQ/S', 'ROWS/S', 'P50', 'P90', 'P99', 'P99.9', 'MAX'],
            [
              formatCount(r.sent),
              formatCount(r.ok),
              formatCount(failed),
              formatCount(rps),
              formatCount(rps * r.rowsPerRequest),
              ...percentileRow(r.latency),
            ],
          ]))
            out(line);
          if (failed > 0)
            out(
              `errors: ${Object.entries(r.errors)
                .map(([code, n]) => `${code} ${n}`)
                .join(', ')}; first: ${r.firstError ?? ''}`,
            );
        }
        if (r.ok === 0) throw new InflowError('UNAVAILABLE', `no request succeeded; first error: ${r.firstError ?? 'none'}`);
      } finally {
        await inferencer.close();
      }
      return;
    }

    const file = values.pipeline as string;
    const records = count(values.records, '--records', 5000);
    const rate = count(values.rate, '--rate', 0, 0);
    const dataset = await loadDigitsDataset();
    const r = await benchPipeline({
      file,
      kafka: values.kafka,
      records,
      rate,
      event: digitEvents(dataset.pixels, `b${Date.now().toString(36)}`),
      signal: stop.signal,
      logger,
      onStart: (description) => void progress.write(`bench pipeline ${description}: ${records} events${rate ? ` at ${rate}/s` : ''}\n`),
      onProgress: (sent, answered) =>
        live.update([
          `${progressBar(answered, records)}  ${formatCount(answered)}/${formatCount(records)} answered  (${formatCount(sent)} sent)`,
        ]),
    });
    live.finish([
      `${progressBar(r.answered + r.deadLettered, records)}  ${formatCount(r.answered + r.deadLettered)}/${formatCount(records)} answered  (${formatCount(r.sent)} sent)`,
    ]);
    const rps = r.seconds > 0 ? r.answered / r.seconds : 0;
    if (values.json) {
      out(
        JSON.stringify({
          pipeline: file,
          sent: r.sent,
          answered: r.answered,
          deadLettered: r.deadLettered,
          seconds: r.seconds,
          recordsPerSecond: rps,
          latencyMs: percentiles(r.latency),
        }),
      );
    } else {
      for (const line of renderTable([
        ['EVENTS', 'ANSWERED', 'DLQ', 'RECORDS/S', 'P50', 'P90', 'P99', 'P99.9', 'MAX'],
        [formatCount(r.sent), formatCount(r.answered), formatCount(r.deadLettered), formatCount(rps), ...percentileRow(r.latency)],
      ]))
        out(line);
      if (r.answered + r.deadLettered < r.sent)
        out(
          `${r.sent - r.answered - r.deadLettered} events had no output (filtered out by the pipeline, or still in flight when it went idle)`,
        );
    }
  } finally {
    stop.dispose();
  }
}

/** Runs `inflow bench …` (the arguments after `bench`); returns the exit code. */
export async function benchMain(argv: string[], out: (line: string) => void): Promise<number> {
  try {
    await run(argv, out);
    return 0;
  } catch (error) {
    return commandFailed(error, argv);
  }
}
