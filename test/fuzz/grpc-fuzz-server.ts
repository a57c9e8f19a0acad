/**
 * The model server the gRPC fuzz suite runs against, in a process of its own: the fuzzing client
 * and the server then use both cores, and a server crash shows as this process exiting instead of
 * taking the test runner down. Prints `INFLOW_FUZZ_GRPC <host:port>` once listening; closes
 * gracefully when its stdin ends (the parent exited or closed it) or on SIGTERM.
 */
import { join } from 'node:path';
import { loadServable } from '../../src/runtime/index.ts';
import { startModelServer } from '../../src/server/model-server.ts';

/** The line prefix the parent waits for (grpc-fuzz.test.ts). */
const READY_PREFIX = 'INFLOW_FUZZ_GRPC ';

async function main(): Promise<void> {
  process.env.ORT_DISABLE_TELEMETRY = '1';
  const server = await startModelServer({
    modelRepository: join(import.meta.dirname, '..', '..', 'models', 'repository'),
    load: loadServable,
    rest: false,
    grpc: { host: '127.0.0.1', port: 0 },
    watch: false,
    shutdownGraceMs: 2000,
  });
  let closing: Promise<void> | undefined;
  const close = (): void => {
    closing ??= server.close().then(() => process.exit(0));
  };
  process.stdin.on('end', close).resume();
  process.on('SIGTERM', close);
  process.stdout.write(`${READY_PREFIX}${server.grpcAddress ?? ''}\n`);
}

await main();
