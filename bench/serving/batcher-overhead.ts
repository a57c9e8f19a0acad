/**
 * Overhead of the dynamic batcher per request: `--callers` concurrent callers each send
 * `--requests` single-row FP32 requests in a loop (await each answer, then send the next), against a
 * no-op `run` that echoes its input. Compared with the same callers calling `run` directly, so the
 * difference is the batcher's own cost (queueing, grouping, concat + split copies, promises).
 * A warm-up round first, then `--reps` rounds; prints the median µs per request of each setup.
 * Not part of `npm test`.
 *
 *   node bench/serving/batcher-overhead.ts [--callers 64] [--requests 2000] [--width 16] [--reps 5]
 */
import { parseArgs } from 'node:util';
import { createDynamicBatcher, type BatcherOptions } from '../../src/serving/dynamic-batcher.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';

const { values } = parseArgs({
  options: {
    callers: { type: 'string', default: '64' },
    requests: { type: 'string', default: '2000' },
    width: { type: 'string', default: '16' },
    reps: { type: 'string', default: '5' },
  },
});
const CALLERS = Number(values.callers);
const REQUESTS = Number(values.requests);
const WIDTH = Number(values.width);
const REPS = Number(values.reps);

type Run = (inputs: Record<string, Tensor>, options: { outputs?: readonly string[] }) => Promise<Record<string, Tensor>>;

/** The no-op model: answers its input as its output. */
const echo: Run = async (inputs) => ({ y: inputs.x as Tensor });

interface Result {
  microsPerRequest: number;
  meanBatchRows: number;
}

async function round(call: Run, batches: { rows: number; count: number }): Promise<Result> {
  const input: Tensor = { dtype: 'FP32', shape: [1, WIDTH], data: new Float32Array(WIDTH).fill(1) };
  batches.rows = 0;
  batches.count = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      for (let i = 0; i < REQUESTS; i++) {
        const out = await call({ x: input }, {});
        if (out.y?.shape[0] !== 1) throw new Error(`expected 1 row back, got shape [${out.y?.shape.join(', ')}]`);
      }
    }),
  );
  const micros = (performance.now() - started) * 1000;
  return { microsPerRequest: micros / (CALLERS * REQUESTS), meanBatchRows: batches.count ? batches.rows / batches.count : 1 };
}

function setup(name: string, options: BatcherOptions | undefined): { name: string; call: Run; batches: { rows: number; count: number } } {
  const batches = { rows: 0, count: 0 };
  if (!options) return { name, call: echo, batches };
  const batcher = createDynamicBatcher(echo, options, {
    onBatch: (info) => {
      batches.rows += info.rows;
      batches.count++;
    },
  });
  return { name, call: (inputs, o) => batcher.submit(inputs, o), batches };
}

const setups = [
  setup('direct run (no batcher)', undefined),
  setup('batcher delay 0, max 64, 1 slot', { maxBatchSize: 64, maxDelayMicros: 0, maxQueueSize: 4096, maxConcurrentBatches: 1 }),
  setup('batcher delay 0, max 64, 4 slots', { maxBatchSize: 64, maxDelayMicros: 0, maxQueueSize: 4096, maxConcurrentBatches: 4 }),
  setup('batcher delay 0, max 8, 1 slot', { maxBatchSize: 8, maxDelayMicros: 0, maxQueueSize: 4096, maxConcurrentBatches: 1 }),
];

for (const s of setups) await round(s.call, s.batches); // warm-up (JIT)
const results = new Map<string, Result[]>(setups.map((s) => [s.name, []]));
for (let rep = 0; rep < REPS; rep++) {
  for (const s of setups) results.get(s.name)?.push(await round(s.call, s.batches));
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
console.log(`${CALLERS} callers × ${REQUESTS} requests of FP32 [1, ${WIDTH}], no-op run, median of ${REPS} (node ${process.version})`);
console.log('setup'.padEnd(36), 'µs/request'.padStart(11), 'mean batch rows'.padStart(16));
for (const [name, rs] of results) {
  console.log(
    name.padEnd(36),
    median(rs.map((r) => r.microsPerRequest))
      .toFixed(2)
      .padStart(11),
    median(rs.map((r) => r.meanBatchRows))
      .toFixed(1)
      .padStart(16),
  );
}
