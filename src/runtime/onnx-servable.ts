/**
 * The onnx platform: an ONNX model run by onnxruntime-node in worker threads. session.run
 * executes synchronously on the thread that calls it (≈30 µs for a small MLP at batch 1; a thread
 * hop costs ≈140 µs), so sessions live in workers and the event loop never waits on a model.
 *
 * Each version holds `workers` threads with one session each; calls queue on the main thread
 * (where a cancelled call can still be dropped) and go to the least busy worker, at most
 * {@link PIPELINE_DEPTH} at a time per worker. A worker that dies fails its in-flight calls with
 * UNAVAILABLE (inference is pure, so they may be retried) and is restarted; after
 * {@link MAX_CRASHES_IN_ROW} deaths without a successful call in between, the servable reports
 * itself broken (`broken`) and every call fails with UNAVAILABLE until the version is reloaded.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { z } from 'zod';
import { InflowError } from '../errors.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { fromWire, toWire, type WireTensor, type WorkerInit } from './onnx-protocol.ts';
import { type Ready, type SpawnSessionWorker, spawnSessionThread, WorkerSlot } from './onnx-worker-slot.ts';
import { runtimeLogger } from './runtime-logger.ts';
import type { RunOptions, Servable, ServableContext, Signature } from './servable.ts';
import { checkInputs, selectOutputs, throwIfAborted } from './signature-check.ts';
import { versionFile } from './version-file.ts';

// Read by onnxruntime via getenv: only the main thread's process.env reaches the C environment.
process.env.ORT_DISABLE_TELEMETRY ??= '1';

/** Calls in flight per worker: one running and one waiting in the worker's port, so the next starts without a round trip. */
export const PIPELINE_DEPTH = 2;
/** Worker deaths without a successful call in between after which the servable gives up. */
export const MAX_CRASHES_IN_ROW = 3;

/** Options of the onnx platform (the `runtime:` section of a model's config.yaml). */
export const onnxOptionsSchema = z.strictObject({
  /** Model file, relative to the version folder. */
  file: versionFile.default('model.onnx'),
  /**
   * Threads one session uses inside an operator (onnxruntime's default: one per physical core, spinning
   * while idle). On small machines and with several workers, 1 is often faster: on the 2-core dev box
   * digits-mlp at batch 64 ran 2.5× the calls per second with 1 than with the default.
   */
  intraOpThreads: z.int().min(1).max(256).optional(),
  /** Threads one session uses across operators (only with parallel execution). */
  interOpThreads: z.int().min(1).max(256).optional(),
  /** Tried in order; one whose library cannot be loaded (e.g. CUDA absent) is skipped and logged. */
  executionProviders: z
    .array(z.enum(['cpu', 'cuda', 'tensorrt', 'webgpu', 'dml', 'coreml', 'qnn']))
    .min(1)
    .default(['cpu']),
  /** Worker threads (each with its own session) for this version. */
  workers: z.int().min(1).max(64).default(1),
  graphOptimizationLevel: z.enum(['disabled', 'basic', 'extended', 'all']).default('all'),
});
export type OnnxOptions = z.output<typeof onnxOptionsSchema>;

/** An onnx servable, with what it learned at load. */
export interface OnnxServable extends Servable {
  /** The execution provider the sessions got (`cpu` after a fallback). */
  readonly executionProvider: string;
  /** Class labels of outputs that were ZipMaps, in column order (see onnx-zipmap.ts). */
  readonly classLabels: Readonly<Record<string, readonly (string | number)[]>>;
  /** Worker restarts since load. */
  readonly restarts: number;
  /** Why the servable gave up, once it has; every call then fails with UNAVAILABLE. */
  readonly broken: InflowError | undefined;
}

interface Call {
  id: number;
  feeds: Record<string, WireTensor>;
  fetches: string[];
  transfer: ArrayBuffer[];
  resolve: (outputs: Record<string, Tensor>) => void;
  reject: (error: InflowError) => void;
  settled: boolean;
  cleanup: () => void;
}

export type { SessionWorker, SessionWorkerEvents, SpawnSessionWorker } from './onnx-worker-slot.ts';

class OnnxServableImpl implements OnnxServable {
  readonly signature: Signature;
  readonly executionProvider: string;
  readonly classLabels: Readonly<Record<string, readonly (string | number)[]>>;
  #restarts = 0;
  #crashesInRow = 0;
  #broken: InflowError | undefined;
  #closing: Promise<void> | undefined;
  #drained: PromiseWithResolvers<void> | undefined;
  readonly #where: string;
  readonly #init: WorkerInit;
  readonly #spawn: SpawnSessionWorker;
  readonly #slots: WorkerSlot<Call>[];
  readonly #queue: Call[] = [];
  #nextId = 1;

  constructor(where: string, init: WorkerInit, spawn: SpawnSessionWorker, slots: WorkerSlot<Call>[], ready: Ready) {
    this.#where = where;
    this.#init = init;
    this.#spawn = spawn;
    this.#slots = slots;
    this.signature = { inputs: ready.inputs, outputs: ready.outputs };
    this.executionProvider = ready.provider;
    this.classLabels = ready.classLabels;
    for (const slot of slots) this.#adopt(slot);
  }

  get restarts(): number {
    return this.#restarts;
  }

  get broken(): InflowError | undefined {
    return this.#broken;
  }

  async run(inputs: Readonly<Record<string, Tensor>>, options: RunOptions = {}): Promise<Record<string, Tensor>> {
    const where = this.#where;
    if (this.#closing) throw new InflowError('UNAVAILABLE', `${where} is unloading`);
    if (this.#broken) throw this.#broken;
    const signal = options.signal;
    throwIfAborted(signal, where);
    checkInputs(this.signature, inputs, where);
    const fetches = selectOutputs(this.signature, options.outputs, where);
    const transfer: ArrayBuffer[] = [];
    const feeds: Record<string, WireTensor> = {};
    for (const spec of this.signature.inputs) feeds[spec.name] = toWire(inputs[spec.name] as Tensor, transfer, true);
    return new Promise((resolve, reject) => {
      const onAbort = (): void =>
        this.#settle(call, new InflowError('CANCELLED', `${where}: the call was cancelled`, { cause: signal?.reason }));
      const call: Call = {
        id: this.#nextId++,
        feeds,
        fetches,
        transfer,
        resolve,
        reject,
        settled: false,
        cleanup: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(call);
      this.#pump();
    });
  }

  async close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#pending() > 0) {
        this.#drained = Promise.withResolvers();
        await this.#drained.promise;
      }
      await Promise.all(this.#slots.map((slot) => slot.stop()));
    })();
    return this.#closing;
  }

  #pending(): number {
    return this.#queue.length + this.#slots.reduce((n, slot) => n + slot.inFlight.size, 0);
  }

  /** Settles a call once: with outputs, or with an error. A late result of a settled (cancelled) call is dropped. */
  #settle(call: Call, outcome: InflowError | Record<string, Tensor>): void {
    if (call.settled) return;
    call.settled = true;
    call.cleanup();
    if (outcome instanceof InflowError) call.reject(outcome);
    else call.resolve(outcome);
    const queued = this.#queue.indexOf(call);
    if (queued >= 0) this.#queue.splice(queued, 1);
    this.#checkDrained();
  }

  #checkDrained(): void {
    if (this.#drained && this.#pending() === 0) this.#drained.resolve();
  }

  /** Sends queued calls to the least busy ready workers. */
  #pump(): void {
    for (;;) {
      let best: WorkerSlot<Call> | undefined;
      for (const slot of this.#slots) {
        if (slot.state === 'ready' && slot.inFlight.size < PIPELINE_DEPTH && (!best || slot.inFlight.size < best.inFlight.size))
          best = slot;
      }
      const call = best && this.#queue.shift();
      if (!best || !call) return;
      best.inFlight.set(call.id, call);
      best.worker.post({ type: 'run', id: call.id, feeds: call.feeds, fetches: call.fetches }, call.transfer);
    }
  }

  #adopt(slot: WorkerSlot<Call>): void {
    slot.onMessage = (message) => {
      if (message.type !== 'result' && message.type !== 'run-error') return;
      const call = slot.inFlight.get(message.id);
      slot.inFlight.delete(message.id);
      if (message.type === 'result') {
        this.#crashesInRow = 0;
        const outputs: Record<string, Tensor> = {};
        for (const [name, wire] of Object.entries(message.outputs)) outputs[name] = fromWire(wire);
        if (call) this.#settle(call, outputs);
      } else if (call) {
        this.#settle(call, new InflowError('INVALID_ARGUMENT', `${this.#where}: onnxruntime rejected the input: ${message.message}`));
      }
      this.#checkDrained();
      this.#pump();
    };
    slot.onExit = (code, error) => this.#onWorkerExit(slot, code, error);
  }

  #onWorkerExit(slot: WorkerSlot<Call>, code: number, error: Error | undefined): void {
    const why = `its worker exited with code ${code}${error ? ` (${error.message})` : ''}`;
    for (const call of slot.inFlight.values())
      this.#settle(call, new InflowError('UNAVAILABLE', `${this.#where}: ${why}; the call may be retried`));
    slot.inFlight.clear();
    this.#checkDrained();
    if (this.#closing) return;
    this.#crashesInRow++;
    if (this.#crashesInRow > MAX_CRASHES_IN_ROW) {
      this.#breakDown(
        new InflowError('UNAVAILABLE', `${this.#where} is broken: ${why}, ${this.#crashesInRow} times in a row; reload the version`),
      );
      return;
    }
    this.#restarts++;
    runtimeLogger().warn({ model: this.#where, code, err: error }, 'onnx worker exited; restarting it');
    const fresh = new WorkerSlot<Call>(this.#init, this.#spawn);
    this.#slots[this.#slots.indexOf(slot)] = fresh;
    this.#adopt(fresh);
    fresh.ready.then(
      () => (this.#closing ? void fresh.stop() : this.#pump()),
      (failure: unknown) =>
        this.#breakDown(new InflowError('UNAVAILABLE', `${this.#where} is broken: a worker restart failed: ${String(failure)}`)),
    );
  }

  #breakDown(error: InflowError): void {
    this.#broken ??= error;
    runtimeLogger().error({ model: this.#where, err: error }, 'onnx servable broken');
    for (const call of [...this.#queue]) this.#settle(call, this.#broken);
    for (const slot of this.#slots) if (slot.state !== 'dead') void slot.worker.terminate();
  }
}

/**
 * A thread count: the model's config wins, else the environment default (a container sets it
 * from its CPU limit for every model at once), else onnxruntime's own default.
 */
function threads<K extends string>(key: K, configured: number | undefined, env: string): Partial<Record<K, number>> {
  if (configured !== undefined) return { [key]: configured } as Partial<Record<K, number>>;
  const text = process.env[env];
  if (text === undefined || text === '') return {};
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new InflowError('INVALID_CONFIG', `${env} must be an integer 1-256, got "${text}"`);
  return { [key]: n } as Partial<Record<K, number>>;
}

/**
 * Loads an ONNX model into `options.workers` worker threads.
 * @param spawn how workers start (tests inject fakes).
 * @throws InflowError INVALID_CONFIG (file missing), FAILED_PRECONDITION (file not a loadable model,
 *   outputs that cannot become tensors), CANCELLED (context.signal aborted).
 */
export async function loadOnnxServable(context: ServableContext, spawn: SpawnSessionWorker = spawnSessionThread): Promise<OnnxServable> {
  const options = onnxOptionsSchema.parse(context.options);
  const where = `model "${context.model}" v${context.version}`;
  const path = resolve(context.dir, options.file);
  try {
    if (!(await stat(path)).isFile())
      throw new InflowError('INVALID_CONFIG', `model file ${path} is not a file (runtime.file "${options.file}")`);
  } catch (error) {
    if (error instanceof InflowError) throw error;
    throw new InflowError('INVALID_CONFIG', `model file ${path} does not exist (runtime.file "${options.file}")`, { cause: error });
  }
  const init: WorkerInit = {
    path,
    executionProviders: options.executionProviders,
    graphOptimizationLevel: options.graphOptimizationLevel,
    ...threads('intraOpThreads', options.intraOpThreads, 'INFLOW_ONNX_INTRA_OP_THREADS'),
    ...threads('interOpThreads', options.interOpThreads, 'INFLOW_ONNX_INTER_OP_THREADS'),
  };
  const slots = Array.from({ length: options.workers }, () => new WorkerSlot<Call>(init, spawn));
  const aborted = Promise.withResolvers<never>();
  const onAbort = (): void =>
    aborted.reject(new InflowError('CANCELLED', `${where}: loading was cancelled`, { cause: context.signal?.reason }));
  context.signal?.addEventListener('abort', onAbort, { once: true });
  if (context.signal?.aborted) onAbort();
  try {
    const [ready] = await Promise.race([Promise.all(slots.map((slot) => slot.ready)), aborted.promise]);
    if (!ready) throw new InflowError('INTERNAL', `${where}: no worker started`);
    const log = runtimeLogger();
    for (const skip of ready.skipped)
      log.warn({ model: where, provider: skip.provider, reason: skip.reason }, 'execution provider unavailable; falling back');
    log.info({ model: where, file: path, provider: ready.provider, workers: options.workers }, 'onnx model loaded');
    return new OnnxServableImpl(where, init, spawn, slots, ready);
  } catch (error) {
    await Promise.all(slots.filter((slot) => slot.state !== 'dead').map((slot) => slot.worker.terminate()));
    throw InflowError.from(error);
  } finally {
    context.signal?.removeEventListener('abort', onAbort);
  }
}
