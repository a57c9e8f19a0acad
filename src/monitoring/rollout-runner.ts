/**
 * A guarded rollout: moves a model's split from a baseline version to a target version step by
 * step on the models topic (every pipeline and server following the topic applies it, embedded
 * or not), and at each step watches the guards (./rollout-guards.ts) over live signals. A failing
 * guard rolls the split back to the baseline at once, with the reason on the alerts topic; a step
 * whose guards lack samples holds; passing every step promotes the target to 100 %. The state is
 * on a compacted topic (./rollout-state.ts): a killed command started again resumes.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { readModelsTopic } from '../delivery/models-topic.ts';
import { publishControl } from '../delivery/publish-control.ts';
import { InflowError } from '../errors.ts';
import type { KafkaClient, KafkaConsumer } from '../kafka/types.ts';
import type { RoutingConfig } from '../repository/model-config.ts';
import { type AlertHead, alertRecord, parseAlertHead } from './alerts.ts';
import { evaluateGuards, type GuardOptions, type GuardResult, GuardStatus } from './rollout-guards.ts';
import { type SignalSnapshot, scrapeSignals, signalDelta } from './rollout-signals.ts';
import { ensureRolloutsTopic, type RolloutState, RolloutStatus, readRolloutState, writeRolloutState } from './rollout-state.ts';

/** What the rollout reports as it goes (the CLI prints `line`). */
export interface RolloutEvent {
  type: 'start' | 'resume' | 'step' | 'check' | 'hold' | 'promoted' | 'rolled-back';
  line: string;
  state: RolloutState;
  results?: GuardResult[];
  /** On rolled-back: ms from the failing check to the baseline's routing being on the topic. */
  rollbackMs?: number;
}

/** Options of {@link runRollout}. Times are ms. */
export interface RolloutOptions {
  client: KafkaClient;
  modelsTopic: string;
  rolloutsTopic: string;
  alertsTopic: string;
  model: string;
  target: number;
  /** Percent on the target per step, ascending, the last 100. */
  steps: readonly number[];
  intervalMs: number;
  /** How often guards are checked within a step (a failure rolls back at the next check). Default min(interval/5, 5 000). */
  checkEveryMs?: number;
  /** Default: the version with the largest weight in the current split, else the label `stable`. */
  baseline?: number;
  guards: GuardOptions;
  /** Share of baseline requests mirrored to the target (shadow-agreement guard). Default 0.2 when minAgreement is set, else 0. */
  shadowFraction?: number;
  /** Prometheus endpoints of the servers/pipelines that follow the models topic. */
  metrics: readonly string[];
  /** A step held this long for lack of samples rolls back. Default 10 intervals. */
  maxHoldMs?: number;
  /** Throws when the target cannot be loaded (checked before any routing change). */
  verifyLoad?: (version: number) => Promise<void>;
  onEvent?: (event: RolloutEvent) => void;
  signal?: AbortSignal;
  now?: () => number;
  /** Reads the signals (tests inject); default scrapes `metrics`. */
  scrape?: () => Promise<SignalSnapshot>;
}

function checkSteps(steps: readonly number[]): void {
  const ok =
    steps.length > 0 && steps.every((s, i) => s > 0 && s <= 100 && (i === 0 || s > (steps[i - 1] as number))) && steps.at(-1) === 100;
  if (!ok) {
    throw new InflowError('INVALID_ARGUMENT', `--steps ${steps.join(',')}: expected ascending percentages ending at 100, e.g. 5,25,50,100`);
  }
}

/** The split of one step: `percent` on the target, the rest on the baseline, the shadow while below 100. */
export function stepRouting(baseline: number, target: number, percent: number, shadowFraction: number): RoutingConfig {
  return {
    split:
      percent >= 100
        ? [{ version: target, weight: 100 }]
        : [
            { version: baseline, weight: 100 - percent },
            { version: target, weight: percent },
          ],
    ...(shadowFraction > 0 && percent < 100 ? { shadow: { version: target, fraction: shadowFraction } } : {}),
  };
}

/** Reads drift alerts of `model` raised since `since` (ms) from the alerts topic. */
async function alertReader(client: KafkaClient, topic: string, model: string, since: number) {
  const consumer: KafkaConsumer = client.consumer({ groupId: `inflow-rollout-alerts-${randomUUID()}`, autoOffsetReset: 'earliest' });
  await consumer.subscribe([topic]);
  const seen: AlertHead[] = [];
  return {
    async read(): Promise<AlertHead[]> {
      for (const r of await consumer.poll({ maxRecords: 500, timeoutMs: 10 })) {
        const a = parseAlertHead(r.value);
        if (a && a.model === model && a.kind === 'drift' && Date.parse(a.at) >= since) seen.push(a);
      }
      return seen;
    },
    close: () => consumer.close(),
  };
}

/** Runs (or resumes) a guarded rollout to its end: promoted or rolled back. */
export async function runRollout(o: RolloutOptions): Promise<RolloutState> {
  const now = o.now ?? Date.now;
  const emit = (e: RolloutEvent): void => o.onEvent?.(e);
  checkSteps(o.steps);
  const content = await readModelsTopic({ client: o.client, topic: o.modelsTopic });
  const published = new Set(content.manifests.filter((e) => e.manifest.model === o.model).map((e) => e.manifest.version));
  const list = [...published].sort((a, b) => a - b).join(', ') || 'none';
  if (!published.has(o.target)) {
    throw new InflowError(
      'NOT_FOUND',
      `model "${o.model}" has no version ${o.target} in topic "${o.modelsTopic}" (published: ${list}); routing unchanged`,
    );
  }
  await ensureRolloutsTopic(o.client, o.rolloutsTopic);
  await ensureRolloutsTopic(o.client, o.alertsTopic);
  const existing = await readRolloutState(o.client, o.rolloutsTopic, o.model);
  let state: RolloutState;
  if (existing && (existing.status === RolloutStatus.RUNNING || existing.status === RolloutStatus.HOLDING)) {
    if (existing.target !== o.target) {
      throw new InflowError(
        'FAILED_PRECONDITION',
        `model "${o.model}": a rollout to version ${existing.target} is in progress (step ${existing.stepIndex + 1} of ${existing.steps.length}); ` +
          `run it again to resume it, or roll it back with --abort`,
      );
    }
    state = existing;
    emit({
      type: 'resume',
      state,
      line: `resuming the rollout of ${o.model} version ${state.target} at step ${state.stepIndex + 1} of ${state.steps.length} (${state.steps[state.stepIndex]} %), baseline ${state.baseline}`,
    });
  } else {
    const control = content.controls.get(o.model);
    const split = control?.routing?.split;
    const heaviest = split?.reduce((a, s) => (s.weight > a.weight ? s : a)).version;
    const baseline = o.baseline ?? heaviest ?? control?.labels?.stable;
    if (baseline === undefined) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `model "${o.model}": no split or "stable" label tells the baseline; pass --baseline <version>`,
      );
    }
    if (baseline === o.target) throw new InflowError('INVALID_ARGUMENT', `model "${o.model}": version ${o.target} already is the baseline`);
    if (!published.has(baseline)) {
      throw new InflowError(
        'NOT_FOUND',
        `model "${o.model}": baseline version ${baseline} is not in topic "${o.modelsTopic}" (published: ${list})`,
      );
    }
    // Before any routing change: a version that does not load never gets traffic.
    await o.verifyLoad?.(o.target);
    const t = now();
    state = {
      format: 1,
      model: o.model,
      baseline,
      target: o.target,
      steps: [...o.steps],
      stepIndex: 0,
      status: RolloutStatus.RUNNING,
      intervalMs: o.intervalMs,
      shadowFraction: o.shadowFraction ?? (o.guards.minAgreement !== undefined ? 0.2 : 0),
      guards: o.guards,
      metrics: [...o.metrics],
      startedAt: t,
      stepStartedAt: t,
      updatedAt: t,
    };
    emit({
      type: 'start',
      state,
      line: `rolling out ${o.model} version ${o.target} over baseline ${baseline}: steps ${o.steps.join(', ')} %, ${o.intervalMs} ms each`,
    });
  }
  const scrape = o.scrape ?? (() => scrapeSignals(state.metrics, o.model));
  const checkEvery = o.checkEveryMs ?? Math.min(Math.max(state.intervalMs / 5, 100), 5000);
  const maxHold = o.maxHoldMs ?? state.intervalMs * 10;
  const alerts = await alertReader(o.client, o.alertsTopic, o.model, state.startedAt);
  const save = async (patch: Partial<RolloutState>): Promise<void> => {
    state = { ...state, ...patch, updatedAt: now() };
    await writeRolloutState(o.client, o.rolloutsTopic, state);
  };
  const route = (routing: RoutingConfig) =>
    publishControl({ client: o.client, topic: o.modelsTopic, model: o.model, routing, publisher: 'inflow-rollout' });
  try {
    for (; state.stepIndex < state.steps.length; ) {
      const percent = state.steps[state.stepIndex] as number;
      await route(stepRouting(state.baseline, state.target, percent, state.shadowFraction));
      await save({ status: RolloutStatus.RUNNING, stepStartedAt: now() });
      emit({ type: 'step', state, line: `step ${state.stepIndex + 1}/${state.steps.length}: ${percent} % on version ${state.target}` });
      // No shadow at 100 % (or without a shadow fraction): nothing to compare, so no agreement guard.
      const shadowing = state.shadowFraction > 0 && percent < 100;
      const guards = shadowing ? state.guards : { ...state.guards, minAgreement: undefined };
      const before = await scrape();
      const stepStart = now();
      let holdingSince: number | undefined;
      for (;;) {
        await delay(checkEvery, undefined, o.signal ? { signal: o.signal } : {}).catch(() => {
          throw new InflowError(
            'CANCELLED',
            `rollout of ${o.model} version ${state.target} interrupted at step ${state.stepIndex + 1}; run it again to resume`,
          );
        });
        const checkedAt = now();
        const results = evaluateGuards(signalDelta(await scrape(), before), state.baseline, state.target, guards, await alerts.read());
        const failed = results.filter((r) => r.status === GuardStatus.FAIL);
        if (failed.length > 0) return await rollBack(failed.map((r) => `${r.guard}: ${r.detail}`).join('; '), results, checkedAt);
        const short = results.filter((r) => r.status === GuardStatus.INSUFFICIENT);
        if (checkedAt - stepStart < state.intervalMs) continue;
        if (short.length === 0) break;
        holdingSince ??= checkedAt;
        const reason = `holding at ${percent} %: ${short.map((r) => `${r.guard}: ${r.detail}`).join('; ')}`;
        if (state.status !== RolloutStatus.HOLDING) {
          await save({ status: RolloutStatus.HOLDING, reason, results });
          emit({ type: 'hold', state, results, line: reason });
        }
        if (checkedAt - holdingSince > maxHold) {
          return await rollBack(
            `held ${checkedAt - holdingSince} ms without enough samples (${short.map((r) => r.detail).join('; ')})`,
            results,
            checkedAt,
          );
        }
      }
      if (state.stepIndex + 1 >= state.steps.length) {
        await save({ status: RolloutStatus.PROMOTED, reason: undefined });
        emit({
          type: 'promoted',
          state,
          line: `promoted: ${o.model} version ${state.target} takes 100 % (baseline was ${state.baseline})`,
        });
        return state;
      }
      await save({ stepIndex: state.stepIndex + 1, reason: undefined });
    }
    return state;
  } finally {
    await alerts.close();
  }

  async function rollBack(reason: string, results: GuardResult[], failedAt: number): Promise<RolloutState> {
    await route({ split: [{ version: state.baseline, weight: 100 }] });
    const routedBack = now();
    await save({ status: RolloutStatus.ROLLED_BACK, reason, results });
    const alert = {
      kind: 'rollback',
      model: o.model,
      version: state.target,
      baseline: state.baseline,
      step: state.stepIndex + 1,
      percent: state.steps[state.stepIndex],
      reason,
      results,
      guardFailedAt: new Date(failedAt).toISOString(),
      routedBackAt: new Date(routedBack).toISOString(),
      at: new Date(routedBack).toISOString(),
    };
    const producer = o.client.producer({ acks: 'all', idempotent: true });
    try {
      await producer.send([alertRecord(o.alertsTopic, alert)]);
    } finally {
      await producer.close();
    }
    emit({
      type: 'rolled-back',
      state,
      results,
      rollbackMs: routedBack - failedAt,
      line: `rolled back to version ${state.baseline} at step ${state.stepIndex + 1} (${state.steps[state.stepIndex]} %): ${reason}`,
    });
    return state;
  }
}

/** Rolls a running rollout back to its baseline (`--abort`), with the reason; returns the state, undefined if none runs. */
export async function abortRollout(
  o: Pick<RolloutOptions, 'client' | 'modelsTopic' | 'rolloutsTopic' | 'alertsTopic' | 'model'>,
  reason: string,
): Promise<RolloutState | undefined> {
  const state = await readRolloutState(o.client, o.rolloutsTopic, o.model);
  if (!state || (state.status !== RolloutStatus.RUNNING && state.status !== RolloutStatus.HOLDING)) return undefined;
  await publishControl({
    client: o.client,
    topic: o.modelsTopic,
    model: o.model,
    routing: { split: [{ version: state.baseline, weight: 100 }] },
    publisher: 'inflow-rollout',
  });
  const next: RolloutState = { ...state, status: RolloutStatus.ROLLED_BACK, reason, updatedAt: Date.now() };
  await writeRolloutState(o.client, o.rolloutsTopic, next);
  const alert = { kind: 'rollback', model: o.model, version: state.target, baseline: state.baseline, reason, at: new Date().toISOString() };
  const producer = o.client.producer({ acks: 'all', idempotent: true });
  try {
    await producer.send([alertRecord(o.alertsTopic, alert)]);
  } finally {
    await producer.close();
  }
  return next;
}
