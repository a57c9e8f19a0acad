// Shared helpers for the client bench scripts. Each client script is run as its own
// process by bench.mjs and prints exactly one JSON line (prefixed RESULT ) on success.
export const BOOTSTRAP = process.env.BOOTSTRAP ?? '127.0.0.1:29092';
export const RECORD_SIZE = 1024;
export const SEND_BATCH = Number(process.env.SEND_BATCH ?? 1000); // records per send() call
export const SEND_WINDOW = Number(process.env.SEND_WINDOW ?? 4); // send() calls in flight
export const TXN_EVERY = Number(process.env.TXN_EVERY ?? 500); // records per transaction
export const RUN_TIMEOUT_MS = Number(process.env.RUN_TIMEOUT_MS ?? 120_000);

// 1 KiB of printable ASCII (no newline), like ProducerPerformance's random payload.
export function payload(size = RECORD_SIZE) {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = 65 + Math.floor(Math.random() * 26);
  return b;
}

export function parseArgs(argv = process.argv.slice(2)) {
  const [op, ...rest] = argv;
  const args = { op };
  for (const kv of rest) {
    const i = kv.indexOf('=');
    args[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return args;
}

export function emit(obj) {
  process.stdout.write('RESULT ' + JSON.stringify(obj, (_, v) => (typeof v === 'bigint' ? v.toString() : v)) + '\n');
}

// Kill the process if a run hangs: every bench must stop by itself.
export function watchdog(ms = RUN_TIMEOUT_MS) {
  const t = setTimeout(() => {
    console.error(`watchdog: run exceeded ${ms} ms, exiting`);
    process.exit(3);
  }, ms);
  t.unref();
}

export function rate(n, ms) {
  return { msgsPerSec: n / (ms / 1000), mbPerSec: (n * RECORD_SIZE) / (1024 * 1024) / (ms / 1000) };
}

// Bounded-window pipeline: keeps up to `window` promises in flight.
export async function windowed(total, batch, window, sendBatch) {
  const inflight = new Set();
  for (let sent = 0; sent < total; sent += batch) {
    const n = Math.min(batch, total - sent);
    const p = sendBatch(n).finally(() => inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= window) await Promise.race(inflight);
  }
  await Promise.all(inflight);
}

// Transform used by the consume-transform-produce test: "<partition>:<offset>|" + lower-cased value.
export function transform(partition, offset, value) {
  const head = Buffer.from(`${partition}:${offset}|`);
  const out = Buffer.allocUnsafe(head.length + value.length);
  head.copy(out, 0);
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    out[head.length + i] = c >= 65 && c <= 90 ? c + 32 : c;
  }
  return out;
}
