/**
 * Dynamic batcher, one per model version: concurrent requests that can share a batch are queued
 * briefly and run as one call of the runtime, then each caller gets exactly its own rows back.
 *
 * Parameters map onto the peers' (reference/model-server-protocols.md, batching cross-walk):
 * `maxBatchSize` ≈ TF Serving `max_batch_size` / Triton `max_batch_size`, `maxDelayMicros` ≈
 * `batch_timeout_micros` / `max_queue_delay_microseconds`, `preferredBatchSizes` ≈ Triton
 * `preferred_batch_size`, `maxConcurrentBatches` ≈ `num_batch_threads` / instance count, and
 * `maxQueueSize` bounds the rows waiting (the queue rejects instead of growing).
 *
 * Policy:
 * - Requests are grouped by a key (input names with dtype and non-batch dims, and the requested
 *   output set); only requests of one group share a batch, FIFO within the group.
 * - A group is dispatched when a batch slot is free and: its rows reach `maxBatchSize`, or the
 *   oldest queued request has waited `maxDelayMicros`, or a FIFO prefix of it sums to a preferred
 *   size (the largest such prefix is taken), or a `drain()`/`close()` is pending (flush).
 * - `maxDelayMicros: 0` dispatches without a timer, in a microtask: requests submitted in the same
 *   synchronous run (a stream operator looping over a poll) still share a batch.
 * - Batch when busy, not when idle (`idleDispatch`, default on): with no batch in flight a request
 *   does not wait out `maxDelayMicros` — nobody else is coming that the wait would let in, and
 *   the delay costs ≥ 1 ms through timer granularity (issue: p50 1.45 ms vs 0.3 ms at one client).
 *   It goes in a microtask, like delay 0. While batches run, requests queue and the delay applies;
 *   when the last batch in flight settles, what queued meanwhile goes at once: batches form from
 *   what arrived while the model was busy.
 * - A request with more rows than `maxBatchSize` is rejected with INVALID_ARGUMENT, as TF Serving
 *   and Triton do: `maxBatchSize` is usually the model's own bound on dim 0.
 * - When several groups are due, the one whose oldest request waited longest goes first.
 */
import { InflowError } from '../errors.ts';
import { concatBatch, splitBatch } from '../tensor/batch.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { type Clock, systemClock, type TimerHandle } from './clock.ts';

/** Batching parameters of one model version. */
export interface BatcherOptions {
  /** Rows per batch (sum of dim 0 of the requests); also the most rows one request may have. */
  maxBatchSize: number;
  /** After the first queued row, wait at most this long for more (µs); 0 = dispatch at once. */
  maxDelayMicros: number;
  /** Rows waiting; a submit that would exceed it rejects RESOURCE_EXHAUSTED at once. At least `maxBatchSize`. */
  maxQueueSize: number;
  /** Dispatch early when a FIFO prefix of the queue reaches one of these row counts (Triton's preferred_batch_size). */
  preferredBatchSizes?: number[];
  /** Batches in flight at once (1 = serial). */
  maxConcurrentBatches: number;
  /** With no batch in flight, dispatch at once instead of waiting `maxDelayMicros` (default true). */
  idleDispatch?: boolean;
}

/** What one dispatched batch looked like, for metrics. */
export interface BatchInfo {
  /** Rows in the batch. */
  rows: number;
  /** Requests in the batch. */
  requests: number;
  /** Per request, µs from submit to dispatch. */
  queueMicros: number[];
  /** µs the `run` call took (until it settled). */
  computeMicros: number;
}

/** Optional observers and the clock (tests inject a manual one). */
export interface BatcherHooks {
  /** Called after each batch's `run` settles (success or failure); errors it throws are ignored. */
  onBatch?: (info: BatchInfo) => void;
  clock?: Clock;
}

/** Runs one batch on the runtime. */
export type BatchRunner = (inputs: Record<string, Tensor>, options: { outputs?: readonly string[] }) => Promise<Record<string, Tensor>>;

/** Per-request options of {@link DynamicBatcher.submit}. */
export interface SubmitOptions {
  /** Aborting rejects the request with CANCELLED; queued rows are dropped and never run. */
  signal?: AbortSignal;
  /** Only these outputs (all when absent); requests with different sets never share a batch. */
  outputs?: readonly string[];
  /** Called once the request's batch ran (tracing: its queue and compute spans), µs. */
  onTimings?: (timings: RequestTimings) => void;
}

/** One request's share of the batcher's time, µs. */
export interface RequestTimings {
  readonly queueMicros: number;
  readonly computeMicros: number;
  /** Rows of the batch it ran in. */
  readonly batchRows: number;
}

/** The dynamic batcher of one model version. */
export interface DynamicBatcher {
  /** Queues one request (every input with the same dim 0) and resolves with its own rows of the outputs. */
  submit(inputs: Record<string, Tensor>, options?: SubmitOptions): Promise<Record<string, Tensor>>;
  /** Rows queued, not yet dispatched. */
  readonly queuedRows: number;
  /** Batches whose `run` has not settled yet. */
  readonly inflightBatches: number;
  /** Resolves when nothing is queued or in flight (used before unloading a version); queued requests are flushed without waiting for the delay. */
  drain(): Promise<void>;
  /** New submits reject UNAVAILABLE; resolves once drained. */
  close(): Promise<void>;
}

interface Pending {
  readonly inputs: Record<string, Tensor>;
  readonly rows: number;
  /** µs, clock time of submit. */
  readonly enqueuedAt: number;
  readonly resolve: (outputs: Record<string, Tensor>) => void;
  readonly reject: (error: InflowError) => void;
  readonly signal: AbortSignal | undefined;
  readonly onTimings: ((timings: RequestTimings) => void) | undefined;
  onAbort: (() => void) | undefined;
  /** The group while queued; undefined once dispatched. */
  group: Group | undefined;
  prev: Pending | undefined;
  next: Pending | undefined;
  settled: boolean;
}

/** Requests that can share a batch, as a FIFO doubly linked list (O(1) removal on abort). */
interface Group {
  readonly key: string;
  readonly outputs: readonly string[] | undefined;
  head: Pending | undefined;
  tail: Pending | undefined;
  rows: number;
  count: number;
  /** The oldest request has waited `maxDelayMicros`. */
  expired: boolean;
  timer: TimerHandle | undefined;
  /** Bumped on every re-arm, so a stale timer or microtask does nothing. */
  generation: number;
}

function positiveInt(value: number, name: string, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new InflowError('INVALID_CONFIG', `batcher ${name} is ${value}; expected an integer ≥ ${min}`);
  }
}

function validateOptions(o: BatcherOptions): void {
  positiveInt(o.maxBatchSize, 'maxBatchSize', 1);
  positiveInt(o.maxConcurrentBatches, 'maxConcurrentBatches', 1);
  if (!Number.isFinite(o.maxDelayMicros) || o.maxDelayMicros < 0) {
    throw new InflowError('INVALID_CONFIG', `batcher maxDelayMicros is ${o.maxDelayMicros}; expected a finite number ≥ 0 (µs)`);
  }
  positiveInt(o.maxQueueSize, 'maxQueueSize', o.maxBatchSize);
  for (const size of o.preferredBatchSizes ?? []) {
    if (!Number.isInteger(size) || size < 1 || size > o.maxBatchSize) {
      throw new InflowError(
        'INVALID_CONFIG',
        `batcher preferredBatchSizes has ${size}; expected integers in [1, maxBatchSize = ${o.maxBatchSize}]`,
      );
    }
  }
}

/**
 * Checks a request and returns its rows and group key. Every input must have a dim 0 and all
 * the same one; the key joins input names (sorted) with their dtype and non-batch dims (what
 * batchKey() compares), and the output set.
 */
function describeRequest(inputs: Record<string, Tensor>, outputs: readonly string[] | undefined): { rows: number; key: string } {
  const names = Object.keys(inputs);
  if (names.length === 0) throw new InflowError('INVALID_ARGUMENT', 'request has no inputs; expected at least one input tensor');
  if (names.length > 1) names.sort();
  let rows = -1;
  let firstName = '';
  let key = '';
  for (const name of names) {
    const tensor = inputs[name] as Tensor;
    if (tensor.shape.length === 0) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `input "${name}" is a scalar (shape []); expected a batch dimension (dim 0) to batch along`,
      );
    }
    const n = tensor.shape[0] as number;
    if (rows < 0) {
      rows = n;
      firstName = name;
    } else if (n !== rows) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `inputs "${firstName}" and "${name}" have different batch sizes (dim 0): ${rows} and ${n}; expected every input of a request to have the same number of rows`,
        { details: { inputs: [firstName, name], rows: [rows, n] } },
      );
    }
    // Same equality as batchKey() (dtype and dims after the first), built without slice/join: hot path.
    key += `${name}\u0000${tensor.dtype}`;
    for (let d = 1; d < tensor.shape.length; d++) key += `,${tensor.shape[d]}`;
    key += '\u0000';
  }
  if (rows === 0) throw new InflowError('INVALID_ARGUMENT', 'request has 0 rows (dim 0 of its inputs); expected at least 1 row');
  key += outputs === undefined ? '*' : `|${[...outputs].sort().join('\u0000')}`;
  return { rows, key };
}

class Batcher implements DynamicBatcher {
  readonly #run: BatchRunner;
  readonly #maxBatchSize: number;
  readonly #maxDelayMicros: number;
  readonly #maxQueueSize: number;
  readonly #maxConcurrent: number;
  readonly #idleDispatch: boolean;
  readonly #preferred: ReadonlySet<number> | undefined;
  readonly #clock: Clock;
  readonly #onBatch: ((info: BatchInfo) => void) | undefined;
  readonly #groups = new Map<string, Group>();
  #queuedRows = 0;
  #inflight = 0;
  #closed = false;
  #drainWaiters: Array<() => void> = [];

  constructor(run: BatchRunner, options: BatcherOptions, hooks: BatcherHooks) {
    validateOptions(options);
    this.#run = run;
    this.#maxBatchSize = options.maxBatchSize;
    this.#maxDelayMicros = options.maxDelayMicros;
    this.#maxQueueSize = options.maxQueueSize;
    this.#maxConcurrent = options.maxConcurrentBatches;
    this.#idleDispatch = options.idleDispatch ?? true;
    this.#preferred = options.preferredBatchSizes?.length ? new Set(options.preferredBatchSizes) : undefined;
    this.#clock = hooks.clock ?? systemClock;
    this.#onBatch = hooks.onBatch;
  }

  get queuedRows(): number {
    return this.#queuedRows;
  }

  get inflightBatches(): number {
    return this.#inflight;
  }

  submit(inputs: Record<string, Tensor>, options: SubmitOptions = {}): Promise<Record<string, Tensor>> {
    const { signal, outputs } = options;
    if (this.#closed)
      return Promise.reject(
        new InflowError('UNAVAILABLE', 'batcher is closed (model version unloading); expected requests to go to a loaded version'),
      );
    if (signal?.aborted)
      return Promise.reject(new InflowError('CANCELLED', 'request cancelled before it was queued for batching', { cause: signal.reason }));
    let rows: number;
    let key: string;
    try {
      ({ rows, key } = describeRequest(inputs, outputs));
    } catch (error) {
      return Promise.reject(InflowError.from(error));
    }
    if (rows > this.#maxBatchSize) {
      return Promise.reject(
        new InflowError(
          'INVALID_ARGUMENT',
          `request has ${rows} rows; expected at most maxBatchSize = ${this.#maxBatchSize} rows per request`,
          {
            details: { rows, maxBatchSize: this.#maxBatchSize },
          },
        ),
      );
    }
    if (this.#queuedRows + rows > this.#maxQueueSize) {
      return Promise.reject(
        new InflowError(
          'RESOURCE_EXHAUSTED',
          `batch queue full: ${this.#queuedRows} rows queued + ${rows} > maxQueueSize = ${this.#maxQueueSize}; retry later`,
          {
            details: { queuedRows: this.#queuedRows, rows, maxQueueSize: this.#maxQueueSize },
          },
        ),
      );
    }
    const { promise, resolve, reject } = Promise.withResolvers<Record<string, Tensor>>();
    let group = this.#groups.get(key);
    if (!group) {
      group = {
        key,
        outputs: outputs && [...outputs],
        head: undefined,
        tail: undefined,
        rows: 0,
        count: 0,
        expired: false,
        timer: undefined,
        generation: 0,
      };
      this.#groups.set(key, group);
    }
    const pending: Pending = {
      inputs,
      rows,
      enqueuedAt: this.#clock.now(),
      resolve,
      reject,
      signal,
      onTimings: options.onTimings,
      onAbort: undefined,
      group,
      prev: group.tail,
      next: undefined,
      settled: false,
    };
    if (group.tail) group.tail.next = pending;
    else group.head = pending;
    group.tail = pending;
    group.rows += rows;
    group.count++;
    this.#queuedRows += rows;
    if (signal) {
      pending.onAbort = () => this.#abort(pending);
      signal.addEventListener('abort', pending.onAbort, { once: true });
    }
    if (group.count === 1) this.#arm(group);
    // Only this group changed, so only it can have become dispatchable (O(1) check, no walk).
    if (this.#inflight < this.#maxConcurrent) {
      const take = this.#plan(group, false);
      if (take > 0) {
        this.#dispatch(group, take);
        // The rest of the group may be overdue too, and other slots may be free.
        this.#pump();
      }
    }
    return promise;
  }

  drain(): Promise<void> {
    if (this.#queuedRows === 0 && this.#inflight === 0) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<undefined>();
    this.#drainWaiters.push(() => resolve(undefined));
    this.#pump();
    return promise;
  }

  close(): Promise<void> {
    this.#closed = true;
    return this.drain();
  }

  /** (Re)starts the delay of a group from its oldest request. */
  #arm(group: Group): void {
    if (group.timer !== undefined) this.#clock.clearTimer(group.timer);
    group.timer = undefined;
    group.expired = false;
    const head = group.head;
    if (!head) return;
    const generation = ++group.generation;
    const expire = (): void => {
      if (group.generation !== generation || this.#groups.get(group.key) !== group) return;
      group.timer = undefined;
      group.expired = true;
      this.#pump();
    };
    if (this.#maxDelayMicros === 0 || (this.#idleDispatch && this.#inflight === 0)) {
      queueMicrotask(expire);
      return;
    }
    const remaining = head.enqueuedAt + this.#maxDelayMicros - this.#clock.now();
    if (remaining <= 0) group.expired = true;
    else group.timer = this.#clock.setTimer(expire, remaining);
  }

  /**
   * How many requests (a FIFO prefix) to dispatch from `group` now; 0 = keep waiting.
   * `thorough` also looks for a preferred-size prefix shorter than the whole queue, which can
   * only exist after slots were busy; the submit path skips that walk.
   */
  #plan(group: Group, thorough: boolean): number {
    const cap = this.#maxBatchSize;
    if (group.expired || group.rows >= cap || this.#closed || this.#drainWaiters.length > 0) {
      if (group.rows <= cap) return group.count;
      let rows = 0;
      let count = 0;
      for (let p = group.head; p && rows + p.rows <= cap; p = p.next) {
        rows += p.rows;
        count++;
      }
      return count;
    }
    const preferred = this.#preferred;
    if (!preferred) return 0;
    if (!thorough) return preferred.has(group.rows) ? group.count : 0;
    let rows = 0;
    let count = 0;
    let best = 0;
    for (let p = group.head; p && rows + p.rows <= cap; p = p.next) {
      rows += p.rows;
      count++;
      if (preferred.has(rows)) best = count;
    }
    return best;
  }

  /** Fills free batch slots from the groups, oldest waiting request first. */
  #pump(): void {
    while (this.#inflight < this.#maxConcurrent) {
      let chosen: Group | undefined;
      let take = 0;
      for (const group of this.#groups.values()) {
        if (chosen && (group.head as Pending).enqueuedAt >= (chosen.head as Pending).enqueuedAt) continue;
        const n = this.#plan(group, true);
        if (n > 0) {
          chosen = group;
          take = n;
        }
      }
      if (!chosen) break;
      this.#dispatch(chosen, take);
    }
    this.#checkIdle();
  }

  /** Takes the first `take` requests of `group` off the queue and runs them as one batch. */
  #dispatch(group: Group, take: number): void {
    const batch: Pending[] = new Array<Pending>(take);
    let rows = 0;
    let p = group.head;
    for (let i = 0; i < take; i++) {
      const item = p as Pending;
      batch[i] = item;
      rows += item.rows;
      item.group = undefined;
      p = item.next;
      item.prev = undefined;
      item.next = undefined;
    }
    group.head = p;
    if (p) p.prev = undefined;
    else group.tail = undefined;
    group.rows -= rows;
    group.count -= take;
    this.#queuedRows -= rows;
    // Counted before re-arming the rest of the group: it now waits behind a busy model.
    this.#inflight++;
    if (group.count === 0) this.#dropGroup(group);
    else this.#arm(group);
    void this.#execute(batch, rows, group.outputs);
  }

  async #execute(batch: Pending[], rows: number, outputs: readonly string[] | undefined): Promise<void> {
    const started = this.#clock.now();
    let results: Array<Record<string, Tensor>> | undefined;
    let failure: InflowError | undefined;
    try {
      const inputs = batch.length === 1 ? (batch[0] as Pending).inputs : concatInputs(batch);
      const out = await this.#run(inputs, outputs === undefined ? {} : { outputs });
      results = batch.length === 1 ? [out] : splitOutputs(out, batch, rows);
    } catch (error) {
      failure = InflowError.from(error);
    }
    const computeMicros = this.#clock.now() - started;
    for (let i = 0; i < batch.length; i++) {
      const item = batch[i] as Pending;
      if (item.settled) continue;
      this.#settle(item);
      item.onTimings?.({ queueMicros: started - item.enqueuedAt, computeMicros, batchRows: rows });
      if (results) item.resolve(results[i] as Record<string, Tensor>);
      else item.reject(failure as InflowError);
    }
    this.#inflight--;
    if (this.#inflight === 0 && this.#idleDispatch) {
      // The model went idle: what queued while it ran has waited long enough.
      for (const group of this.#groups.values()) {
        if (group.timer !== undefined) this.#clock.clearTimer(group.timer);
        group.timer = undefined;
        group.expired = true;
      }
    }
    if (this.#onBatch) {
      try {
        this.#onBatch({ rows, requests: batch.length, queueMicros: batch.map((item) => started - item.enqueuedAt), computeMicros });
      } catch {
        // A metrics hook must never break serving.
      }
    }
    this.#pump();
  }

  #abort(item: Pending): void {
    if (item.settled) return;
    const group = item.group;
    const where = group ? 'while queued for batching' : 'while its batch was running';
    this.#settle(item);
    if (group) {
      if (item.prev) item.prev.next = item.next;
      else group.head = item.next;
      if (item.next) item.next.prev = item.prev;
      else group.tail = item.prev;
      item.group = undefined;
      group.rows -= item.rows;
      group.count--;
      this.#queuedRows -= item.rows;
      if (group.count === 0) this.#dropGroup(group);
      else if (!item.prev) this.#arm(group);
    }
    item.reject(new InflowError('CANCELLED', `request cancelled ${where}`, { cause: item.signal?.reason }));
    if (group) this.#pump();
  }

  #settle(item: Pending): void {
    item.settled = true;
    if (item.onAbort) item.signal?.removeEventListener('abort', item.onAbort);
    item.onAbort = undefined;
  }

  #dropGroup(group: Group): void {
    if (group.timer !== undefined) this.#clock.clearTimer(group.timer);
    group.timer = undefined;
    group.generation++;
    this.#groups.delete(group.key);
  }

  #checkIdle(): void {
    if (this.#queuedRows !== 0 || this.#inflight !== 0 || this.#drainWaiters.length === 0) return;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** Concatenates the requests' inputs along dim 0 (all share the group's input names). */
function concatInputs(batch: readonly Pending[]): Record<string, Tensor> {
  const inputs: Record<string, Tensor> = {};
  for (const name of Object.keys((batch[0] as Pending).inputs)) {
    inputs[name] = concatBatch(batch.map((item) => item.inputs[name] as Tensor));
  }
  return inputs;
}

/** Splits each output back into the requests' rows, in batch order. */
function splitOutputs(out: Record<string, Tensor>, batch: readonly Pending[], rows: number): Array<Record<string, Tensor>> {
  const counts = batch.map((item) => item.rows);
  const results: Array<Record<string, Tensor>> = batch.map(() => ({}));
  for (const [name, tensor] of Object.entries(out)) {
    if (tensor.shape.length === 0 || tensor.shape[0] !== rows) {
      throw new InflowError(
        'INTERNAL',
        `output "${name}" has shape [${tensor.shape.join(', ')}] for a batch of ${rows} rows; expected dim 0 = ${rows} to split it back per request`,
      );
    }
    const parts = splitBatch(tensor, counts);
    for (let i = 0; i < parts.length; i++) (results[i] as Record<string, Tensor>)[name] = parts[i] as Tensor;
  }
  return results;
}

/**
 * Creates the dynamic batcher of one model version. `run` executes one batch on the runtime;
 * options are validated (INVALID_CONFIG).
 */
export function createDynamicBatcher(run: BatchRunner, options: BatcherOptions, hooks: BatcherHooks = {}): DynamicBatcher {
  return new Batcher(run, options, hooks);
}
