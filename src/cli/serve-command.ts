/** `inflow serve`: the model server (TF Serving + Open Inference Protocol, REST + gRPC). */
import { InflowError } from '../errors.ts';
import { createLogger } from '../observability/logger.ts';
import { loadServable } from '../runtime/index.ts';
import { startModelServer } from '../server/model-server.ts';

export const serveHelp = `inflow serve --model-repository <dir> [options]

Serves every model in the repository over REST (TF Serving :predict, Open Inference Protocol /v2)
and gRPC (tensorflow.serving.PredictionService, inference.GRPCInferenceService, grpc.health.v1).
New versions dropped into the repository are loaded, warmed up and switched in without a restart.

Options:
  --model-repository <dir>  model folders: <dir>/<model>/config.yaml + <dir>/<model>/<version>/
  --host <addr>             listen address (default 0.0.0.0)
  --rest-port <n>           REST port (default 8501; 0 = any free port)
  --grpc-port <n>           gRPC port (default 8500; 0 = any free port)
  --no-rest, --no-grpc      disable a transport
Environment:
  INFLOW_AUTH_TOKEN         bearer token required for inference calls
  INFLOW_ADMIN_TOKEN        enables the admin API (reload, splits, shadow) with this token

Examples:
  inflow serve --model-repository models/repository
  curl -s localhost:8501/v1/models/digits-mlp
  inflow serve --model-repository /models --rest-port 8080 --no-grpc`;

function port(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InflowError('INVALID_ARGUMENT', `${name} must be a port number 0-65535, got "${value}"`);
  return n;
}

export interface ServeFlags {
  modelRepository?: string | undefined;
  host?: string | undefined;
  restPort?: string | undefined;
  grpcPort?: string | undefined;
  noRest?: boolean | undefined;
  noGrpc?: boolean | undefined;
}

/** Runs until SIGINT/SIGTERM, then shuts down gracefully. */
export async function serveCommand(flags: ServeFlags, out: (line: string) => void): Promise<void> {
  if (!flags.modelRepository) throw new InflowError('INVALID_ARGUMENT', '--model-repository <dir> is required (e.g. models/repository)');
  const host = flags.host ?? '0.0.0.0';
  const auth = process.env.INFLOW_AUTH_TOKEN ? { token: process.env.INFLOW_AUTH_TOKEN } : undefined;
  const admin = process.env.INFLOW_ADMIN_TOKEN ? { token: process.env.INFLOW_ADMIN_TOKEN } : undefined;
  const logger = createLogger({ name: 'inflow.serve' });
  const server = await startModelServer({
    modelRepository: flags.modelRepository,
    load: loadServable,
    logger,
    rest: flags.noRest
      ? false
      : { host, port: port(flags.restPort, '--rest-port', 8501), ...(auth ? { auth } : {}), ...(admin ? { admin } : {}) },
    grpc: flags.noGrpc ? false : { host, port: port(flags.grpcPort, '--grpc-port', 8500), ...(auth ? { auth } : {}) },
  });
  out(`inflow serving ${server.inference.repository.models().join(', ') || '(no models yet)'}`);
  if (server.restAddress) out(`  REST  http://${server.restAddress}  (TF Serving /v1, Open Inference Protocol /v2, /metrics)`);
  if (server.grpcAddress) out(`  gRPC  ${server.grpcAddress}`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      out('shutting down (draining in-flight requests)…');
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
}
