/**
 * Preloaded into a soaked process (`node --expose-gc --import bench/soak/memory-probe.ts …`):
 * every `INFLOW_SOAK_SAMPLE_MS` (default 10 000) it appends one JSON line to
 * `INFLOW_SOAK_SAMPLE_FILE` with the process's RSS, V8 heap (after a full GC when the process
 * runs with --expose-gc, so the figure is the live heap and not garbage awaiting collection),
 * external and ArrayBuffer memory (bytes) and its open file descriptors. A leak shows as a heap or
 * fd count that keeps rising after the full GCs; RSS alone also moves with the allocator, so each
 * line also splits it into anonymous and file-backed memory, and each worker thread (the ONNX
 * workers) samples its own heap into `<file>.workers.jsonl`.
 * With `INFLOW_SOAK_SNAPSHOT_DIR` set, SIGUSR2 writes a heap snapshot there (after a full GC):
 * two of them, minutes apart, compared with `heap-diff.ts`, name what accumulates.
 */
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getHeapStatistics, writeHeapSnapshot } from 'node:v8';
import { isMainThread, threadId } from 'node:worker_threads';

const file = process.env.INFLOW_SOAK_SAMPLE_FILE;
const every = Number(process.env.INFLOW_SOAK_SAMPLE_MS ?? 10_000);

/** RssAnon / RssFile of /proc/self/status, bytes: anonymous memory (heaps, malloc arenas) vs mapped files (code). */
function rssParts(): { rssAnon: number; rssFile: number } {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
    return { rssAnon: kb('RssAnon'), rssFile: kb('RssFile') };
  } catch {
    return { rssAnon: Number.NaN, rssFile: Number.NaN };
  }
}

/**
 * In a worker thread (the ONNX workers): its own V8 heap, after its own full GC, to a side file
 * (`<file>.workers.jsonl`) — the process's RSS counts every thread, the main heap only one.
 */
function sampleWorker(): void {
  if (file === undefined) return;
  (globalThis as { gc?: () => void }).gc?.();
  const h = getHeapStatistics();
  appendFileSync(
    `${file}.workers.jsonl`,
    `${JSON.stringify({ t: Date.now(), thread: threadId, heapUsed: h.used_heap_size, heapTotal: h.total_heap_size, external: h.external_memory, malloced: h.malloced_memory })}\n`,
  );
}

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
    ...rssParts(),
    fds,
  };
  appendFileSync(file, `${JSON.stringify(line)}\n`);
}

// --import also runs in worker threads (the ONNX workers): they sample their own heaps aside.
if (file !== undefined && !isMainThread) setInterval(sampleWorker, every).unref();
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
