/**
 * Preloaded into a soaked process (`node --expose-gc --import bench/soak/memory-probe.ts …`):
 * every `INFLOW_SOAK_SAMPLE_MS` (default 10 000) it appends one JSON line to
 * `INFLOW_SOAK_SAMPLE_FILE` with the process's RSS, V8 heap (after a full GC when the process
 * runs with --expose-gc, so the figure is the live heap and not garbage awaiting collection),
 * external and ArrayBuffer memory (bytes) and its open file descriptors. A leak shows as a heap or
 * fd count that keeps rising after the full GCs; RSS alone also moves with the allocator.
 * With `INFLOW_SOAK_SNAPSHOT_DIR` set, SIGUSR2 writes a heap snapshot there (after a full GC):
 * two of them, minutes apart, compared with `heap-diff.ts`, name what accumulates.
 */
import { appendFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import { isMainThread } from 'node:worker_threads';

const file = process.env.INFLOW_SOAK_SAMPLE_FILE;
const every = Number(process.env.INFLOW_SOAK_SAMPLE_MS ?? 10_000);

function sample(): void {
  if (file === undefined) return;
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const m = process.memoryUsage();
  let fds = -1;
  try {
    fds = readdirSync('/proc/self/fd').length;
  } catch {
    // not Linux
  }
  const line = {
    t: Date.now(),
    rss: m.rss,
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    fds,
  };
  appendFileSync(file, `${JSON.stringify(line)}\n`);
}

// --import also runs in worker threads (the ONNX workers): only the main thread samples.
if (file !== undefined && isMainThread) {
  sample();
  setInterval(sample, every).unref();
  const dir = process.env.INFLOW_SOAK_SNAPSHOT_DIR;
  if (dir !== undefined) {
    process.on('SIGUSR2', () => {
      (globalThis as { gc?: () => void }).gc?.();
      writeHeapSnapshot(join(dir, `heap-${process.pid}-${Date.now()}.heapsnapshot`));
    });
  }
}
