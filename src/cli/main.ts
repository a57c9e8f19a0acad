/**
 * The `inflow` command line: parse arguments → call the library. Exit codes come from error
 * codes; errors print one line (the stack with --verbose).
 */
import { parseArgs } from 'node:util';
import { InflowError } from '../errors.ts';

// Commands load lazily: `inflow --help` should not pay for the Kafka client and its deps.
const demo = () => import('./demo-command.ts');
const kafka = () => import('./kafka-command.ts');
const serve = () => import('./serve-command.ts');
const models = () => import('./models-command.ts');
const stream = () => import('./stream-command.ts');

const help = `inflow — machine-learning models in Apache Kafka applications

Usage: inflow <command> [options]

Commands:
  demo                 run the demo on the in-process log (no cluster needed)
  serve                the model server (TF Serving + Open Inference Protocol, REST + gRPC)
  kafka up|down|status the project's local single-node Kafka broker
  models <action>      model delivery over Kafka: publish, label, split, list, delete
  stream <file.yaml>   run a stream pipeline declared in YAML (Kafka → predict → Kafka)
  validate <file.yaml> check a pipeline file without running it

Options:
  --help, -h           help for a command
  --json               machine-readable output
  --verbose            print stacks with errors

Run "inflow <command> --help" for examples.`;

/** Exit code per error code: 2 for caller mistakes, 3 for unavailable dependencies, 1 otherwise. */
export function exitCodeFor(error: InflowError): number {
  if (error.httpStatus >= 400 && error.httpStatus < 500) return 2;
  if (error.code === 'JAVA_MISSING' || error.code === 'DOWNLOAD_FAILED' || error.retriable) return 3;
  return 1;
}

export async function main(argv: string[], out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<number> {
  // `models` has flags of its own (--model, --version, --topic, …): it parses its arguments itself.
  if (argv[0] === 'models') return (await models()).modelsMain(argv.slice(1), out);
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      json: { type: 'boolean' },
      verbose: { type: 'boolean' },
      records: { type: 'string' },
      kafka: { type: 'string' },
      'model-repository': { type: 'string' },
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
      group: { type: 'string' },
    },
  });
  const [command, action] = positionals;
  try {
    switch (command) {
      case undefined:
        out(help);
        return values.help ? 0 : 2;
      case 'demo': {
        const { demoCommand, demoHelp } = await demo();
        if (values.help) return (out(demoHelp), 0);
        const records = Number(values.records ?? 20_000);
        if (!Number.isInteger(records) || records < 1)
          throw new InflowError('INVALID_ARGUMENT', `--records must be a positive integer, got "${values.records}"`);
        await demoCommand({ records, ...(values.kafka ? { kafka: values.kafka } : {}) }, out);
        return 0;
      }
      case 'kafka': {
        const { kafkaCommand, kafkaHelp } = await kafka();
        if (values.help) return (out(kafkaHelp), 0);
        await kafkaCommand(action, values.json ?? false, out);
        return 0;
      }
      case 'serve': {
        const { serveCommand, serveHelp } = await serve();
        if (values.help) return (out(serveHelp), 0);
        await serveCommand(
          {
            modelRepository: values['model-repository'],
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
            group: values.group,
          },
          out,
        );
        return 0;
      }
      case 'stream': {
        const { streamCommand, streamHelp } = await stream();
        if (values.help) return (out(streamHelp), 0);
        await streamCommand({ file: action, kafka: values.kafka, describe: values.describe, dryRun: values['dry-run'] }, out);
        return 0;
      }
      case 'validate': {
        const { validateCommand, validateHelp } = await stream();
        if (values.help) return (out(validateHelp), 0);
        await validateCommand(action, out);
        return 0;
      }
      default:
        throw new InflowError('INVALID_ARGUMENT', `unknown command "${command}"; run "inflow --help" for the list`);
    }
  } catch (error) {
    const e = InflowError.from(error);
    process.stderr.write(`inflow: ${e.message}${values.verbose && e.stack ? `\n${e.stack}` : ''}\n`);
    return exitCodeFor(e);
  }
}
