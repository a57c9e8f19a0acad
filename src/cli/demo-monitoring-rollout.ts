/**
 * The monitoring scene's guarded rollouts: `inflow models rollout` (./models-rollout.ts) run as
 * a user runs it, on the scene's topics, reading the guards' signals from the embedded model's
 * /metrics and the monitor's /metrics; its JSON events become the scene's lines.
 */
import { InflowError } from '../errors.ts';
import type { KafkaClient } from '../kafka/types.ts';
import type { LocalInference } from '../serving/local-inference.ts';
import type { SceneTopics } from './demo-monitoring-setup.ts';
import { MODEL } from './demo-monitoring-setup.ts';
import { modelsRollout } from './models-rollout.ts';

/** Guards of both rollouts (the same for the broken and the good version). */
export const SCENE_GUARDS = [
  // Inference calls of the new version (the pipeline batches up to 64 records per call).
  '--min-samples',
  '20',
  '--max-error-rate',
  '0.01',
  // Generous: the scene runs beside everything else on a laptop; latency is not its story.
  '--max-latency-p99',
  '1000',
  '--max-latency-p99-ratio',
  '100',
  '--max-accuracy-drop',
  '0.05',
] as const;

/** How long the pipeline may take to install and load a published version, ms. */
const LOAD_TIMEOUT_MS = 60_000;

/** What one rollout came to. */
export interface SceneRollout {
  version: number;
  command: string;
  exitCode: number;
  /** `promoted` or `rolled-back`. */
  status: string;
  /** The step's percentage when it ended. */
  percent: number;
  /** Percentages reached, in order. */
  steps: number[];
  reason?: string;
  /** Guards that failed, with their detail. */
  failed: Array<{ guard: string; detail: string }>;
  /** From the failing check to the baseline's routing on the models topic, ms. */
  rollbackMs?: number;
}

interface RolloutEventJson {
  event: string;
  line: string;
  state: { status: string; stepIndex: number; steps: number[]; reason?: string };
  results?: Array<{ guard: string; status: string; detail: string }>;
  rollbackMs?: number;
}

/** Waits until the pipeline's embedded repository serves `version` (the sync installed and loaded it). */
async function loaded(inference: LocalInference, version: number, signal: AbortSignal): Promise<void> {
  const deadline = performance.now() + LOAD_TIMEOUT_MS;
  while (!inference.repository.status(MODEL)?.versions.some((v) => v.version === version && v.state === 'AVAILABLE')) {
    signal.throwIfAborted();
    if (performance.now() > deadline) {
      const status = inference.repository.status(MODEL)?.versions.find((v) => v.version === version);
      throw new InflowError(
        'DEADLINE_EXCEEDED',
        `the pipeline did not load ${MODEL} version ${version} from the models topic within ${LOAD_TIMEOUT_MS / 1000} s (${status ? `${status.state}${status.error ? `: ${status.error.message}` : ''}` : 'not installed'})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Rolls `target` out over the current split's version with {@link SCENE_GUARDS}. */
export async function runSceneRollout(o: {
  client: KafkaClient;
  topics: SceneTopics;
  metrics: readonly string[];
  inference: LocalInference;
  target: number;
  say: (line: string) => void;
  signal: AbortSignal;
}): Promise<SceneRollout> {
  await loaded(o.inference, o.target, o.signal);
  const args = [
    MODEL,
    '--to',
    String(o.target),
    '--steps',
    '25,50,100',
    '--interval',
    '2s',
    '--check-every',
    '200ms',
    ...SCENE_GUARDS,
    ...o.metrics.flatMap((m) => ['--metrics', m]),
  ];
  const command = `inflow models rollout ${args.join(' ')}`;
  o.say(`$ ${command}`);
  const events: RolloutEventJson[] = [];
  const errors: string[] = [];
  const exitCode = await modelsRollout(
    [
      ...args,
      '--topic',
      o.topics.models,
      '--rollouts-topic',
      o.topics.rollouts,
      '--alerts-topic',
      o.topics.alerts,
      '--no-load-check', // loaded() above: the pipeline itself serves it
      '--json',
    ],
    (line) => {
      const e = JSON.parse(line) as RolloutEventJson;
      events.push(e);
      if (e.event !== 'check') o.say(`  ${e.line}`);
    },
    { client: o.client, signal: o.signal, err: (line) => errors.push(line) },
  );
  const last = events.at(-1);
  if (!last || (last.event !== 'promoted' && last.event !== 'rolled-back')) {
    throw new Error(`inflow models rollout ended with ${exitCode} and no outcome: ${errors.join(' ')}`);
  }
  const steps = events.filter((e) => e.event === 'step').map((e) => e.state.steps[e.state.stepIndex] as number);
  return {
    version: o.target,
    command,
    exitCode,
    status: last.event,
    percent: last.state.steps[last.state.stepIndex] as number,
    steps,
    ...(last.state.reason ? { reason: last.state.reason } : {}),
    failed: (last.results ?? []).filter((r) => r.status === 'fail').map((r) => ({ guard: r.guard, detail: r.detail })),
    ...(last.rollbackMs !== undefined ? { rollbackMs: last.rollbackMs } : {}),
  };
}
