/**
 * The `predict` operator's micro-batcher: records from any partition queue here; a batch of up
 * to `maxBatch` rows goes to the inferencer as one call when it is full, when `maxDelayMs` has
 * passed since its oldest record, or (delay 0, or no call in flight: `idleDispatch`) as soon as
 * a call slot is free — so batches grow by themselves while the model is busy, and a lone record
 * at a low rate does not wait out the delay. A record usually is one row; a record may carry
 * several (the Kafka-native endpoint's requests). Records only share a call when they ask the
 * same model target and their tensors can be concatenated.
 *
 * Retriable errors are retried with exponential backoff and full jitter; a non-retriable error
 * of a batch is isolated by retrying its records one by one, so one poison record does not fail
 * its neighbours.
 */
import { type Context, context, type Link, trace } from '@opentelemetry/api';
import { InflowError } from '../../errors.ts';
import { inflowTracer, endWithError, tracingActive } from '../../observability/tracing.ts';
import { createCallDeadline } from '../../serving/call-deadline.ts';
import type { Clock } from '../../serving/clock.ts';
import type { InferResponse, ResolvedRoute } from '../../serving/types.ts';
import { batchKey, concatBatch, splitBatch } from '../../tensor/batch.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import type { Logger } from '../../observability/logger.ts';
import type { Topology } from '../api/topology.ts';
import type { StreamsMetrics } from './streams-metrics.ts';
import type { PredictionInfo, PredictSpec, PredictTarget } from '../api/predict-spec.ts';

/** One record's outputs (its rows) and the version that answered. */
export interface RowResult {
  readonly outputs: Record<string, Tensor>;
  readonly info: PredictionInfo;
}

/** What the batcher reports per inference call. */
export interface BatchObserver {
  onBatch?(rows: number, seconds: number, info: PredictionInfo): void;
  onRetry?(error: InflowError): void;
}

export interface PredictBatcher {
  /**
   * Queues one record's inputs (all with the same first dimension, its row count) for `target`;
   * `key` routes it in a weighted split. Once `signal` aborts (the record was dropped by a
   * rewind or a revocation) the rows leave the queue and never run; it rejects with CANCELLED.
   */
  submit(inputs: Record<string, Tensor>, target: PredictTarget, key?: string, signal?: AbortSignal): Promise<RowResult>;
  /** Rows queued or in a call. */
  readonly pending: number;
  /** Fails queued records with CANCELLED and stops retrying. */
  close(): void;
}

interface Item {
  readonly inputs: Record<string, Tensor>;
  readonly rows: number;
  readonly target: PredictTarget;
  readonly key: string | undefined;
  readonly group: string;
  readonly since: number;
  readonly signal: AbortSignal | undefined;
  /** Tracing on: the record's context and when it was queued (performance.now() ms). */
  readonly trace: { readonly context: Context; readonly at: number } | undefined;
  resolve(result: RowResult): void;
  reject(error: unknown): void;
}

const sumRows = (items: readonly Item[]): number => items.reduce((a, i) => a + i.rows, 0);

/** Creates the batcher of one predict node. `clock` is in µs (src/serving/clock.ts). */
export function createPredictBatcher(
  spec: PredictSpec,
  clock: Clock,
  observer: BatchObserver = {},
  random: () => number = Math.random,
): PredictBatcher {
  const queue: Item[] = [];
  let queuedRows = 0;
  const closed = new AbortController();
  let calls = 0;
  let inCall = 0;
  let timer: ReturnType<Clock['setTimer']> | undefined;
  let immediate = false;
  let purgeQueued = false;
  /** Signals this batcher listens to (one listener per signal, however many rows it covers). */
  const watched = new WeakSet<AbortSignal>();

  /** Takes the rows of dropped records out of the queue (once per burst of aborts). */
  function purge(): void {
    purgeQueued = false;
    const error = new InflowError('CANCELLED', 'the record was dropped (rewind or revocation) before its prediction ran');
    let kept = 0;
    for (const item of queue) {
      if (item.signal?.aborted) {
        queuedRows -= item.rows;
        item.reject(error);
      } else queue[kept++] = item;
    }
    queue.length = kept;
  }

  function onAbort(): void {
    if (purgeQueued) return;
    purgeQueued = true;
    queueMicrotask(purge);
  }

  function groupOf(inputs: Record<string, Tensor>, target: PredictTarget): string {
    const names = Object.keys(inputs).sort();
    const shapes = names.map((n) => `${n}:${batchKey(inputs[n] as Tensor)}`).join('|');
    const route = target.route ? `>${target.route.version}/${target.route.shadow ?? ''}` : '';
    return `${target.model}@${target.version ?? ''}:${target.label ?? ''}${route}|${shapes}`;
  }

  function schedule(): void {
    if (calls >= spec.maxConcurrentBatches || queue.length === 0) return;
    const oldest = queue[0] as Item;
    const due = oldest.since + spec.maxDelayMs * 1000;
    if (queuedRows >= spec.maxBatch || spec.maxDelayMs === 0 || (spec.idleDispatch && calls === 0) || clock.now() >= due) {
      if (immediate) return;
      immediate = true;
      // A macrotask, so every record admitted by the current poll joins this batch.
      setImmediate(flush);
    } else if (timer === undefined) {
      timer = clock.setTimer(() => {
        timer = undefined;
        flush();
      }, due - clock.now());
    }
  }

  function flush(): void {
    immediate = false;
    purge();
    if (timer !== undefined) {
      clock.clearTimer(timer);
      timer = undefined;
    }
    while (calls < spec.maxConcurrentBatches && queue.length > 0) {
      const oldest = queue[0] as Item;
      const idle = spec.idleDispatch && calls === 0;
      if (queuedRows < spec.maxBatch && spec.maxDelayMs > 0 && !idle && clock.now() < oldest.since + spec.maxDelayMs * 1000) break;
      const batch: Item[] = [];
      let rows = 0;
      for (let i = 0; i < queue.length; ) {
        const item = queue[i] as Item;
        // The oldest always goes, even when it alone exceeds maxBatch.
        if (item.group === oldest.group && (batch.length === 0 || rows + item.rows <= spec.maxBatch)) {
          batch.push(item);
          rows += item.rows;
          queue.splice(i, 1);
          if (rows >= spec.maxBatch) break;
        } else i++;
      }
      queuedRows -= rows;
      calls++;
      inCall += rows;
      void run(batch).finally(() => {
        calls--;
        inCall -= rows;
        schedule();
      });
    }
    schedule();
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const handle = clock.setTimer(done, ms * 1000);
      function done(): void {
        closed.signal.removeEventListener('abort', cancel);
        resolve();
      }
      function cancel(): void {
        clock.clearTimer(handle);
        resolve();
      }
      closed.signal.addEventListener('abort', cancel, { once: true });
    });
  }

  async function call(items: readonly Item[], route?: ResolvedRoute): Promise<InferResponse> {
    const { target } = items[0] as Item;
    const inputs: Record<string, Tensor> = {};
    for (const n of Object.keys((items[0] as Item).inputs)) inputs[n] = concatBatch(items.map((r) => r.inputs[n] as Tensor));
    const started = performance.now();
    // Released when the call ends: no timer or signal outlives it (../../serving/call-deadline.ts).
    const deadline = createCallDeadline(spec.timeoutMs, `inference of ${target.model}`, closed.signal);
    const infer = (): Promise<InferResponse> =>
      spec.inferencer.infer(
        {
          model: target.model,
          ...(target.version !== undefined ? { version: target.version } : {}),
          ...(target.label !== undefined ? { label: target.label } : {}),
          inputs,
          ...(spec.requestOutputs ? { outputs: [...spec.requestOutputs] } : {}),
        },
        { signal: deadline.signal, ...(route ? { route } : {}) },
      );
    try {
      const response = tracingActive() ? await tracedCall(items, started, infer) : await infer();
      observer.onBatch?.(sumRows(items), (performance.now() - started) / 1000, { model: response.model, version: response.version });
      return response;
    } finally {
      deadline.end();
    }
  }

  /**
   * One inference call in a span `predict <model>` whose parent is the first record's context and
   * whose links name every record's (OpenTelemetry's batch-processing convention: a batch has many
   * parents); each record also gets a `queue` span for its wait in this batcher.
   */
  async function tracedCall(items: readonly Item[], started: number, infer: () => Promise<InferResponse>): Promise<InferResponse> {
    const links: Link[] = [];
    const tracer = inflowTracer();
    for (const item of items) {
      if (!item.trace) continue;
      tracer.startSpan('queue', { startTime: item.trace.at }, item.trace.context).end(started);
      const parent = trace.getSpanContext(item.trace.context);
      if (parent) links.push({ context: parent });
    }
    const first = items.find((i) => i.trace)?.trace?.context ?? context.active();
    const model = (items[0] as Item).target.model;
    const span = tracer.startSpan(
      `predict ${model}`,
      {
        startTime: started,
        links,
        attributes: { 'inflow.model': model, 'inflow.batch.records': items.length, 'inflow.batch.rows': sumRows(items) },
      },
      first,
    );
    try {
      const response = await context.with(trace.setSpan(first, span), infer);
      span.setAttribute('inflow.model.version', response.version);
      span.end();
      return response;
    } catch (e) {
      endWithError(span, e);
      throw e;
    }
  }

  /** Each item's share of a response to all of `items`. */
  function splitResponse(response: InferResponse, items: readonly Item[]): RowResult[] {
    const info: PredictionInfo = { model: response.model, version: response.version };
    const total = sumRows(items);
    const parts: Record<string, Tensor[]> = {};
    for (const [name, t] of Object.entries(response.outputs)) {
      if (t.shape[0] !== total) {
        throw new InflowError(
          'INVALID_ARGUMENT',
          `model "${response.model}" output "${name}" has shape [${t.shape.join(', ')}]; expected a batch dimension of ${total} (one row per input row)`,
        );
      }
      parts[name] =
        items.length === 1
          ? [t]
          : splitBatch(
              t,
              items.map((i) => i.rows),
            );
    }
    return items.map((_, i) => {
      const outputs: Record<string, Tensor> = {};
      for (const [name, p] of Object.entries(parts)) outputs[name] = p[i] as Tensor;
      return { outputs, info };
    });
  }

  /**
   * One attempt. With a locally routing inferencer (a weighted split, a shadow), each record is
   * routed by its key now — at call time, so a retry follows a label move — and records that
   * share a route share a call.
   */
  async function once(items: readonly Item[]): Promise<RowResult[]> {
    const inferencer = spec.inferencer;
    const { target } = items[0] as Item;
    // A route resolved before (the records of a group share it) goes along as it is.
    if (target.route) return splitResponse(await call(items, target.route), items);
    if (!inferencer.route || target.version !== undefined) return splitResponse(await call(items), items);
    const base = { ...(target.label !== undefined ? { label: target.label } : {}) };
    const groups = new Map<string, { route: ResolvedRoute; items: Item[]; at: number[] }>();
    items.forEach((item, i) => {
      const r = (inferencer.route as NonNullable<typeof inferencer.route>).call(
        inferencer,
        target.model,
        item.key === undefined ? base : { ...base, key: item.key },
      );
      const id = `${r.version}/${r.shadow ?? ''}`;
      const g = groups.get(id) ?? { route: r, items: [], at: [] };
      g.items.push(item);
      g.at.push(i);
      groups.set(id, g);
    });
    const results: RowResult[] = new Array<RowResult>(items.length);
    await Promise.all(
      [...groups.values()].map(async (g) => {
        const part = splitResponse(await call(g.items, g.route), g.items);
        g.at.forEach((i, j) => {
          results[i] = part[j] as RowResult;
        });
      }),
    );
    return results;
  }

  /** Calls with retries; resolves every item or rejects every item. */
  async function attempt(items: readonly Item[]): Promise<RowResult[]> {
    for (let n = 1; ; n++) {
      try {
        return await once(items);
      } catch (e) {
        const error = closed.signal.aborted ? new InflowError('CANCELLED', 'the pipeline is shutting down') : InflowError.from(e);
        if (!error.retriable || n >= spec.retry.maxAttempts || closed.signal.aborted) throw error;
        observer.onRetry?.(error);
        const cap = Math.min(spec.retry.maxBackoffMs, spec.retry.initialBackoffMs * 2 ** (n - 1));
        await sleep(random() * cap);
      }
    }
  }

  async function run(items: readonly Item[]): Promise<void> {
    try {
      const results = await attempt(items);
      items.forEach((r, i) => r.resolve(results[i] as RowResult));
    } catch (e) {
      const error = InflowError.from(e);
      if (items.length > 1 && !error.retriable && error.code !== 'CANCELLED') {
        // Which record is bad? Ask one by one; the good ones still get their predictions
        // (those dropped meanwhile are not asked again).
        for (const r of items) {
          if (r.signal?.aborted) r.reject(new InflowError('CANCELLED', 'the record was dropped (rewind or revocation)'));
          else await run([r]);
        }
        return;
      }
      for (const r of items) r.reject(error);
    }
  }

  return {
    submit(inputs, target, key, signal) {
      if (closed.signal.aborted) return Promise.reject(new InflowError('CANCELLED', 'the pipeline is shutting down'));
      if (signal?.aborted) return Promise.reject(new InflowError('CANCELLED', 'the record was dropped (rewind or revocation)'));
      let rows: number | undefined;
      for (const [name, t] of Object.entries(inputs)) {
        const n = t.shape[0];
        if (n === undefined || n < 1 || (rows !== undefined && n !== rows)) {
          return Promise.reject(
            new InflowError(
              'INVALID_ARGUMENT',
              `input "${name}" has shape [${t.shape.join(', ')}]; expected a first (batch) dimension ≥ 1${rows === undefined ? '' : ` equal to the other inputs' ${rows}`}`,
            ),
          );
        }
        rows = n;
      }
      if (rows === undefined) return Promise.reject(new InflowError('INVALID_ARGUMENT', 'the record gave no model inputs'));
      const count = rows;
      return new Promise<RowResult>((resolve, reject) => {
        const traced = tracingActive() ? { context: context.active(), at: performance.now() } : undefined;
        queue.push({
          inputs,
          rows: count,
          target,
          key,
          group: groupOf(inputs, target),
          since: clock.now(),
          signal,
          trace: traced,
          resolve,
          reject,
        });
        if (signal && !watched.has(signal)) {
          watched.add(signal);
          signal.addEventListener('abort', onAbort, { once: true });
        }
        queuedRows += count;
        schedule();
      });
    },
    get pending() {
      return queuedRows + inCall;
    },
    close() {
      closed.abort();
      if (timer !== undefined) clock.clearTimer(timer);
      const error = new InflowError('CANCELLED', 'the pipeline is shutting down');
      for (const r of queue.splice(0)) r.reject(error);
      queuedRows = 0;
    },
  };
}

/** One batcher per predict node, reporting to the metrics. */
export function createPredictBatchers(
  topology: Topology,
  clock: Clock,
  metrics: StreamsMetrics,
  log: Logger,
  pipeline: string,
): Map<string, PredictBatcher> {
  const batchers = new Map<string, PredictBatcher>();
  for (const node of topology.nodes.values()) {
    if (node.kind !== 'predict') continue;
    const labels = { pipeline, node: node.name };
    batchers.set(
      node.name,
      createPredictBatcher(node.spec, clock, {
        onBatch(rows, seconds) {
          metrics.batchSize.observe(labels, rows);
          metrics.inferenceDuration.observe(labels, seconds);
        },
        onRetry(error) {
          metrics.inferenceRetries.inc({ ...labels, code: error.code });
          log.warn({ node: node.name, code: error.code, err: error.message }, 'inference failed; retrying');
        },
      }),
    );
  }
  return batchers;
}
