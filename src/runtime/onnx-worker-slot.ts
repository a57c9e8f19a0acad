/**
 * One session worker of the onnx servable: starting it (a thread running onnx-worker.ts, or a
 * fake in tests), waiting for its session, and stopping it. The servable keeps its calls here.
 */
import { Worker } from 'node:worker_threads';
import { InflowError } from '../errors.ts';
import type { FromWorker, ToWorker, WorkerInit } from './onnx-protocol.ts';

/** A session worker as the servable drives it: a thread in production, a fake in tests. */
export interface SessionWorker {
  post(message: ToWorker, transfer?: ArrayBuffer[]): void;
  terminate(): Promise<void>;
}
/** What a session worker reports. */
export interface SessionWorkerEvents {
  message(message: FromWorker): void;
  exit(code: number, error: Error | undefined): void;
}
export type SpawnSessionWorker = (init: WorkerInit, events: SessionWorkerEvents) => SessionWorker;

const workerUrl = new URL(import.meta.url.endsWith('.ts') ? './onnx-worker.ts' : './onnx-worker.js', import.meta.url);

/** Starts onnx-worker.ts in a worker thread. */
export const spawnSessionThread: SpawnSessionWorker = (init, events) => {
  const worker = new Worker(workerUrl, { workerData: init });
  let failure: Error | undefined;
  worker.on('message', (message: FromWorker) => events.message(message));
  worker.on('error', (error: Error) => {
    failure = error;
  });
  worker.on('exit', (code) => events.exit(code, failure));
  return {
    post: (message, transfer) => worker.postMessage(message, transfer ?? []),
    terminate: async () => {
      await worker.terminate();
    },
  };
};

export type Ready = Extract<FromWorker, { type: 'ready' }>;

/** One worker and the calls it holds. */
export class WorkerSlot<C> {
  readonly worker: SessionWorker;
  readonly inFlight = new Map<number, C>();
  readonly ready: Promise<Ready>;
  readonly exited: Promise<number>;
  state: 'starting' | 'ready' | 'dead' = 'starting';
  onMessage: (message: FromWorker) => void = () => undefined;
  onExit: (code: number, error: Error | undefined) => void = () => undefined;

  constructor(init: WorkerInit, spawn: SpawnSessionWorker) {
    const ready = Promise.withResolvers<Ready>();
    const exited = Promise.withResolvers<number>();
    this.ready = ready.promise;
    this.exited = exited.promise;
    // A failed start is reported through `ready`; keep an unawaited copy from counting as unhandled.
    this.ready.catch(() => undefined);
    this.worker = spawn(init, {
      message: (message) => {
        if (this.state !== 'starting') return this.onMessage(message);
        if (message.type === 'ready') {
          this.state = 'ready';
          ready.resolve(message);
        } else if (message.type === 'load-error') {
          this.state = 'dead';
          ready.reject(new InflowError(message.code, `cannot load ONNX model ${init.path}: ${message.message}`));
        }
      },
      exit: (code, error) => {
        const wasStarting = this.state === 'starting';
        this.state = 'dead';
        exited.resolve(code);
        if (wasStarting) {
          const why = error ? `: ${error.message}` : '';
          ready.reject(
            new InflowError('FAILED_PRECONDITION', `cannot load ONNX model ${init.path}: its worker exited with code ${code}${why}`),
          );
        } else this.onExit(code, error);
      },
    });
  }

  #stopping: Promise<void> | undefined;

  /** Asks the worker to release its session and exit; terminates it if it has not after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.state === 'dead') return;
    this.#stopping ??= (async () => {
      this.worker.post({ type: 'close' });
      const timer = setTimeout(() => void this.worker.terminate(), graceMs);
      timer.unref();
      await this.exited;
      clearTimeout(timer);
    })();
    return this.#stopping;
  }
}
