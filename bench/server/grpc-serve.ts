/**
 * Starts inflow's gRPC server alone over models/repository, for load generators in other
 * processes (bench/server/grpc-load.ts, ghz): `node bench/server/grpc-serve.ts [port]` (default
 * 8500). Runs until SIGINT/SIGTERM, then prints its batch statistics to stderr and shuts down gracefully.
 */
import { loadServable } from '../../src/runtime/index.ts';
import { createGrpcServer } from '../../src/server/grpc/index.ts';
import { createLocalInference } from '../../src/serving/local-inference.ts';

process.env.ORT_DISABLE_TELEMETRY = '1';
// One intra-op thread unless told otherwise, as in bench/peers/servers-compare.ts: onnxruntime's
// default pool spins a thread per core after each run, which starves a server pinned to one CPU.
process.env.INFLOW_ONNX_INTRA_OP_THREADS ??= '1';
const inference = await createLocalInference({ modelRepository: 'models/repository', load: loadServable, watch: false, settleMs: 0 });
const server = createGrpcServer(inference, { host: '127.0.0.1', port: Number(process.argv[2] ?? 8500) });
const { port } = await server.start();
console.log(`gRPC server on 127.0.0.1:${port}`);
/** Requests, batches and rows per batch since start (the batcher's metrics), printed to stderr on exit. */
async function batchStats(): Promise<{ requests: number; batches: number; rowsPerBatch: number }> {
  const sum = async (name: string): Promise<number> =>
    ((await inference.metrics.registry.getSingleMetric(name)?.get())?.values ?? []).reduce((n, v) => n + v.value, 0);
  const requests = await sum('inflow_inference_count_total');
  const batches = await sum('inflow_inference_exec_count_total');
  return { requests, batches, rowsPerBatch: Number((requests / Math.max(1, batches)).toFixed(2)) };
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void batchStats()
      .then((stats) => console.error(JSON.stringify(stats)))
      .then(() => server.close(2000))
      .then(() => inference.close())
      .then(() => process.exit(0));
  });
}
