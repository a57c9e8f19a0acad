/**
 * The `predict` operator's micro-batcher: records from any partition queue here; a batch of up
 * to `maxBatch` rows goes to the inferencer as one call when it is full, when `maxDelayMs` has
 * passed since its oldest record, or (delay 0) as soon as a call slot is free — so batches grow
 * by themselves while the model is busy. Retriable errors are retried with exponential backoff
 * and full jitter; a non-retriable error of a batch is isolated by retrying its rows one by one,
 * so one poison record does not fail its neighbours.
 */
import { InflowError } from '../errors.ts';
import type { Clock } from '../serving/clock.ts';
import type { InferResponse, ResolvedRoute } from '../serving/types.ts';
import { batchKey, concatBatch, splitBatch } from '../tensor/batch.ts';
import type { Tensor } from '../tensor/tensor.ts';
import type { PredictionInfo, PredictSpec } from './predict-spec.ts';

/** One row's outputs (batch dim 1) and the version that answered. */
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
  /** Queues one record's inputs (each tensor with batch dim 1); `key` routes it in a weighted split. */
  submit(inputs: Record<string, Tensor>, key?: string): Promise<RowResult>;
  /** Rows queued or in a call. */
  readonly pending: number;
  /** Fails queued rows with CANCELLED and stops retrying. */
  close(): void;
}

interface Row {
  readonly inputs: Record<string, Tensor>;
  readonly key: string | undefined;
  readonly group: string;
  readonly since: number;
  resolve(result: RowResult): void;
  reject(error: unknown): void;
}

/** Creates the batcher of one predict node. `clock` is in µs (src/serving/clock.ts). */
export function createPredictBatcher(
  spec: PredictSpec,
  clock: Clock,
  observer: BatchObserver = {},
  random: () => number = Math.random,
): PredictBatcher {
  const queue: Row[] = [];
  const closed = new AbortController();
  let calls = 0;
  let inCall = 0;
  let timer: ReturnType<Clock['setTimer']> | undefined;
  let immediate = false;

  function groupOf(inputs: Record<string, Tensor>): string {
    const names = Object.keys(inputs).sort();
    return names.map((n) => `${n}:${batchKey(inputs[n] as Tensor)}`).join('|');
  }

  function schedule(): void {
    if (calls >= spec.maxConcurrentBatches || queue.length === 0) return;
    const oldest = queue[0] as Row;
    const due = oldest.since + spec.maxDelayMs * 1000;
    if (queue.length >= spec.maxBatch || spec.maxDelayMs === 0 || clock.now() >= due) {
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
    if (timer !== undefined) {
      clock.clearTimer(timer);
      timer = undefined;
    }
    while (calls < spec.maxConcurrentBatches && queue.length > 0) {
      const oldest = queue[0] as Row;
      if (queue.length < spec.maxBatch && spec.maxDelayMs > 0 && clock.now() < oldest.since + spec.maxDelayMs * 1000) break;
      const batch: Row[] = [];
      for (let i = 0; i < queue.length && batch.length < spec.maxBatch; ) {
        const row = queue[i] as Row;
        if (row.group === oldest.group) {
          batch.push(row);
          queue.splice(i, 1);
        } else i++;
      }
      calls++;
      inCall += batch.length;
      void run(batch).finally(() => {
        calls--;
        inCall -= batch.length;
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

  async function call(rows: readonly Row[], route?: ResolvedRoute): Promise<InferResponse> {
    const names = Object.keys((rows[0] as Row).inputs);
    const inputs: Record<string, Tensor> = {};
    for (const n of names) inputs[n] = concatBatch(rows.map((r) => r.inputs[n] as Tensor));
    const started = performance.now();
    const response = await spec.inferencer.infer(
      {
        model: spec.model,
        ...(spec.version !== undefined ? { version: spec.version } : {}),
        ...(spec.label !== undefined ? { label: spec.label } : {}),
        inputs,
        ...(spec.requestOutputs ? { outputs: [...spec.requestOutputs] } : {}),
      },
      { signal: AbortSignal.any([closed.signal, AbortSignal.timeout(spec.timeoutMs)]), ...(route ? { route } : {}) },
    );
    observer.onBatch?.(rows.length, (performance.now() - started) / 1000, { model: response.model, version: response.version });
    return response;
  }

  /** One row's outputs from a response to `rows.length` rows. */
  function splitResponse(response: InferResponse, rows: readonly Row[]): RowResult[] {
    const info: PredictionInfo = { model: response.model, version: response.version };
    const split: Record<string, Tensor[]> = {};
    for (const [name, t] of Object.entries(response.outputs)) {
      if (t.shape[0] !== rows.length) {
        throw new InflowError(
          'INVALID_ARGUMENT',
          `model "${spec.model}" output "${name}" has shape [${t.shape.join(', ')}]; expected a batch dimension of ${rows.length} (one row per record)`,
        );
      }
      split[name] = splitBatch(
        t,
        rows.map(() => 1),
      );
    }
    return rows.map((_, i) => {
      const outputs: Record<string, Tensor> = {};
      for (const [name, parts] of Object.entries(split)) outputs[name] = parts[i] as Tensor;
      return { outputs, info };
    });
  }

  /**
   * One attempt. With a locally routing inferencer (a weighted split, a shadow), each row is
   * routed by its key now — at call time, so a retry follows a label move — and rows that share
   * a route share a call.
   */
  async function once(rows: readonly Row[]): Promise<RowResult[]> {
    const inferencer = spec.inferencer;
    if (!inferencer.route || spec.version !== undefined) return splitResponse(await call(rows), rows);
    const target = spec.label !== undefined ? { label: spec.label } : {};
    const groups = new Map<string, { route: ResolvedRoute; rows: Row[]; at: number[] }>();
    rows.forEach((row, i) => {
      const r = (inferencer.route as NonNullable<typeof inferencer.route>).call(
        inferencer,
        spec.model,
        row.key === undefined ? target : { ...target, key: row.key },
      );
      const id = `${r.version}/${r.shadow ?? ''}`;
      const g = groups.get(id) ?? { route: r, rows: [], at: [] };
      g.rows.push(row);
      g.at.push(i);
      groups.set(id, g);
    });
    const results: RowResult[] = new Array<RowResult>(rows.length);
    await Promise.all(
      [...groups.values()].map(async (g) => {
        const part = splitResponse(await call(g.rows, g.route), g.rows);
        g.at.forEach((i, j) => {
          results[i] = part[j] as RowResult;
        });
      }),
    );
    return results;
  }

  /** Calls with retries; resolves every row or rejects every row. */
  async function attempt(rows: readonly Row[]): Promise<RowResult[]> {
    for (let n = 1; ; n++) {
      try {
        return await once(rows);
      } catch (e) {
        const error = closed.signal.aborted ? new InflowError('CANCELLED', 'the pipeline is shutting down') : InflowError.from(e);
        if (!error.retriable || n >= spec.retry.maxAttempts || closed.signal.aborted) throw error;
        observer.onRetry?.(error);
        const cap = Math.min(spec.retry.maxBackoffMs, spec.retry.initialBackoffMs * 2 ** (n - 1));
        await sleep(random() * cap);
      }
    }
  }

  async function run(rows: readonly Row[]): Promise<void> {
    try {
      const results = await attempt(rows);
      rows.forEach((r, i) => r.resolve(results[i] as RowResult));
    } catch (e) {
      const error = InflowError.from(e);
      if (rows.length > 1 && !error.retriable && error.code !== 'CANCELLED') {
        // Which row is bad? Ask one by one; the good rows still get their predictions.
        for (const r of rows) await run([r]);
        return;
      }
      for (const r of rows) r.reject(error);
    }
  }

  return {
    submit(inputs, key) {
      if (closed.signal.aborted) return Promise.reject(new InflowError('CANCELLED', 'the pipeline is shutting down'));
      for (const [name, t] of Object.entries(inputs)) {
        if (t.shape[0] !== 1) {
          return Promise.reject(
            new InflowError(
              'INVALID_ARGUMENT',
              `input "${name}" of one record has shape [${t.shape.join(', ')}]; expected batch dimension 1`,
            ),
          );
        }
      }
      return new Promise<RowResult>((resolve, reject) => {
        queue.push({ inputs, key, group: groupOf(inputs), since: clock.now(), resolve, reject });
        schedule();
      });
    },
    get pending() {
      return queue.length + inCall;
    },
    close() {
      closed.abort();
      if (timer !== undefined) clock.clearTimer(timer);
      const error = new InflowError('CANCELLED', 'the pipeline is shutting down');
      for (const r of queue.splice(0)) r.reject(error);
    },
  };
}
