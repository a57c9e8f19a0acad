/**
 * `inflow topics create`: the Kafka topics a pipeline, an edge agent or the Kafka-native endpoint
 * needs, with partition counts and the models topic compacted — so `stream`, `serve --kafka` and
 * `edge` need no script first. Topics that exist are left as they are (and reported).
 */
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { type KafkaConfig, kafkaConfigSchema, parseBootstrapServers } from '../config/kafka-config.ts';
import { loadConfigFile, validateConfig } from '../config/load-config.ts';
import { loadEdgeConfig } from '../edge/index.ts';
import { InflowError } from '../errors.ts';
import { createKafkaClient } from '../kafka/index.ts';
import { endpointFormatsSchema } from '../server/kafka/endpoint-formats.ts';
import { buildPipeline, loadPipelineFile } from '../streams/pipeline/index.ts';
import { commandFailed, joinNegativeValues } from './cli-errors.ts';
import { kafkaFromFlags } from './kafka-flags.ts';
import { renderTable } from './text-table.ts';

export const topicsHelp = `inflow topics create [<pipeline.yaml|agent.yaml> …] [--endpoint] [--models-topic <t>] [options]

Creates the Kafka topics that inflow's commands read and write, unless they exist:
  a pipeline file   its source topics, its "to" topics, prediction logs and dead-letter topic
                    (--partitions each), and the models topic of an embedded source (compacted)
  an edge agent     its forward topics (readings, predictions, errors) and its models topic
  --endpoint        the Kafka-native endpoint of "inflow serve --kafka": request, response and
                    error topics (--request-topic, --response-topic, --error-topic as for serve),
                    and with --endpoint-formats <file> (as for serve) its prediction log topic
  --models-topic    a models topic for "inflow models publish" / "serve --models-topic"
Models topics get cleanup.policy=compact and one partition (one total order of publishes).

Options:
  --kafka <servers|auto>      the cluster (default: the file's kafka section, else
                              $KAFKA_BOOTSTRAP_SERVERS); auto: the broker "inflow kafka up" started
  --kafka-config <file>       connection settings (SASL, TLS) for --endpoint / --models-topic
  --partitions <n>            partitions of each data topic (default 3): the most consumers of a
                              group that share the work
  --replication-factor <n>    replicas of each topic (default: the cluster's default)
  --dry-run                   print what would be created; connects nowhere
  --json                      one JSON object: the topics and what happened to each

Examples:
  inflow topics create examples/pipelines/digits-embedded.yaml --kafka auto
  inflow topics create --endpoint --models-topic inflow-models --kafka auto
  inflow topics create examples/edge/digits-agent.yaml --partitions 6 --dry-run`;

/** A topic to create and why. */
export interface TopicPlan {
  readonly topic: string;
  readonly partitions: number;
  readonly configs: Record<string, string>;
  /** What uses it ("pipeline digits-scorer: input", "models topic", …). */
  readonly role: string;
}

/** The plan of one command line, and the cluster it goes to (undefined: none named). */
interface Plan {
  readonly topics: TopicPlan[];
  readonly kafka: KafkaConfig | undefined;
}

const servers = (k: KafkaConfig): string => (Array.isArray(k.bootstrapServers) ? k.bootstrapServers.join(',') : k.bootstrapServers);

const COMPACTED = { 'cleanup.policy': 'compact' } as const;

function positive(flag: string, value: string | undefined, fallback: number | undefined): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 100_000)
    throw new InflowError('INVALID_ARGUMENT', `--${flag} must be an integer 1-100000, got "${value}"`);
  return n;
}

/** What a YAML file is: a pipeline (has `pipeline:`) or an edge agent (has `agentId:`/`mqtt:`). */
async function fileKind(file: string): Promise<'pipeline' | 'edge'> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new InflowError('INVALID_ARGUMENT', `${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`, {
      cause: error,
    });
  }
  const doc: unknown = (() => {
    try {
      return parseYaml(text) as unknown;
    } catch {
      return undefined; // the loaders below say what is wrong with it
    }
  })();
  const keys = typeof doc === 'object' && doc !== null ? Object.keys(doc) : [];
  if (keys.includes('pipeline')) return 'pipeline';
  if (keys.includes('agentId') || keys.includes('mqtt')) return 'edge';
  throw new InflowError(
    'INVALID_ARGUMENT',
    `${file}: neither a pipeline file (pipeline: …) nor an edge agent file (agentId:, mqtt: …); see docs/config-reference.md`,
  );
}

/** The topics of a pipeline file, from its topology as `inflow stream` would build it (no model loaded). */
async function pipelineTopics(file: string, partitions: number): Promise<{ topics: TopicPlan[]; kafka: KafkaConfig }> {
  const config = await loadPipelineFile(file);
  const built = await buildPipeline(config, { baseDir: dirname(file), source: file, dryRun: true });
  await built.close();
  const name = `pipeline ${config.applicationId}`;
  const t = built.topology;
  const dlq = built.runnerOptions.deadLetterTopic ?? `${config.applicationId}-dlq`;
  const topics: TopicPlan[] = [
    ...t.inputTopics.map((topic) => ({ topic, partitions, configs: {}, role: `${name}: input` })),
    ...t.outputTopics.map((topic) => ({ topic, partitions, configs: {}, role: `${name}: output` })),
    { topic: dlq, partitions, configs: {}, role: `${name}: dead letters` },
    ...Object.values(config.models ?? {}).flatMap((source) =>
      source.embedded?.modelsTopic
        ? [{ topic: source.embedded.modelsTopic, partitions: 1, configs: { ...COMPACTED }, role: `${name}: models topic` }]
        : [],
    ),
  ];
  return { topics, kafka: config.kafka };
}

/** The topics of an edge agent file: what it forwards, and the models topic it follows. */
async function edgeTopics(file: string, partitions: number): Promise<{ topics: TopicPlan[]; kafka: KafkaConfig | undefined }> {
  const config = await loadEdgeConfig(file);
  const name = `edge agent ${config.agentId}`;
  const f = config.forward;
  const topics: TopicPlan[] = [
    ...(f.readings ? [{ topic: f.readings, partitions, configs: {}, role: `${name}: readings` }] : []),
    ...(f.predictions ? [{ topic: f.predictions, partitions, configs: {}, role: `${name}: predictions` }] : []),
    ...(f.errors ? [{ topic: f.errors, partitions, configs: {}, role: `${name}: errors` }] : []),
    ...(config.model.modelsTopic
      ? [{ topic: config.model.modelsTopic, partitions: 1, configs: { ...COMPACTED }, role: `${name}: models topic` }]
      : []),
  ];
  if (config.kafka === undefined)
    throw new InflowError('INVALID_ARGUMENT', `${file}: the agent has no kafka: section, so it uses no topic`);
  return { topics, kafka: config.kafka };
}

function parse(argv: string[]) {
  const options = {
    help: { type: 'boolean', short: 'h' },
    json: { type: 'boolean' },
    verbose: { type: 'boolean' },
    'dry-run': { type: 'boolean' },
    endpoint: { type: 'boolean' },
    kafka: { type: 'string' },
    'kafka-config': { type: 'string' },
    partitions: { type: 'string' },
    'replication-factor': { type: 'string' },
    'models-topic': { type: 'string' },
    'request-topic': { type: 'string' },
    'response-topic': { type: 'string' },
    'error-topic': { type: 'string' },
    'endpoint-formats': { type: 'string' },
  } as const;
  const args = joinNegativeValues(argv, (flag) => options[flag as keyof typeof options]?.type === 'string');
  return parseArgs({ args, allowPositionals: true, strict: true, options });
}

/** Everything the command line asks for, and the cluster (the flag, else the first file's, else the environment). */
async function plan(values: ReturnType<typeof parse>['values'], files: string[]): Promise<Plan> {
  const partitions = positive('partitions', values.partitions, 3) ?? 3;
  const topics: TopicPlan[] = [];
  let fileKafka: KafkaConfig | undefined;
  for (const file of files) {
    const part = (await fileKind(file)) === 'pipeline' ? await pipelineTopics(file, partitions) : await edgeTopics(file, partitions);
    topics.push(...part.topics);
    fileKafka ??= part.kafka;
  }
  if (values.endpoint) {
    topics.push(
      { topic: values['request-topic'] ?? 'inflow-requests', partitions, configs: {}, role: 'Kafka-native endpoint: requests' },
      { topic: values['response-topic'] ?? 'inflow-responses', partitions, configs: {}, role: 'Kafka-native endpoint: responses' },
      { topic: values['error-topic'] ?? 'inflow-errors', partitions, configs: {}, role: 'Kafka-native endpoint: errors' },
    );
    // serve writes a prediction log only where the formats file names one; it must exist too.
    const formats =
      values['endpoint-formats'] === undefined ? undefined : await loadConfigFile(endpointFormatsSchema, values['endpoint-formats']);
    if (formats?.predictionLog) {
      topics.push({ topic: formats.predictionLog.topic, partitions, configs: {}, role: 'Kafka-native endpoint: prediction log' });
    }
  } else if (values['endpoint-formats'] !== undefined) {
    throw new InflowError('INVALID_ARGUMENT', "--endpoint-formats goes with --endpoint (it names the endpoint's prediction log topic)");
  }
  if (values['models-topic'])
    topics.push({ topic: values['models-topic'], partitions: 1, configs: { ...COMPACTED }, role: 'models topic' });
  if (topics.length === 0) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      'nothing to create: give a pipeline or edge agent file, --endpoint or --models-topic (see inflow topics --help)',
    );
  }
  // One entry per topic: the first role wins (a pipeline's output is the next one's input).
  const unique = topics.filter((t, i) => topics.findIndex((u) => u.topic === t.topic) === i);
  const kafka = await clusterFor(values, fileKafka);
  return { topics: unique, kafka };
}

async function clusterFor(
  values: ReturnType<typeof parse>['values'],
  fileKafka: KafkaConfig | undefined,
): Promise<KafkaConfig | undefined> {
  if (values['kafka-config'] !== undefined || fileKafka === undefined)
    return kafkaFromFlags(
      { kafka: values.kafka, kafkaConfig: values['kafka-config'] },
      'inflow-topics',
      process.env.KAFKA_BOOTSTRAP_SERVERS,
    );
  const servers = values.kafka !== undefined ? parseBootstrapServers(values.kafka) : fileKafka.bootstrapServers;
  if (servers === 'memory') return undefined;
  return validateConfig(kafkaConfigSchema, { ...fileKafka, bootstrapServers: servers }, '--kafka');
}

async function run(argv: string[], out: (line: string) => void): Promise<void> {
  const { values, positionals } = parse(argv);
  if (values.help) return out(topicsHelp);
  const [action, ...files] = positionals;
  if (action !== 'create') throw new InflowError('INVALID_ARGUMENT', `unknown action "${action ?? ''}" for inflow topics; expected create`);
  const { topics, kafka } = await plan(values, files);
  const replicationFactor = positive('replication-factor', values['replication-factor'], undefined);
  const print = (results: Array<TopicPlan & { status: string }>, where: string): void => {
    if (values.json) {
      out(JSON.stringify({ kafka: where, topics: results }));
      return;
    }
    for (const line of renderTable([
      ['TOPIC', 'PARTITIONS', 'CONFIG', 'STATUS', 'USED BY'],
      ...results.map((r) => [
        r.topic,
        String(r.partitions),
        Object.entries(r.configs)
          .map(([k, v]) => `${k}=${v}`)
          .join(',') || '-',
        r.status,
        r.role,
      ]),
    ]))
      out(line);
  };
  if (values['dry-run']) {
    print(
      topics.map((t) => ({ ...t, status: 'would create' })),
      kafka ? servers(kafka) : '(none named)',
    );
    return;
  }
  if (kafka === undefined) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      'no Kafka cluster named: --kafka host:port (or auto for the broker "inflow kafka up" started), a kafka: section in the file, or $KAFKA_BOOTSTRAP_SERVERS',
    );
  }
  const client = createKafkaClient({ ...kafka, clientId: kafka.clientId ?? 'inflow-topics' });
  const admin = client.admin();
  try {
    const existing = new Set(await admin.listTopics());
    const fresh = topics.filter((t) => !existing.has(t.topic));
    if (fresh.length > 0) {
      await admin.createTopics(
        fresh.map((t) => ({
          topic: t.topic,
          partitions: t.partitions,
          configs: t.configs,
          ...(replicationFactor !== undefined ? { replicationFactor } : {}),
        })),
        { ifNotExists: true },
      );
    }
    const described = new Map((await admin.describeTopics(topics.map((t) => t.topic))).map((d) => [d.topic, d]));
    print(
      topics.map((t) =>
        existing.has(t.topic)
          ? { ...t, partitions: described.get(t.topic)?.partitions ?? t.partitions, status: 'exists' }
          : { ...t, status: 'created' },
      ),
      servers(kafka),
    );
  } finally {
    await client.close().catch(() => undefined);
  }
}

/** Runs `inflow topics …` (the arguments after `topics`); returns the exit code. */
export async function topicsMain(argv: string[], out: (line: string) => void): Promise<number> {
  try {
    await run(argv, out);
    return 0;
  } catch (error) {
    return commandFailed(error, argv);
  }
}
