/**
 * Router of the inference service: turns a request's model, version or label, and routing key
 * into the version that answers (and, for a shadow, the version that gets a mirrored copy).
 *
 * Errors copy TF Serving's texts, so its official clients see what they expect. Resolution is
 * lock-free: each model's state is compiled once per `update` into an immutable object that a
 * resolve reads exactly once, so a resolve sees the old state or the new one, never a mix.
 *
 * Weighted splits are sticky by key: MurmurHash3-32 of the key (UTF-16 code units, fixed seed)
 * scaled to a bucket in [0, 10000), then the first version whose cumulative weight share exceeds
 * the bucket's share. The shadow decision hashes the key with a second, independent seed, so the
 * mirrored keys are spread evenly over the split's versions. Without a key, `random()` decides.
 * A request that names a version explicitly is never mirrored: it asked for that version alone
 * (a backtest, a debugging call, a client pinned during a migration), not for the model's traffic
 * that a shadow samples. Label requests are the model's traffic and are mirrored.
 */
import { InflowError } from '../errors.ts';
import { BUCKETS, keyBucket } from './key-hash.ts';

/** Routing state of one model, fed by the model repository whenever versions, labels or splits change. */
export interface RouteState {
  /** Versions that can answer now (AVAILABLE). */
  ready: number[];
  /** Label → version (labels may point at versions that are not ready: resolving them is NOT_FOUND). */
  labels: Record<string, number>;
  /**
   * Weighted canary / A-B among ready versions, for requests without version or label. Weights
   * are relative (need not sum to 100). A version must be ready when it enters the split; one
   * that later leaves `ready` is skipped: only its share is re-spread over the others by weight
   * (every other key stays put), so swaps never fail requests. When none of the split's versions
   * is ready, the latest ready version answers.
   */
  split?: Array<{ version: number; weight: number }>;
  /**
   * Mirror a fraction (0..1) of the model's requests (whatever version they resolve to) to this
   * version. Best effort: skipped while the version is not ready, and for requests it answers itself.
   */
  shadow?: { version: number; fraction: number };
}

/** What a request asks for. */
export interface RouteTarget {
  version?: number;
  label?: string;
  /** Routing key (e.g. the Kafka record key or user id): the same key always lands on the same version. */
  key?: string;
}

/** Where a request goes. */
export interface Route {
  version: number;
  /** Also mirror the request to this version and drop its output; absent when not mirrored. */
  shadow?: number;
}

/** Routing table of the service, one state per model. */
export interface Router {
  /** Validates and atomically swaps in a model's state (INVALID_ARGUMENT leaves the old one in place). */
  update(model: string, state: RouteState): void;
  remove(model: string): void;
  /** The version that answers (NOT_FOUND / INVALID_ARGUMENT with TF Serving's messages otherwise). */
  resolve(model: string, target: RouteTarget): Route;
  /** The state last accepted for a model (frozen copy). */
  state(model: string): RouteState | undefined;
}

/** Options of {@link createRouter}. */
export interface RouterOptions {
  /** Uniform in [0, 1) for requests without a key; defaults to Math.random. */
  random?: () => number;
}

/** Seeds of the two independent key hashes (arbitrary, fixed forever: changing them moves every key). */
const SPLIT_SEED = 0x5eed_0001;
const SHADOW_SEED = 0x5eed_0002;

interface CompiledSplit {
  /** Versions with weight > 0, in the configured order. */
  readonly versions: readonly number[];
  /** Running sums of the weights of `versions`. */
  readonly cumulative: readonly number[];
  readonly total: number;
  /** Whether each of `versions` is ready. */
  readonly ready: readonly boolean[];
  /** The ready versions alone, renormalised: where requests that land on an un-ready version go. */
  readonly fallback: CompiledSplit | undefined;
}

interface Compiled {
  readonly state: RouteState;
  readonly ready: ReadonlySet<number>;
  readonly latest: number | undefined;
  readonly labels: ReadonlyMap<string, number>;
  /** Versions with weight > 0; undefined when none of them is ready (requests then get the latest). */
  readonly split: CompiledSplit | undefined;
  /** Every version named by the split, ready or not (a version stays allowed while it stays in the split). */
  readonly splitVersions: ReadonlySet<number>;
  /** Undefined while the shadow version is not ready or its fraction is 0. */
  readonly shadow: { readonly version: number; readonly fraction: number } | undefined;
}

function invalid(model: string, message: string): InflowError {
  return new InflowError('INVALID_ARGUMENT', `route state of model "${model}": ${message}`);
}

function checkVersion(model: string, what: string, version: unknown): number {
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) {
    throw invalid(model, `${what} is ${String(version)}; expected a non-negative integer version`);
  }
  return version;
}

function compile(model: string, state: RouteState, previous: Compiled | undefined): Compiled {
  if (!Array.isArray(state.ready)) throw invalid(model, 'ready must be an array of versions');
  const ready = new Set(state.ready.map((v, i) => checkVersion(model, `ready[${i}]`, v)));
  const readyList = [...ready].sort((a, b) => a - b);
  const labels = new Map<string, number>();
  for (const [label, version] of Object.entries(state.labels)) labels.set(label, checkVersion(model, `label "${label}"`, version));
  const shown = `[${readyList.join(', ')}]`;

  let split: CompiledSplit | undefined;
  const splitVersions = new Set<number>();
  if (state.split !== undefined) {
    if (!Array.isArray(state.split) || state.split.length === 0)
      throw invalid(model, 'split is empty; expected at least one { version, weight }');
    let sum = 0;
    const entries: Array<{ version: number; weight: number; ready: boolean }> = [];
    for (const [i, entry] of state.split.entries()) {
      const version = checkVersion(model, `split[${i}].version`, entry.version);
      if (splitVersions.has(version)) throw invalid(model, `split names version ${version} twice; expected each version once`);
      splitVersions.add(version);
      const weight = entry.weight;
      if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) {
        throw invalid(model, `split weight of version ${version} is ${String(weight)}; expected a finite number ≥ 0`);
      }
      sum += weight;
      // A version that was in the split and became un-ready stays (skipped at resolve); a new one must be ready.
      if (!ready.has(version) && !previous?.splitVersions.has(version)) {
        throw invalid(
          model,
          `split version ${version} is not ready (ready: ${shown}); expected a version to be ready when it enters the split`,
        );
      }
      if (weight > 0) entries.push({ version, weight, ready: ready.has(version) });
    }
    if (!(sum > 0)) throw invalid(model, `split weights sum to ${sum}; expected a sum > 0`);
    const readyEntries = entries.filter((e) => e.ready);
    if (readyEntries.length > 0) {
      split = compileSplit(entries, readyEntries.length === entries.length ? undefined : compileSplit(readyEntries, undefined));
    }
  }

  let shadow: Compiled['shadow'];
  if (state.shadow !== undefined) {
    const version = checkVersion(model, 'shadow.version', state.shadow.version);
    const fraction = state.shadow.fraction;
    if (typeof fraction !== 'number' || !(fraction >= 0 && fraction <= 1)) {
      throw invalid(model, `shadow fraction is ${String(fraction)}; expected a number in [0, 1]`);
    }
    if (!ready.has(version) && previous?.state.shadow?.version !== version) {
      throw invalid(model, `shadow version ${version} is not ready (ready: ${shown}); expected it to be ready when the shadow is set`);
    }
    if (ready.has(version) && fraction > 0) shadow = { version, fraction };
  }

  const frozen: RouteState = Object.freeze({
    ready: Object.freeze([...state.ready]) as number[],
    labels: Object.freeze({ ...state.labels }),
    ...(state.split && {
      split: Object.freeze(state.split.map((e) => Object.freeze({ version: e.version, weight: e.weight }))) as RouteState['split'],
    }),
    ...(state.shadow && { shadow: Object.freeze({ version: state.shadow.version, fraction: state.shadow.fraction }) }),
  });
  return { state: frozen, ready, latest: readyList.at(-1), labels, split, splitVersions, shadow };
}

function compileSplit(
  entries: ReadonlyArray<{ version: number; weight: number; ready: boolean }>,
  fallback: CompiledSplit | undefined,
): CompiledSplit {
  let total = 0;
  const cumulative = entries.map((e) => (total += e.weight));
  return { versions: entries.map((e) => e.version), cumulative, total, ready: entries.map((e) => e.ready), fallback };
}

/**
 * The version of `share` (in [0, 1)): the first whose cumulative weight exceeds share × total.
 * A share that lands on an un-ready version is re-spread over the ready ones by its position
 * inside that version's range, so only that version's keys move and every other key stays put.
 */
function pick(split: CompiledSplit, share: number): number {
  const target = share * split.total;
  const { versions, cumulative } = split;
  let i = 0;
  // Splits have a handful of versions: a linear scan beats a binary search here.
  while (i < versions.length - 1 && target >= (cumulative[i] as number)) i++;
  if (split.ready[i] || !split.fallback) return versions[i] as number;
  const start = i === 0 ? 0 : (cumulative[i - 1] as number);
  const inner = (target - start) / ((cumulative[i] as number) - start);
  return pick(split.fallback, Math.min(Math.max(inner, 0), 0.999_999_999));
}

class RoutingTable implements Router {
  readonly #models = new Map<string, Compiled>();
  readonly #random: () => number;

  constructor(options: RouterOptions) {
    this.#random = options.random ?? Math.random;
  }

  update(model: string, state: RouteState): void {
    this.#models.set(model, compile(model, state, this.#models.get(model)));
  }

  remove(model: string): void {
    this.#models.delete(model);
  }

  state(model: string): RouteState | undefined {
    return this.#models.get(model)?.state;
  }

  resolve(model: string, target: RouteTarget): Route {
    const { version, label, key } = target;
    if (version !== undefined && label !== undefined) {
      throw new InflowError('INVALID_ARGUMENT', `Both model version (${version}) and model version label (${label}) cannot be supplied.`);
    }
    // One read: everything below uses this snapshot, whatever update() runs meanwhile.
    const compiled = this.#models.get(model);
    let primary: number;
    if (version !== undefined) {
      if (!compiled?.ready.has(version))
        throw new InflowError('NOT_FOUND', `Servable not found for request: Specific(${model}, ${version})`);
      primary = version;
    } else {
      if (!compiled) throw new InflowError('NOT_FOUND', `Servable not found for request: Latest(${model})`);
      if (label !== undefined) {
        const labelled = compiled.labels.get(label);
        if (labelled === undefined) throw new InflowError('INVALID_ARGUMENT', `Unrecognized servable version label: ${label}`);
        if (!compiled.ready.has(labelled)) {
          throw new InflowError(
            'NOT_FOUND',
            `Servable not found for request: Specific(${model}, ${labelled}) (label "${label}" points to version ${labelled}, which is not ready)`,
          );
        }
        primary = labelled;
      } else if (compiled.split) {
        primary = pick(compiled.split, key === undefined ? this.#random() : keyBucket(key, SPLIT_SEED) / BUCKETS);
      } else {
        if (compiled.latest === undefined) throw new InflowError('NOT_FOUND', `Servable not found for request: Latest(${model})`);
        primary = compiled.latest;
      }
    }
    const shadow = compiled?.shadow;
    if (shadow && shadow.version !== primary && version === undefined) {
      const mirrored = key === undefined ? this.#random() < shadow.fraction : keyBucket(key, SHADOW_SEED) < shadow.fraction * BUCKETS;
      if (mirrored) return { version: primary, shadow: shadow.version };
    }
    return { version: primary };
  }
}

/** Creates the service's router; `random` is injectable for tests. */
export function createRouter(options: RouterOptions = {}): Router {
  return new RoutingTable(options);
}
