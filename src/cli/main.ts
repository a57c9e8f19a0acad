/**
 * The `inflow` command line: parse arguments → call the library. Exit codes come from error
 * codes; errors print one line (the stack with --verbose).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { InflowError } from '../errors.ts';
import { startTracing } from '../observability/tracing.ts';
import { cliError, exitCodeFor, joinNegativeValues, reportError } from './cli-errors.ts';
import { resolveKafkaAuto } from './local-kafka.ts';

// Commands load lazily: `inflow --help` should not pay for the Kafka client and its deps.
const demo = () => import('./demo-command.ts');
const kafka = () => import('./kafka-command.ts');
const registry = () => import('./registry-command.ts');
const serve = () => import('./serve-command.ts');
const models = () => import('./models-command.ts');
const stream = () => import('./stream-command.ts');
const edge = () => import('./edge-command.ts');
const predict = () => import('./predict-command.ts');
const bench = () => import('./bench-command.ts');
const topics = () => import('./topics-command.ts');

const help = `inflow — machine-learning models in Apache Kafka applications

Usage: inflow <command> [options]

Commands:
  demo                 embedded and remote inference side by side on live events, with a
                       dashboard (the in-process log by default: no cluster, no Java)
  serve                the model server (TF Serving + Open Inference Protocol, REST + gRPC,
                       dashboard at /dashboard/)
  predict <model>      one inference: embedded over --model-repository, or --server <url>
  bench                load against a model server or a pipeline: progress and percentiles
  kafka <action>       the project's local single-node Kafka broker: up, down, restart, status
  registry <action>    the project's local Schema Registry (Avro, Protobuf, JSON Schema): up, down, status
  models <action>      model delivery over Kafka: publish, label, split, list, inspect, delete,
                       rollout (guarded: the split moves step by step, guards roll it back)
  monitor <file.yaml>  drift of a prediction log against each version's reference profile
  stream <file.yaml>   run a stream pipeline declared in YAML (Kafka → predict → Kafka)
  validate <file.yaml> check a pipeline file without running it
  edge <agent.yaml>    the edge agent: MQTT in, embedded model, outbox to Kafka
  topics create <file> create the Kafka topics a pipeline, an edge agent or the Kafka-native
                       endpoint needs (partitions, compaction)
  help [command]       this help, or a command's

Options:
  --help, -h           help for a command
  --version            inflow's version
  --kafka auto         (every command that reaches Kafka) the local broker "inflow kafka up" started
  --json               machine-readable output (errors too: one JSON object on stderr)
  --verbose            print stacks with errors

Run "inflow help <command>" (or "inflow <command> --help") for examples.`;

/** inflow's version, from its package.json (two folders up from src/cli/ and from dist/cli/). */
export function inflowVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return manifest.version;
}

export { exitCodeFor } from './cli-errors.ts';

/**
 * Runs a long-lived command with OpenTelemetry tracing when the `OTEL_*` environment asks for it
 * (src/observability/tracing.ts); queued spans are flushed when the command ends.
 */
async function traced<T>(serviceName: string, run: () => Promise<T>): Promise<T> {
  const tracing = await startTracing({ serviceName });
  try {
    return await run();
  } finally {
    await tracing?.shutdown();
  }
}

export async function main(argv: string[], out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<number> {
  // `inflow help <command>` is `inflow <command> --help` (`npx inflow --help` shows npm's help).
  if (argv[0] === 'help') return main(argv[1] !== undefined ? [argv[1], '--help'] : ['--help'], out);
  if (argv[0] === '--version' || argv[0] === 'version') {
    const version = inflowVersion();
    out(
      argv.includes('--json') ? JSON.stringify({ version, node: process.versions.node }) : `inflow ${version} (Node.js ${process.version})`,
    );
    return 0;
  }
  // `--kafka auto`: the broker `inflow kafka up` started (the demo starts one of its own instead).
  if (argv[0] !== 'demo') {
    try {
      argv = await resolveKafkaAuto(argv);
    } catch (error) {
      return fail(cliError(error), argv);
    }
  }
  // grpc-js logs bind failures itself before they reach us as errors: the CLI prints them once, on one line.
  if (argv[0] === 'demo' || argv[0] === 'predict' || argv[0] === 'bench' || argv[0] === 'serve') process.env.GRPC_VERBOSITY ??= 'NONE';
  // The library's runtime is silent unless its host sets a logger; the long-running commands keep
  // their JSON logs on stderr (demo, bench and predict set their own, quieter, one).
  if (argv[0] === 'serve' || argv[0] === 'stream' || argv[0] === 'edge') {
    const [{ createLogger }, { setRuntimeLogger }] = await Promise.all([
      import('../observability/logger.ts'),
      import('../runtime/runtime-logger.ts'),
    ]);
    setRuntimeLogger(createLogger({ name: 'inflow.runtime' }));
  }
  // `models` has flags of its own (--model, --version, --topic, …): it parses its arguments itself.
  if (argv[0] === 'models') return (await models()).modelsMain(argv.slice(1), out);
  if (argv[0] === 'monitor') return (await import('./monitor-command.ts')).monitorMain(argv.slice(1), out);
  // `predict`, `bench` and `topics` too: their flags are their own.
  if (argv[0] === 'predict') return (await predict()).predictMain(argv.slice(1), out);
  if (argv[0] === 'bench') return (await bench()).benchMain(argv.slice(1), out);
  if (argv[0] === 'topics') return (await topics()).topicsMain(argv.slice(1), out);
  // `kafka` too (--port, --data, --keep-data), and its status answers 1 when no broker runs.
  if (argv[0] === 'kafka') return (await kafka()).kafkaMain(argv.slice(1), out);
  if (argv[0] === 'registry') return (await registry()).registryMain(argv.slice(1), out);
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions(joinNegativeValues(argv, (flag) => OPTIONS[flag as keyof typeof OPTIONS]?.type === 'string'));
  } catch (error) {
    return fail(cliError(error), argv);
  }
  const { values, positionals } = parsed;
  const [command, action] = positionals;
  try {
    switch (command) {
      case undefined:
        out(help);
        return values.help ? 0 : 2;
      case 'demo': {
        const { demoCommand, demoHelp } = await demo();
        if (values.help) return (out(demoHelp), 0);
        await traced('inflow-demo', () =>
          demoCommand(
            {
              records: values.records,
              rate: values.rate,
              kafka: values.kafka,
              remote: values.remote,
              exactlyOnce: values['exactly-once'],
              restPort: values['rest-port'],
              grpcPort: values['grpc-port'],
              stay: values.stay,
              json: values.json,
              scene: values.scene,
              avro: values.avro,
            },
            out,
          ),
        );
        return 0;
      }
      case 'serve': {
        const { serveCommand, serveHelp } = await serve();
        if (values.help) return (out(serveHelp), 0);
        await traced('inflow-serve', () =>
          serveCommand(
            {
              modelRepository: values['model-repository'],
              models: values.model,
              host: values.host,
              restPort: values['rest-port'],
              grpcPort: values['grpc-port'],
              noRest: values['no-rest'],
              noGrpc: values['no-grpc'],
              workers: values.workers,
              kafka: values.kafka,
              requestTopic: values['request-topic'],
              responseTopic: values['response-topic'],
              errorTopic: values['error-topic'],
              defaultModel: values['default-model'],
              exactlyOnce: values['exactly-once'],
              modelsTopic: values['models-topic'],
              modelsTrustedKeys: values['models-trusted-key'],
              modelsAllowExecutable: values['models-allow-executable'],
              modelsMaxStagingBytes: values['models-max-staging-bytes'],
              group: values.group,
              kafkaConfig: values['kafka-config'],
              noKafkaEndpoint: values['no-kafka-endpoint'],
              endpointFormats: values['endpoint-formats'],
            },
            out,
          ),
        );
        return 0;
      }
      case 'stream': {
        const { streamHelp } = await stream();
        if (values.help) return (out(streamHelp), 0);
        const { streamMain } = await import('./stream-threads.ts');
        await traced('inflow-stream', () =>
          streamMain(
            {
              file: action,
              kafka: values.kafka,
              describe: values.describe,
              dryRun: values['dry-run'],
              metricsPort: values['metrics-port'],
              applicationServer: values['application-server'],
              stateDir: values['state-dir'],
              json: values.json,
              threads: values.threads,
            },
            out,
          ),
        );
        return 0;
      }
      case 'validate': {
        const { validateCommand, validateHelp } = await stream();
        if (values.help) return (out(validateHelp), 0);
        await validateCommand(action, out, values.json ?? false);
        return 0;
      }
      case 'edge': {
        const { edgeCommand, edgeHelp } = await edge();
        if (values.help) return (out(edgeHelp), 0);
        await traced('inflow-edge', () =>
          edgeCommand({ file: action, kafka: values.kafka, dryRun: values['dry-run'], json: values.json }, out),
        );
        return 0;
      }
      default:
        throw new InflowError('INVALID_ARGUMENT', `unknown command "${command}"; run "inflow --help" for the list`);
    }
  } catch (error) {
    return fail(cliError(error), argv);
  }
}

/** Prints the error (one line, or JSON under --json; the stack under --verbose) and answers its exit code. */
function fail(e: InflowError, argv: readonly string[]): number {
  const code = exitCodeFor(e);
  reportError(e, argv, code);
  return code;
}

/** The flags of the commands main.ts parses itself (unknown ones are errors). */
const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  records: { type: 'string' },
  rate: { type: 'string' },
  remote: { type: 'string' },
  stay: { type: 'boolean' },
  scene: { type: 'string' },
  avro: { type: 'boolean' },
  kafka: { type: 'string' },
  'model-repository': { type: 'string' },
  model: { type: 'string', multiple: true },
  host: { type: 'string' },
  'rest-port': { type: 'string' },
  'grpc-port': { type: 'string' },
  'no-rest': { type: 'boolean' },
  'no-grpc': { type: 'boolean' },
  describe: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  workers: { type: 'string' },
  'request-topic': { type: 'string' },
  'response-topic': { type: 'string' },
  'error-topic': { type: 'string' },
  'default-model': { type: 'string' },
  'exactly-once': { type: 'boolean' },
  'models-topic': { type: 'string' },
  'models-trusted-key': { type: 'string', multiple: true },
  'models-allow-executable': { type: 'boolean' },
  'models-max-staging-bytes': { type: 'string' },
  group: { type: 'string' },
  'kafka-config': { type: 'string' },
  'no-kafka-endpoint': { type: 'boolean' },
  'endpoint-formats': { type: 'string' },
  'metrics-port': { type: 'string' },
  'application-server': { type: 'string' },
  threads: { type: 'string' },
  'state-dir': { type: 'string' },
} as const;

function parseOptions(argv: string[]) {
  return parseArgs({ args: argv, allowPositionals: true, strict: true, options: OPTIONS });
}
