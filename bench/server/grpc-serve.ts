/**
 * Starts inflow's gRPC server alone over models/repository, for load generators in other
 * processes (bench/server/grpc-load.ts, ghz): `node bench/server/grpc-serve.ts [port]` (default
 * 8500). Runs until SIGINT/SIGTERM, then shuts down gracefully.
 */
import { loadServable } from '../../src/runtime/index.ts';
import { createGrpcServer } from '../../src/server/grpc/index.ts';
import { createLocalInference } from '../../src/serving/local-inference.ts';

process.env.ORT_DISABLE_TELEMETRY = '1';
const inference = await createLocalInference({ modelRepository: 'models/repository', load: loadServable, watch: false, settleMs: 0 });
const server = createGrpcServer(inference, { host: '127.0.0.1', port: Number(process.argv[2] ?? 8500) });
const { port } = await server.start();
console.log(`gRPC server on 127.0.0.1:${port}`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void server
      .close(2000)
      .then(() => inference.close())
      .then(() => process.exit(0));
  });
}
