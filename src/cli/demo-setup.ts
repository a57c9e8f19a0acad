/**
 * What the demo stands on: the Kafka it runs on (the in-process log, the project's local broker
 * started for the run, or a cluster), a scratch copy of the example model repository, and the
 * model server over it. Each returns how to undo it; the demo undoes them in reverse order.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { parseBootstrapServers } from '../config/kafka-config.ts';
import { InflowError } from '../errors.ts';
import { startLocalBroker } from '../kafka/broker/local-broker.ts';
import { createKafkaClient, createMemoryClient } from '../kafka/index.ts';
import type { KafkaClient } from '../kafka/types.ts';
import type { Logger } from '../observability/logger.ts';
import { exampleModelRepository } from '../repository/example-models.ts';
import { loadServable } from '../runtime/index.ts';
import type { DashboardPipeline } from '../server/dashboard/dashboard-options.ts';
import { type RunningModelServer, startModelServer } from '../server/model-server.ts';
import { type ProgressStream, withSpinner } from './progress.ts';

/** The example models shipped with the package. */
export const EXAMPLE_REPOSITORY = exampleModelRepository;

/** The Kafka of a demo run. */
export interface DemoKafka {
  readonly client: KafkaClient;
  /** "the in-process log", "a local Kafka broker at …", "Kafka at …". */
  readonly description: string;
  /** Whether the demo's topics are deleted at the end (a cluster it did not start). */
  readonly external: boolean;
  close(): Promise<void>;
}

/**
 * `undefined`: the in-process log; `auto`: the project's local broker (needs Java 17+; its jars
 * are fetched from Maven Central once), stopped at the end; else `host:port[,host:port]`.
 */
export async function openDemoKafka(kafka: string | undefined, progress: ProgressStream): Promise<DemoKafka> {
  if (kafka === undefined || kafka === 'memory') {
    const client = createMemoryClient();
    return { client, description: 'the in-process log (no cluster, no Java)', external: false, close: () => client.close() };
  }
  if (kafka === 'auto') {
    const broker = await withSpinner(
      progress,
      'starting a local Kafka broker',
      startLocalBroker({
        onFetch: (lib) => void progress.write(`\nfetching the Kafka broker jars from Maven Central into ${lib} (once)\n`),
      }),
      (b) => `local Kafka broker at ${b.bootstrapServers}`,
    );
    const client = createKafkaClient({ bootstrapServers: [broker.bootstrapServers], clientId: 'inflow-demo' });
    return {
      client,
      description: `a local Kafka broker at ${broker.bootstrapServers} (stopped at the end)`,
      external: false,
      async close() {
        await client.close().catch(() => undefined);
        await broker.stop();
      },
    };
  }
  const servers = parseBootstrapServers(kafka);
  const client = createKafkaClient({ bootstrapServers: servers, clientId: 'inflow-demo', retries: 1, requestTimeoutMs: 10_000 });
  return { client, description: `Kafka at ${servers.join(',')}`, external: true, close: () => client.close() };
}

/**
 * A scratch copy of the example repository in which digits-mlp has a version 2 (a copy of
 * version 1), labels stable=1 / canary=2, a 90/10 split and a 10 % shadow of version 2, so the
 * dashboard has a canary to show and to edit. Returns the folder and how to remove it.
 */
export async function demoRepository(source: string = EXAMPLE_REPOSITORY): Promise<{ root: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'inflow-demo-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    const root = join(dir, 'repository');
    await cp(source, root, { recursive: true, preserveTimestamps: true });
    const model = join(root, 'digits-mlp');
    await cp(join(model, '1'), join(model, '2'), { recursive: true, preserveTimestamps: true });
    const config = parseYaml(await readFile(join(model, 'config.yaml'), 'utf8')) as Record<string, unknown>;
    Object.assign(config, {
      versionPolicy: { latest: 2 },
      labels: { stable: 1, canary: 2 },
      routing: {
        split: [
          { version: 1, weight: 90 },
          { version: 2, weight: 10 },
        ],
        shadow: { version: 2, fraction: 0.1 },
      },
    });
    await writeFile(join(model, 'config.yaml'), stringifyYaml(config));
    return { root, remove };
  } catch (error) {
    await remove();
    throw new InflowError('FAILED_PRECONDITION', `cannot prepare the demo's model repository from ${source}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** Whether a TCP port on 127.0.0.1 can be listened on now. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Options of {@link startDemoServer}. */
export interface DemoServerOptions {
  readonly modelRepository: string;
  /** Requested ports; undefined = the defaults 8501/8500 when free, else any free port. */
  readonly restPort: number | undefined;
  readonly grpcPort: number | undefined;
  readonly adminToken: string;
  readonly pipelines: () => readonly DashboardPipeline[];
  readonly logger: Logger;
}

/** Starts the model server on loopback with the admin API and the dashboard (its pipelines included). */
export async function startDemoServer(o: DemoServerOptions): Promise<RunningModelServer> {
  const pick = async (wanted: number | undefined, fallback: number): Promise<number> =>
    wanted ?? ((await portIsFree(fallback)) ? fallback : 0);
  const restPort = await pick(o.restPort, 8501);
  const grpcPort = await pick(o.grpcPort, 8500);
  return startModelServer({
    modelRepository: o.modelRepository,
    load: loadServable,
    logger: o.logger,
    watch: false,
    shutdownGraceMs: 2000,
    rest: {
      host: '127.0.0.1',
      port: restPort,
      admin: { token: o.adminToken },
      dashboard: { title: 'inflow demo', pipelines: o.pipelines },
      logger: o.logger,
    },
    grpc: { host: '127.0.0.1', port: grpcPort, logger: o.logger },
  });
}
