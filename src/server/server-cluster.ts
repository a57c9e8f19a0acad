/**
 * One model-server process per core (node:cluster). The primary forks `workers` processes; each
 * loads its own copy of the models and runs its own model server on the same REST and gRPC ports:
 * the primary owns the listening sockets and hands each new connection to a worker, round-robin
 * on Linux (keep-alive connections stay on their worker). Port 0 works too: every worker gets the
 * one port the primary picked.
 *
 * The primary loads no model and serves nothing. It logs each worker's pid, forwards SIGTERM and
 * SIGINT to the workers, waits (bounded) for them to drain, and replaces a worker that exits while
 * the cluster runs — with backoff, and giving up after a run of fast crashes (see
 * {@link createRestartPolicy}) so a broken deployment stops instead of looping.
 *
 * Both sides call {@link startServerCluster}: a worker is the same script re-run by cluster.fork(),
 * and reaches the same call, which starts its server instead of forking.
 *
 * Limitation: each worker has its own router and repository, so run-time admin calls (label moves,
 * splits, load/unload) would reach one worker only; the cluster refuses admin options when
 * `workers > 1`.
 */
import cluster, { type Worker } from 'node:cluster';
import { Gauge } from 'prom-client';
import { InflowError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';
import type { RunningModelServer } from './model-server.ts';

/** Options of {@link createRestartPolicy}. */
export interface RestartPolicyOptions {
  /** A worker that exits less than this long after it was forked crashed "fast", ms. Default 10 000. */
  fastCrashMs?: number;
  /** Fast crashes in a row (across all workers) after which the cluster gives up. Default 5. */
  maxFastCrashes?: number;
  /** Delay before replacing a worker, ms; doubles with each fast crash in the run. Default 100. */
  initialDelayMs?: number;
  /** Cap on that delay, ms. Default 10 000. */
  maxDelayMs?: number;
}

/** What to do about a worker that exited: replace it after `delayMs`, or give up. */
export type RestartDecision =
  | { readonly restart: true; readonly delayMs: number }
  | { readonly restart: false; readonly fastCrashes: number; readonly reason: string };

/** Decides about each exit in turn (it counts fast crashes in a row). */
export interface RestartPolicy {
  onExit(ranMs: number): RestartDecision;
}

/**
 * Exponential backoff over a run of fast crashes: a worker that ran at least `fastCrashMs` resets
 * the run and is replaced after `initialDelayMs`; the n-th fast crash in a row waits
 * `initialDelayMs · 2^(n-1)` (capped at `maxDelayMs`), and the `maxFastCrashes`-th gives up.
 */
export function createRestartPolicy(options: RestartPolicyOptions = {}): RestartPolicy {
  const fastCrashMs = options.fastCrashMs ?? 10_000;
  const maxFastCrashes = options.maxFastCrashes ?? 5;
  const initialDelayMs = options.initialDelayMs ?? 100;
  const maxDelayMs = options.maxDelayMs ?? 10_000;
  for (const [name, value] of Object.entries({ fastCrashMs, initialDelayMs, maxDelayMs })) {
    if (!Number.isFinite(value) || value < 0)
      throw new InflowError('INVALID_CONFIG', `restart.${name} must be a number ≥ 0 (ms), got ${value}`);
  }
  if (!Number.isInteger(maxFastCrashes) || maxFastCrashes < 1) {
    throw new InflowError('INVALID_CONFIG', `restart.maxFastCrashes must be an integer ≥ 1, got ${maxFastCrashes}`);
  }
  let fastCrashes = 0;
  return {
    onExit(ranMs) {
      if (ranMs >= fastCrashMs) {
        fastCrashes = 0;
        return { restart: true, delayMs: initialDelayMs };
      }
      fastCrashes++;
      if (fastCrashes >= maxFastCrashes) {
        return {
          restart: false,
          fastCrashes,
          reason: `${fastCrashes} workers in a row exited less than ${fastCrashMs} ms after they started`,
        };
      }
      return { restart: true, delayMs: Math.min(maxDelayMs, initialDelayMs * 2 ** (fastCrashes - 1)) };
    },
  };
}

/** Options of {@link startServerCluster}. */
export interface ServerClusterOptions {
  /** Worker processes, ≥ 1 (the CLI's `auto` is os.availableParallelism()). */
  workers: number;
  /**
   * Starts this worker's model server (runs in each worker, never in the primary). Must not enable
   * admin APIs when `workers > 1`: pass `adminEnabled` so the cluster can refuse that at start.
   */
  startWorker: () => Promise<RunningModelServer>;
  /** Whether `startWorker` turns on an admin API; refused with FAILED_PRECONDITION when `workers > 1`. */
  adminEnabled?: boolean;
  /**
   * Bound on a worker's drain at shutdown, ms: set it to the server's own `shutdownGraceMs`. The
   * primary SIGKILLs a worker still running 5 s (unloading, exiting) after it. Default 10 000.
   */
  shutdownGraceMs?: number;
  restart?: RestartPolicyOptions;
  /** Install SIGTERM/SIGINT handlers (primary: forward and stop; worker: drain and exit). Default true. */
  handleSignals?: boolean;
  logger?: Logger;
}

/** What one worker reports once its server listens. */
export interface WorkerReady {
  readonly pid: number;
  readonly restAddress: string | undefined;
  readonly grpcAddress: string | undefined;
  readonly models: readonly string[];
}

/** A running cluster, as seen from the process that called {@link startServerCluster}. */
export interface ServerCluster {
  readonly role: 'primary' | 'worker';
  /** Primary: the first worker's report (all workers serve the same addresses). Worker: its own. */
  readonly ready: WorkerReady;
  /** Primary: pids of the workers alive now. Worker: its own pid. */
  pids(): number[];
  /**
   * Resolves once everything stopped, with the exit code the process should end with: 0 after a
   * clean shutdown, 1 when a worker did not exit 0 in time or the cluster gave up on crashes.
   */
  readonly done: Promise<number>;
  /** Why `done` resolved with 1 (gave up on crashes, a worker did not stop cleanly); undefined otherwise. */
  readonly failure: string | undefined;
  /** Stops: primary — SIGTERM to every worker, wait (bounded), SIGKILL the rest; worker — drain and close. */
  close(): Promise<number>;
}

/** IPC messages between primary and workers (tagged so other users of the channel are ignored). */
type WorkerMessage = { inflow: 'ready'; ready: WorkerReady } | { inflow: 'failed'; code: string; message: string };

function isWorkerMessage(value: unknown): value is WorkerMessage {
  return typeof value === 'object' && value !== null && 'inflow' in value;
}

/** Extra time the primary gives a worker beyond its drain bound, for unloading models and exiting, ms. */
const EXIT_MARGIN_MS = 5_000;

/**
 * Starts the cluster. In the primary: forks the workers and resolves once all of them listen
 * (rejects with the first worker's start-up error, after stopping the others). In a worker:
 * starts its server, tells the primary, and resolves.
 */
export async function startServerCluster(options: ServerClusterOptions): Promise<ServerCluster> {
  if (!Number.isInteger(options.workers) || options.workers < 1) {
    throw new InflowError('INVALID_ARGUMENT', `workers must be an integer ≥ 1, got ${options.workers}`);
  }
  if (options.workers > 1 && options.adminEnabled === true) {
    throw new InflowError(
      'FAILED_PRECONDITION',
      `the admin API cannot be used with ${options.workers} workers: an admin call (label move, split, load/unload) would reach one worker only; run one worker to use it`,
    );
  }
  return cluster.isPrimary ? startPrimary(options) : startWorkerProcess(options);
}

/** The worker side: start the server, report, drain on SIGTERM/SIGINT. */
async function startWorkerProcess(options: ServerClusterOptions): Promise<ServerCluster> {
  const log = options.logger ?? silentLogger;
  let stopRequested = false;
  let server: RunningModelServer | undefined;
  let closing: Promise<number> | undefined;
  const { promise: done, resolve: resolveDone } = Promise.withResolvers<number>();
  const close = (): Promise<number> => {
    stopRequested = true;
    if (!server) return done; // still starting: closes as soon as the server is up
    const running = server;
    closing ??= (async () => {
      await running.close();
      // Servers are closed already: this only drops the IPC channel, so the process can exit.
      cluster.worker?.disconnect();
      resolveDone(0);
      return 0;
    })();
    return closing;
  };
  const onSignal = (): void => void close();
  const removeSignalHandlers = (): void => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
  if (options.handleSignals !== false) {
    // Installed before the models load: a signal during start-up must still end in a clean exit.
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  try {
    server = await options.startWorker();
  } catch (error) {
    const e = InflowError.from(error);
    removeSignalHandlers();
    process.send?.({ inflow: 'failed', code: e.code, message: e.message } satisfies WorkerMessage);
    // Without the IPC channel nothing keeps this process alive: it exits once the caller reports the error.
    cluster.worker?.disconnect();
    resolveDone(1);
    throw e;
  }
  const ready: WorkerReady = {
    pid: process.pid,
    restAddress: server.restAddress,
    grpcAddress: server.grpcAddress,
    models: server.inference.repository.models(),
  };
  // Which worker answered is visible on /metrics (the REST transport serves this registry).
  new Gauge({
    name: 'inflow_cluster_worker_info',
    help: 'This process is a cluster worker: its pid and cluster worker id (value always 1)',
    labelNames: ['pid', 'worker_id'],
    registers: [server.inference.metrics.registry],
  }).set({ pid: String(process.pid), worker_id: String(cluster.worker?.id ?? 0) }, 1);
  log.info({ worker: cluster.worker?.id }, 'cluster worker ready');
  process.send?.({ inflow: 'ready', ready } satisfies WorkerMessage);
  if (stopRequested) void close();
  void done.then(removeSignalHandlers);
  return { role: 'worker', ready, pids: () => [process.pid], done, failure: undefined, close };
}

interface Slot {
  readonly worker: Worker;
  readonly forkedAt: number;
  ready: boolean;
}

/** The primary side: fork, supervise, restart, forward signals, stop. */
async function startPrimary(options: ServerClusterOptions): Promise<ServerCluster> {
  const log = options.logger ?? silentLogger;
  const policy = createRestartPolicy(options.restart);
  const exitBoundMs = (options.shutdownGraceMs ?? 10_000) + EXIT_MARGIN_MS;
  const slots = new Map<number, Slot>();
  const restartTimers = new Set<NodeJS.Timeout>();
  let phase: 'starting' | 'running' | 'stopping' = 'starting';
  let exitCode = 0;
  let failure: string | undefined;
  let firstReady: WorkerReady | undefined;
  let startFailure: InflowError | undefined;
  let lastFailure: { code: string; message: string } | undefined;

  const { promise: done, resolve: resolveDone } = Promise.withResolvers<number>();
  const { promise: started, resolve: resolveStarted } = Promise.withResolvers<undefined>();

  function fork(): void {
    const worker = cluster.fork();
    const slot: Slot = { worker, forkedAt: performance.now(), ready: false };
    slots.set(worker.id, slot);
    log.info({ worker: worker.id, workerPid: worker.process.pid }, 'cluster worker forked');
    worker.on('message', (message: unknown) => {
      if (!isWorkerMessage(message)) return;
      if (message.inflow === 'failed') {
        lastFailure = { code: message.code, message: message.message };
        return;
      }
      slot.ready = true;
      lastFailure = undefined;
      firstReady ??= message.ready;
      log.info(
        { worker: worker.id, workerPid: message.ready.pid, rest: message.ready.restAddress, grpc: message.ready.grpcAddress },
        'cluster worker listening',
      );
      if (phase === 'starting' && [...slots.values()].filter((s) => s.ready).length === options.workers) {
        phase = 'running';
        resolveStarted(undefined);
      }
    });
    worker.on('exit', (code, signal) => onExit(slot, code, signal));
  }

  function onExit(slot: Slot, code: number | null, signal: string | null): void {
    slots.delete(slot.worker.id);
    const pid = slot.worker.process.pid;
    if (phase === 'stopping') {
      if (code !== 0) {
        exitCode = 1;
        failure ??= `cluster worker ${pid} did not stop cleanly (code ${code}, signal ${signal})`;
      }
      log.info({ worker: slot.worker.id, workerPid: pid, code, signal }, 'cluster worker stopped');
      if (slots.size === 0) resolveDone(exitCode);
      return;
    }
    const ranMs = performance.now() - slot.forkedAt;
    log.warn({ worker: slot.worker.id, workerPid: pid, code, signal, ranMs: Math.round(ranMs) }, 'cluster worker exited');
    if (phase === 'starting') {
      // A worker that cannot start (bad repository, port in use) would fail the same way again.
      const why = lastFailure ? lastFailure.message : `it exited (code ${code}, signal ${signal}) before listening`;
      const errorCode = lastFailure && InflowError.isCode(lastFailure.code) ? lastFailure.code : 'UNAVAILABLE';
      startFailure = new InflowError(errorCode, `cluster worker ${pid} failed to start: ${why}`);
      void stop('SIGTERM', 1);
      return;
    }
    const decision = policy.onExit(ranMs);
    if (!decision.restart) {
      const detail = lastFailure ? `; the last one said: ${lastFailure.message}` : '';
      failure = `gave up restarting cluster workers: ${decision.reason}${detail}`;
      log.error({ fastCrashes: decision.fastCrashes }, failure);
      void stop('SIGTERM', 1);
      return;
    }
    log.info({ delayMs: decision.delayMs }, 'replacing the cluster worker');
    const timer = setTimeout(() => {
      restartTimers.delete(timer);
      if (phase !== 'stopping') fork();
    }, decision.delayMs);
    restartTimers.add(timer);
  }

  let stopping: Promise<number> | undefined;
  function stop(signal: NodeJS.Signals, code: number): Promise<number> {
    stopping ??= (async () => {
      phase = 'stopping';
      exitCode = Math.max(exitCode, code);
      for (const timer of restartTimers) clearTimeout(timer);
      restartTimers.clear();
      if (slots.size === 0) resolveDone(exitCode);
      log.info({ signal, workerPids: [...slots.values()].map((s) => s.worker.process.pid) }, 'stopping cluster workers');
      for (const { worker } of slots.values()) worker.process.kill(signal);
      const killer = setTimeout(() => {
        for (const { worker } of slots.values()) {
          log.warn({ workerPid: worker.process.pid, boundMs: exitBoundMs }, 'cluster worker did not exit in time; killing it');
          worker.process.kill('SIGKILL');
        }
        exitCode = 1;
      }, exitBoundMs);
      const result = await done;
      clearTimeout(killer);
      return result;
    })();
    return stopping;
  }

  const onSignal = (signal: NodeJS.Signals): void => void stop(signal, 0);
  if (options.handleSignals !== false) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    void done.then(() => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    });
  }

  log.info({ workers: options.workers }, 'starting cluster workers (this process is the primary)');
  for (let i = 0; i < options.workers; i++) fork();
  // Up when every worker listens; down when a worker failed to start (the others are stopped first).
  if ((await Promise.race([started.then(() => 'up' as const), done.then(() => 'down' as const)])) === 'down') {
    throw startFailure ?? new InflowError('UNAVAILABLE', 'the cluster was stopped before its workers were listening');
  }
  return {
    role: 'primary',
    // `started` resolved: every worker reported, so the first report exists.
    ready: firstReady as WorkerReady,
    pids: () => [...slots.values()].flatMap((s) => (s.worker.process.pid === undefined ? [] : [s.worker.process.pid])),
    done,
    get failure() {
      return failure;
    },
    close: () => stop('SIGTERM', 0),
  };
}
