/**
 * `inflow stream --threads N` (or `threads: N` in the pipeline file): N stream threads in one
 * instance, as Kafka Streams' `num.stream.threads`. Each thread is a worker thread running the
 * whole pipeline (stream-thread-worker.ts) with its own consumer in the application's group —
 * the group spreads the input partitions over them as over instances — its own producer and
 * transactional id (`<instanceId>-t<index>`, so exactly-once holds per thread) and its own copy
 * of the embedded models. One event loop per thread is what lets a pipeline use the cores it is
 * given: decoding, batching and producing run on every thread at once.
 *
 * This process only coordinates: it prints each thread's lines prefixed with `[thread i]`, serves
 * one `--metrics-port` for the instance (metrics summed over the threads, `/readyz` ready only
 * while every thread is), forwards SIGINT/SIGTERM as a drain to every thread, and when one thread
 * fails it stops the others and fails the instance with that thread's error.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, Registry } from 'prom-client';
import { InflowError, type ErrorCode } from '../errors.ts';
import { registerProcessMetrics } from '../observability/metrics.ts';
import { loadPipelineFile } from '../streams/pipeline/index.ts';
import { type StreamFlags, streamCommand } from './stream-command.ts';
import { type StreamProbes, startStreamProbes } from './stream-probes.ts';

/** What a stream thread starts with. */
export interface StreamThreadInit {
  readonly file: string;
  readonly kafka?: string | undefined;
  readonly applicationServer?: string | undefined;
  /** `--state-dir`: every thread keeps its tasks' stores under it (tasks are disjoint, so are their directories). */
  readonly stateDir?: string | undefined;
  readonly index: number;
  readonly statusIntervalMs?: number;
}

/** Coordinator → thread. */
export type ToStreamThread = { readonly type: 'stop' } | { readonly type: 'probe'; readonly id: number };

/** Thread → coordinator. */
export type FromStreamThread =
  | { readonly type: 'line'; readonly line: string }
  | {
      readonly type: 'probe';
      readonly id: number;
      readonly ready: boolean;
      readonly metrics: ReadonlyArray<MetricObjectWithValues<MetricValue<string>>>;
    }
  | { readonly type: 'stopped' }
  | { readonly type: 'failed'; readonly code: ErrorCode; readonly message: string };

/**
 * The thread count a `--threads` / `threads:` value asks for: a positive integer, or `auto` for
 * the CPUs this process may use (os.availableParallelism(): the affinity mask and, where libuv
 * reads it, the cgroup CPU quota).
 * @throws InflowError INVALID_ARGUMENT for anything else.
 */
export function threadCount(value: string | number | undefined, fallback = 1): number {
  if (value === undefined) return fallback;
  if (value === 'auto') return availableParallelism();
  const n = typeof value === 'number' ? value : /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > 256) {
    throw new InflowError('INVALID_ARGUMENT', `--threads must be a whole number 1-256 or "auto" (the CPUs available), got "${value}"`);
  }
  return n;
}

/** What tests inject instead of the process's signals and the default intervals. */
export interface StreamThreadsHooks {
  /** Aborting it drains every thread like SIGINT (the process signals are not listened to then). */
  readonly signal?: AbortSignal;
  /** Each thread's status line interval, ms (default 5000). */
  readonly statusIntervalMs?: number;
  /** How often the coordinator asks the threads for readiness and metrics, ms (default 1000). */
  readonly probeIntervalMs?: number;
  /** Called with the probes' port once they listen. */
  readonly onProbes?: (port: number) => void;
}

const workerUrl = new URL(import.meta.url.endsWith('.ts') ? './stream-thread-worker.ts' : './stream-thread-worker.js', import.meta.url);

/**
 * Runs the pipeline of `flags.file` as `threads` stream threads until stopped.
 * @throws InflowError with the failing thread's code and message (naming the thread) when one fails.
 */
export async function streamThreadsCommand(
  flags: StreamFlags,
  threads: number,
  out: (line: string) => void,
  hooks: StreamThreadsHooks = {},
): Promise<void> {
  if (flags.file === undefined) throw new InflowError('INVALID_ARGUMENT', 'a pipeline file is required: inflow stream <pipeline.yaml>');
  const file = flags.file;
  let failure: { index: number; code: ErrorCode; message: string } | undefined;
  let stopping = false;
  const workers: Worker[] = [];
  const probeWaiters = new Map<number, Array<(m: Extract<FromStreamThread, { type: 'probe' }>) => void>>();
  const stopAll = (): void => {
    stopping = true;
    for (const w of workers) w.postMessage({ type: 'stop' } satisfies ToStreamThread);
  };
  const fail = (index: number, code: ErrorCode, message: string): void => {
    if (failure === undefined) {
      failure = { index, code, message };
      out(`thread ${index} failed (${code}): ${message}; stopping the other threads`);
    }
    stopAll();
  };

  const exits = Array.from({ length: threads }, (_, index) => {
    const init: StreamThreadInit = {
      file,
      kafka: flags.kafka,
      applicationServer: flags.applicationServer,
      stateDir: flags.stateDir,
      index,
      ...(hooks.statusIntervalMs === undefined ? {} : { statusIntervalMs: hooks.statusIntervalMs }),
    };
    const worker = new Worker(workerUrl, { workerData: init });
    workers.push(worker);
    let ended = false;
    worker.on('message', (m: FromStreamThread) => {
      if (m.type === 'line') out(`[thread ${index}] ${m.line}`);
      else if (m.type === 'probe') for (const w of probeWaiters.get(m.id)?.splice(0) ?? []) w(m);
      else if (m.type === 'stopped') ended = true;
      else {
        ended = true;
        fail(index, m.code, m.message);
      }
    });
    // An exception the thread did not catch (a bug, or out of memory): the instance fails with it.
    worker.on('error', (error: Error) => fail(index, 'INTERNAL', `the thread crashed: ${error.message}`));
    return new Promise<void>((resolve) =>
      worker.once('exit', (code) => {
        if (!ended && failure === undefined) fail(index, 'INTERNAL', `the thread exited (code ${code}) without stopping cleanly`);
        else if (!ended && !stopping) stopAll();
        resolve();
      }),
    );
  });
  const allExited = Promise.all(exits);

  // One /metrics and /readyz for the instance: the threads' metrics summed, ready while all are.
  let probes: StreamProbes | undefined;
  let probeTimer: ReturnType<typeof setInterval> | undefined;
  let aggregated = new Registry();
  let allReady = false;
  const processMetrics = new Registry();
  if (flags.metricsPort !== undefined) {
    const port = Number(flags.metricsPort);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      stopAll();
      await allExited;
      throw new InflowError('INVALID_ARGUMENT', `--metrics-port must be a port number 0-65535, got "${flags.metricsPort}"`);
    }
    registerProcessMetrics(processMetrics);
    let round = 0;
    const lastMetrics: Array<MetricObjectWithValues<MetricValue<string>>[] | undefined> = workers.map(() => undefined);
    const probe = async (): Promise<void> => {
      const id = ++round;
      const answers = await Promise.all(
        workers.map(
          (w) =>
            new Promise<Extract<FromStreamThread, { type: 'probe' }> | undefined>((resolve) => {
              const list = probeWaiters.get(id) ?? [];
              list.push(resolve);
              probeWaiters.set(id, list);
              w.postMessage({ type: 'probe', id } satisfies ToStreamThread);
              // A thread that does not answer within the interval counts as not ready.
              setTimeout(() => resolve(undefined), hooks.probeIntervalMs ?? 1000).unref();
            }),
        ),
      );
      probeWaiters.delete(id);
      allReady = failure === undefined && !stopping && answers.every((a) => a?.ready === true);
      // A thread too busy to answer within the interval keeps its last metrics in the sum: leaving
      // it out would make the instance's counters go backwards (Prometheus reads that as a reset).
      answers.forEach((a, i) => {
        if (a) lastMetrics[i] = a.metrics as MetricObjectWithValues<MetricValue<string>>[];
      });
      aggregated = AggregatorRegistry.aggregate(lastMetrics.filter((m) => m !== undefined));
    };
    probeTimer = setInterval(() => void probe(), hooks.probeIntervalMs ?? 1000);
    probes = await startStreamProbes(
      port,
      '0.0.0.0',
      () => [aggregated, processMetrics],
      () => allReady && failure === undefined && !stopping,
    );
    hooks.onProbes?.(probes.port);
    out(`metrics and probes on :${probes.port} (/metrics, /healthz, /readyz) for ${threads} stream threads`);
  }
  out(`${threads} stream threads`);

  const onSignal = (name: string): void => {
    if (stopping) {
      out(`${name} again: exiting without draining (uncommitted records are reprocessed on restart)`);
      process.exit(130);
    }
    out(`stopping (${name}): draining every thread…`);
    stopAll();
  };
  const sigint = (): void => onSignal('SIGINT');
  const sigterm = (): void => onSignal('SIGTERM');
  if (hooks.signal) {
    if (hooks.signal.aborted) stopAll();
    else
      hooks.signal.addEventListener(
        'abort',
        () => {
          if (stopping) return;
          out('stopping (abort): draining every thread…');
          stopAll();
        },
        { once: true },
      );
  } else {
    process.on('SIGINT', sigint);
    process.on('SIGTERM', sigterm);
  }
  try {
    await allExited;
  } finally {
    if (probeTimer) clearInterval(probeTimer);
    await probes?.close();
    process.off('SIGINT', sigint);
    process.off('SIGTERM', sigterm);
  }
  if (failure !== undefined) {
    throw new InflowError(failure.code, `stream thread ${failure.index} of ${threads} failed: ${failure.message}`);
  }
}

/**
 * `inflow stream`: with more than one stream thread (`--threads`, else the file's `threads:`)
 * the pipeline runs as stream threads, else in this thread as before.
 */
export async function streamMain(
  flags: StreamFlags & { readonly threads?: string | undefined },
  out: (line: string) => void,
): Promise<void> {
  const { threads: flag, ...rest } = flags;
  if (flags.dryRun || flags.file === undefined) return await streamCommand(rest, out);
  const n = threadCount(flag ?? (await loadPipelineFile(flags.file)).threads);
  if (n === 1) return await streamCommand(rest, out);
  return await streamThreadsCommand(rest, n, out);
}
