/**
 * Load against a model server: `concurrency` callers each send the next request as soon as their
 * previous one answered (closed loop), until `requests` were sent or the signal aborts. Every
 * latency is kept (exact percentiles); failures are counted by error code, never retried.
 */
import { InflowError } from '../errors.ts';
import type { Inferencer, InferRequest } from '../serving/types.ts';
import { createLatencyRecorder, type LatencyRecorder } from './latency-recorder.ts';

/** What one bench run measured. */
export interface BenchResult {
  /** Requests sent (answered or failed). */
  readonly sent: number;
  readonly ok: number;
  /** Failed requests by error code. */
  readonly errors: Record<string, number>;
  /** Wall time of the run, seconds. */
  readonly seconds: number;
  /** Latency of the successful requests, ms. */
  readonly latency: LatencyRecorder;
  /** Rows per request (the batch dimension of the first input). */
  readonly rowsPerRequest: number;
  /** The first error's message, for the report. */
  readonly firstError?: string;
}

/** Options of {@link benchServer}. */
export interface BenchServerOptions {
  readonly inferencer: Inferencer;
  readonly request: InferRequest;
  readonly requests: number;
  readonly concurrency: number;
  readonly signal: AbortSignal;
  readonly onProgress?: (done: number) => void;
  /** Routing keys cycle over this many distinct keys (0 = none sent). Default 0. */
  readonly keys?: number;
}

/** Runs the load; resolves when every request answered (or the signal stopped it). */
export async function benchServer(o: BenchServerOptions): Promise<BenchResult> {
  const latency = createLatencyRecorder();
  const errors: Record<string, number> = {};
  let next = 0;
  let done = 0;
  let ok = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (!o.signal.aborted) {
      const i = next++;
      if (i >= o.requests) return;
      const t = performance.now();
      try {
        await o.inferencer.infer(o.request, {
          signal: o.signal,
          ...(o.keys ? { key: `k-${i % o.keys}` } : {}),
        });
        latency.record(performance.now() - t);
        ok++;
      } catch (error) {
        if (o.signal.aborted) return;
        const e = InflowError.from(error);
        errors[e.code] = (errors[e.code] ?? 0) + 1;
        firstError ??= e.message;
      }
      done++;
      o.onProgress?.(done);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, o.concurrency) }, worker));
  const first = Object.values(o.request.inputs)[0];
  return {
    sent: done,
    ok,
    errors,
    seconds: (performance.now() - started) / 1000,
    latency,
    rowsPerRequest: first?.shape[0] ?? 1,
    ...(firstError !== undefined ? { firstError } : {}),
  };
}
