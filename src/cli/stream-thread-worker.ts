/**
 * One stream thread of `inflow stream --threads N` (stream-threads.ts): this worker thread runs
 * the pipeline as `inflow stream` would — its own Kafka client, consumer (same group as the other
 * threads), producer (its own transactional id: `-t<index>`) and models — and answers its
 * coordinator's probes with its readiness and metrics. It stops when the coordinator says so and
 * reports a failure as a message before it exits.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Registry } from 'prom-client';
import { InflowError } from '../errors.ts';
import type { LocalInference } from '../serving/local-inference.ts';
import type { StreamsRunner } from '../streams/index.ts';
import type { BuiltPipeline } from '../streams/pipeline/index.ts';
import { pipelineReady, streamCommand } from './stream-command.ts';
import type { FromStreamThread, StreamThreadInit, ToStreamThread } from './stream-threads.ts';

const init = workerData as StreamThreadInit;
const port = parentPort;
if (port === null) throw new InflowError('INTERNAL', 'stream-thread-worker.ts runs as a worker thread of inflow stream --threads');
const send = (message: FromStreamThread): void => port.postMessage(message);
const stop = new AbortController();
let running: { runner: StreamsRunner; built: BuiltPipeline } | undefined;

port.on('message', (message: ToStreamThread) => {
  if (message.type === 'stop') stop.abort();
  else if (message.type === 'probe') {
    const r = running;
    const registries = r
      ? [
          r.runner.metrics.registry,
          ...[...r.built.inferencers.values()].flatMap((i) => ('metrics' in i ? [(i as LocalInference).metrics.registry] : [])),
        ]
      : [];
    // Before the runner exists there is nothing to report (and merge() of no registries throws).
    (registries.length === 0 ? Promise.resolve([]) : Registry.merge([...new Set(registries)]).getMetricsAsJSON()).then(
      (metrics) => send({ type: 'probe', id: message.id, ready: r !== undefined && pipelineReady(r.runner, r.built), metrics }),
      () => send({ type: 'probe', id: message.id, ready: false, metrics: [] }),
    );
  }
});

try {
  await streamCommand(
    { file: init.file, kafka: init.kafka, applicationServer: init.applicationServer, stateDir: init.stateDir },
    (line) => send({ type: 'line', line }),
    {
      signal: stop.signal,
      threadIndex: init.index,
      onRunner: (runner, built) => {
        running = { runner, built };
      },
      ...(init.statusIntervalMs === undefined ? {} : { statusIntervalMs: init.statusIntervalMs }),
    },
  );
  send({ type: 'stopped' });
} catch (error) {
  const e = InflowError.from(error);
  send({ type: 'failed', code: e.code, message: e.message });
}
port.close();
