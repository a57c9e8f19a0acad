/**
 * `inflow models rollout <model> --to <version> --steps 5,25,50,100 --interval 30s`: a guarded
 * rollout (src/monitoring/rollout-runner.ts) from the command line. Exit 0 when promoted, 1 when
 * its guards rolled it back (the reason printed), 2/3 for bad input / an unreachable cluster.
 */
import { parseArgs } from 'node:util';
import type { KafkaConfig } from '../config/kafka-config.ts';
import { DEFAULT_MODELS_TOPIC } from '../delivery/index.ts';
import { InflowError } from '../errors.ts';
import { createKafkaClient } from '../kafka/index.ts';
import type { KafkaClient } from '../kafka/types.ts';
import { DEFAULT_ALERTS_TOPIC } from '../monitoring/alerts.ts';
import { guardOptionsSchema } from '../monitoring/rollout-guards.ts';
import { abortRollout, runRollout } from '../monitoring/rollout-runner.ts';
import { DEFAULT_ROLLOUTS_TOPIC, RolloutStatus, readRolloutState } from '../monitoring/rollout-state.ts';
import { kafkaFromFlags } from './kafka-flags.ts';
import { commandFailed } from './cli-errors.ts';
import { verifyVersionLoads } from './models-rollout-load.ts';

export const rolloutHelp = `inflow models rollout <model> --to <version> [--steps 5,25,50,100] [--interval 5m] --metrics <url> …

Moves the model's split from its baseline (the heaviest version of the current split, else the
"stable" label, else --baseline) to --to step by step on the models topic; every server and
pipeline following the topic applies each step. At every step the guards watch live signals read
from the Prometheus endpoints given with --metrics (inflow serve /metrics, inflow stream
--metrics-port): a failing guard rolls back to the baseline at once and says why (here and on the
alerts topic); a step whose guards lack samples holds. Its state is on a compacted topic: run the
same command again after it was stopped or killed and it resumes at the step it was on.

Guards (all over what happened since the step began):
  --min-samples <n>             requests of the new version needed to decide (default 100)
  --max-error-rate <0..1>       failed share of the new version's requests (default 0.01)
  --max-latency-p99 <ms>        p99 latency of the new version (absolute; default none)
  --max-latency-p99-ratio <r>   p99 relative to the baseline's (default 2). A p99 over either limit fails
                                only when significantly more than 1 % of the requests were over it
                                (binomial p < 1e-6: one stalled request is not), else the step holds
  --min-agreement <0..1>        shadow agreement with the baseline; mirrors --shadow-fraction (default 0.2)
                                of the baseline's requests to the new version while below 100 %
  --max-accuracy-drop <0..1>    live accuracy (inflow_live_accuracy) below the baseline's
  --no-drift-guard              do not fail on drift alerts for the new version (default: fail)
  --max-hold <duration>         roll back after holding this long for lack of samples (default 10 intervals)

Other options:
  --baseline <version>          the version to fall back to
  --check-every <duration>      how often guards are checked within a step (default interval/5, at most 5s)
  --no-load-check               skip syncing and loading the new version once before any traffic goes to it
  --status                      print the model's rollout state and exit
  --abort                       roll a running rollout back to its baseline now
  --topic <name>                models topic (default ${DEFAULT_MODELS_TOPIC})
  --rollouts-topic <name>       rollout state (default ${DEFAULT_ROLLOUTS_TOPIC}, compacted)
  --alerts-topic <name>         drift alerts read, rollbacks written (default ${DEFAULT_ALERTS_TOPIC})
  --kafka, --kafka-config, --json as for inflow models

Durations: 500ms, 30s, 5m, 1h.

Example:
  inflow models rollout digits-mlp --to 2 --steps 5,25,50,100 --interval 5m \\
    --metrics http://serve-0:8501/metrics --metrics http://scorer-0:9464/metrics --min-agreement 0.95`;

const bad = (message: string): InflowError => new InflowError('INVALID_ARGUMENT', message);

/** `500ms`, `30s`, `5m`, `1h` → ms. */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text);
  if (!m) throw bad(`${what} "${text}": expected a duration like 500ms, 30s, 5m or 1h`);
  const ms = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  if (!(ms >= 1)) throw bad(`${what} "${text}": expected at least 1ms`);
  return Math.round(ms);
}

function fraction(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (!/^\d*\.?\d+$/.test(text) || !(v >= 0 && v <= 1)) throw bad(`${what} "${text}": expected a number from 0 to 1`);
  return v;
}

function positive(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (!/^\d*\.?\d+$/.test(text) || !(v > 0)) throw bad(`${what} "${text}": expected a positive number`);
  return v;
}

/** Runs `inflow models rollout …` (the arguments after `rollout`); returns the exit code. */
export async function modelsRollout(
  argv: string[],
  out: (line: string) => void,
  deps: { client?: KafkaClient; err?: (line: string) => void; env?: NodeJS.ProcessEnv; signal?: AbortSignal } = {},
): Promise<number> {
  const err = deps.err ?? ((line: string) => process.stderr.write(`${line}\n`));
  const json = argv.includes('--json');
  try {
    return await run(argv, out, deps, json);
  } catch (error) {
    return commandFailed(error, argv, err);
  }
}

async function run(
  argv: string[],
  out: (line: string) => void,
  deps: { client?: KafkaClient; env?: NodeJS.ProcessEnv; signal?: AbortSignal },
  json: boolean,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      json: { type: 'boolean' },
      kafka: { type: 'string' },
      'kafka-config': { type: 'string' },
      topic: { type: 'string' },
      'rollouts-topic': { type: 'string' },
      'alerts-topic': { type: 'string' },
      to: { type: 'string' },
      steps: { type: 'string' },
      interval: { type: 'string' },
      'check-every': { type: 'string' },
      metrics: { type: 'string', multiple: true },
      baseline: { type: 'string' },
      'min-samples': { type: 'string' },
      'max-error-rate': { type: 'string' },
      'max-latency-p99': { type: 'string' },
      'max-latency-p99-ratio': { type: 'string' },
      'min-agreement': { type: 'string' },
      'shadow-fraction': { type: 'string' },
      'max-accuracy-drop': { type: 'string' },
      'no-drift-guard': { type: 'boolean' },
      'max-hold': { type: 'string' },
      'no-load-check': { type: 'boolean' },
      status: { type: 'boolean' },
      abort: { type: 'boolean' },
    },
  });
  if (values.help) {
    out(rolloutHelp);
    return 0;
  }
  const [model, ...extra] = positionals;
  if (!model || extra.length > 0) throw bad('inflow models rollout: expected one <model>, e.g. inflow models rollout digits-mlp --to 2');
  const kafka = await kafkaFromFlags(
    { kafka: values.kafka, kafkaConfig: values['kafka-config'] },
    'inflow-rollout',
    (deps.env ?? process.env).KAFKA_BOOTSTRAP_SERVERS,
  );
  if (!deps.client && !kafka)
    throw bad('inflow models rollout needs the cluster: --kafka host:port, --kafka-config <file> or KAFKA_BOOTSTRAP_SERVERS');
  const topics = {
    modelsTopic: values.topic ?? DEFAULT_MODELS_TOPIC,
    rolloutsTopic: values['rollouts-topic'] ?? DEFAULT_ROLLOUTS_TOPIC,
    alertsTopic: values['alerts-topic'] ?? DEFAULT_ALERTS_TOPIC,
  };
  const print = (value: unknown, text: string): void => out(json ? JSON.stringify(value) : text);
  const client = deps.client ?? createKafkaClient(kafka as KafkaConfig);
  try {
    if (values.status) {
      const state = await readRolloutState(client, topics.rolloutsTopic, model);
      print(
        state ?? null,
        state
          ? `${model}: ${state.status} — version ${state.target} over ${state.baseline}, step ${state.stepIndex + 1}/${state.steps.length} (${state.steps[state.stepIndex]} %)${state.reason ? `: ${state.reason}` : ''}`
          : `${model}: no rollout in ${topics.rolloutsTopic}`,
      );
      return 0;
    }
    if (values.abort) {
      const state = await abortRollout({ client, ...topics, model }, 'aborted by the operator (--abort)');
      print(state ?? null, state ? `${model}: rolled back to version ${state.baseline} (aborted)` : `${model}: no rollout in progress`);
      return 0;
    }
    if (values.to === undefined || !/^\d{1,16}$/.test(values.to))
      throw bad(`--to: expected the version to roll out, e.g. --to 2, got "${values.to ?? ''}"`);
    const target = Number(values.to);
    const steps = (values.steps ?? '5,25,50,100').split(',').map((s) => {
      const v = Number(s.trim());
      if (!/^\d+(\.\d+)?$/.test(s.trim())) throw bad(`--steps "${values.steps}": expected percentages like 5,25,50,100`);
      return v;
    });
    const metrics = values.metrics ?? [];
    for (const url of metrics)
      if (!/^https?:\/\/\S+$/.test(url))
        throw bad(`--metrics "${url}": expected an http(s) URL of a Prometheus endpoint, e.g. http://127.0.0.1:8501/metrics`);
    if (metrics.length === 0)
      throw bad(
        'inflow models rollout: --metrics <url> is required (the /metrics of the servers or pipelines that follow the models topic)',
      );
    const guards = guardOptionsSchema.parse({
      ...(values['min-samples'] !== undefined ? { minSamples: positive(values['min-samples'], '--min-samples') } : {}),
      ...(values['max-error-rate'] !== undefined ? { maxErrorRate: fraction(values['max-error-rate'], '--max-error-rate') } : {}),
      ...(values['max-latency-p99'] !== undefined ? { maxLatencyP99Ms: positive(values['max-latency-p99'], '--max-latency-p99') } : {}),
      ...(values['max-latency-p99-ratio'] !== undefined
        ? { maxLatencyP99Ratio: positive(values['max-latency-p99-ratio'], '--max-latency-p99-ratio') }
        : {}),
      ...(values['min-agreement'] !== undefined ? { minAgreement: fraction(values['min-agreement'], '--min-agreement') } : {}),
      ...(values['max-accuracy-drop'] !== undefined
        ? { maxAccuracyDrop: fraction(values['max-accuracy-drop'], '--max-accuracy-drop') }
        : {}),
      failOnDrift: !values['no-drift-guard'],
    });
    if (!Number.isInteger(guards.minSamples)) throw bad('--min-samples: expected a whole number');
    const shadowFraction = fraction(values['shadow-fraction'], '--shadow-fraction');
    const state = await runRollout({
      client,
      ...topics,
      model,
      target,
      steps,
      intervalMs: parseDuration(values.interval ?? '5m', '--interval'),
      ...(values['check-every'] ? { checkEveryMs: parseDuration(values['check-every'], '--check-every') } : {}),
      ...(values['max-hold'] ? { maxHoldMs: parseDuration(values['max-hold'], '--max-hold') } : {}),
      ...(values.baseline !== undefined ? { baseline: Number(values.baseline) } : {}),
      ...(shadowFraction !== undefined ? { shadowFraction } : {}),
      guards,
      metrics,
      ...(values['no-load-check'] ? {} : { verifyLoad: (v: number) => verifyVersionLoads(client, topics.modelsTopic, model, v) }),
      ...(deps.signal ? { signal: deps.signal } : {}),
      onEvent: (e) => print({ event: e.type, line: e.line, state: e.state, results: e.results, rollbackMs: e.rollbackMs }, e.line),
    });
    return state.status === RolloutStatus.PROMOTED ? 0 : 1;
  } finally {
    if (!deps.client) await client.close();
  }
}
