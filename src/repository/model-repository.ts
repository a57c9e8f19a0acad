/**
 * The model repository: `<repo>/<model>/config.yaml` + `<repo>/<model>/<version>/<artifacts>`.
 * Loads the versions a model's policy selects, warms them up, and switches them in atomically:
 * a new version becomes AVAILABLE (and `onChange` fires, so the router can send it traffic)
 * before an old one is unloaded (UNLOADING → `beforeUnload` drains it → closed → gone). A version
 * that fails to load or warm up shows its error in the status and never replaces a serving one;
 * it is retried when its files change. A broken config.yaml keeps the last good one in force.
 */
import { join } from 'node:path';
import { InflowError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';
import type { Servable, ServableContext } from '../runtime/servable.ts';
import { type ModelConfig, selectVersions } from './model-config.ts';
import { listModels, type ModelOnDisk, scanModel, type VersionOnDisk } from './repository-scan.ts';
import { readWarmupSamples, warmUp } from './warmup.ts';

export const VersionState = {
  LOADING: 'LOADING',
  AVAILABLE: 'AVAILABLE',
  UNLOADING: 'UNLOADING',
  END: 'END',
} as const;
export type VersionState = (typeof VersionState)[keyof typeof VersionState];

/** Loads a servable of a platform (src/runtime's `loadServable`, injected to keep tests hermetic). */
export type PlatformLoader = (platform: string, context: ServableContext) => Promise<Servable>;

/** A loaded version as the serving layer sees it. */
export interface LoadedVersion {
  readonly model: string;
  readonly version: number;
  readonly servable: Servable;
  readonly config: ModelConfig;
}

export interface VersionStatus {
  version: number;
  state: VersionState;
  error?: { code: string; message: string };
}

export interface ModelStatus {
  name: string;
  config: ModelConfig | undefined;
  configError?: { code: string; message: string };
  versions: VersionStatus[];
}

export interface ModelRepositoryOptions {
  root: string;
  load: PlatformLoader;
  logger?: Logger;
  /** A version folder whose newest file is younger than this is not loaded yet (being written), ms. Default 1000. */
  settleMs?: number;
  /**
   * Load only these models (folder names); the repository's other folders are not read. Default:
   * every model. A process that uses one model of a shared repository need not load the others.
   */
  models?: readonly string[];
  /** Called before a version is unloaded (after it left the routing table): drain it. */
  beforeUnload?: (loaded: LoadedVersion) => Promise<void>;
  now?: () => number;
}

interface Instance extends LoadedVersion {
  fingerprint: string;
  state: VersionState;
}

interface ModelEntry {
  name: string;
  dir: string;
  config: ModelConfig | undefined;
  configHash: string | undefined;
  runtimeKey: string | undefined;
  configError: InflowError | undefined;
  /** Serving (or retiring) instances per version. */
  instances: Map<number, Instance>;
  /** Versions that failed, with the fingerprint that failed (retried when it changes). */
  failed: Map<number, { fingerprint: string; error: InflowError }>;
  loading: Set<number>;
}

export interface ModelRepository {
  /** Rescans the repository and loads/unloads what changed; concurrent calls are coalesced. */
  refresh(): Promise<void>;
  models(): string[];
  status(model: string): ModelStatus | undefined;
  /** AVAILABLE versions of a model, ascending. */
  available(model: string): number[];
  /** The serving instance of a version, if AVAILABLE. */
  get(model: string, version: number): LoadedVersion | undefined;
  config(model: string): ModelConfig | undefined;
  /**
   * Unloads every version of a model and keeps it unloaded across refreshes until {@link load}
   * (Triton's explicit model control; the folder stays where it is).
   */
  unload(model: string): Promise<void>;
  /** Lifts an {@link unload} and loads the model's folder now. NOT_FOUND when there is no such folder. */
  load(model: string): Promise<void>;
  /** Models unloaded on request (see {@link unload}). */
  unloaded(): string[];
  /** Fires after any change of versions, states or config of a model. Returns an unsubscribe. */
  onChange(listener: (model: string) => void): () => void;
  /** Unloads everything. */
  close(): Promise<void>;
}

const errorInfo = (e: InflowError): { code: string; message: string } => ({ code: e.code, message: e.message });

export function createModelRepository(options: ModelRepositoryOptions): ModelRepository {
  const { root, load } = options;
  const log = options.logger ?? silentLogger;
  const settleMs = options.settleMs ?? 1000;
  const now = options.now ?? Date.now;
  const models = new Map<string, ModelEntry>();
  const listeners = new Set<(model: string) => void>();
  const reportedInvalid = new Set<string>();
  const reportedMissing = new Set<string>();
  const only = options.models ? new Set(options.models) : undefined;
  const disabled = new Set<string>();
  let running: Promise<void> | undefined;
  let pending: Promise<void> | undefined;
  let closed = false;

  let settleTimer: NodeJS.Timeout | undefined;
  const scheduleSettleRetry = (): void => {
    if (settleTimer || closed) return;
    settleTimer = setTimeout(() => {
      settleTimer = undefined;
      repository.refresh().catch((error: unknown) => log.error({ err: error }, 'model repository refresh failed'));
    }, settleMs + 50);
    settleTimer.unref();
  };

  const emit = (model: string): void => {
    for (const l of listeners) {
      try {
        l(model);
      } catch (error) {
        log.error({ err: error, model }, 'model change listener failed');
      }
    }
  };

  async function retire(entry: ModelEntry, instance: Instance): Promise<void> {
    instance.state = 'UNLOADING';
    if (entry.instances.get(instance.version) === instance) entry.instances.delete(instance.version);
    emit(entry.name);
    try {
      await options.beforeUnload?.(instance);
    } catch (error) {
      log.warn({ err: error, model: entry.name, version: instance.version }, 'draining a version before unload failed');
    }
    await instance.servable.close().catch((error: unknown) => log.warn({ err: error, model: entry.name }, 'closing a servable failed'));
    instance.state = 'END';
    log.info({ model: entry.name, version: instance.version }, 'version unloaded');
  }

  async function loadVersion(entry: ModelEntry, config: ModelConfig, disk: VersionOnDisk): Promise<Instance | undefined> {
    entry.loading.add(disk.version);
    emit(entry.name);
    const started = now();
    try {
      const servable = await load(config.platform, { dir: disk.dir, model: entry.name, version: disk.version, options: config.runtime });
      try {
        const samples = config.warmup.samples ? await readWarmupSamples(join(entry.dir, config.warmup.samples)) : undefined;
        await warmUp(servable, config.warmup.rows, config.warmup.runs, samples);
      } catch (error) {
        await servable.close().catch(() => undefined);
        throw new InflowError(
          'FAILED_PRECONDITION',
          `warm-up of ${entry.name} version ${disk.version} failed: ${InflowError.from(error).message}`,
          {
            cause: error,
          },
        );
      }
      entry.failed.delete(disk.version);
      log.info({ model: entry.name, version: disk.version, ms: now() - started }, 'version loaded');
      return { model: entry.name, version: disk.version, servable, config, fingerprint: disk.fingerprint, state: 'AVAILABLE' };
    } catch (error) {
      const e = InflowError.from(error, 'FAILED_PRECONDITION');
      entry.failed.set(disk.version, { fingerprint: disk.fingerprint, error: e });
      log.error({ model: entry.name, version: disk.version, err: e }, 'version failed to load; it will not serve');
      return undefined;
    } finally {
      entry.loading.delete(disk.version);
    }
  }

  function applyConfig(entry: ModelEntry, disk: ModelOnDisk): boolean {
    if (disk.configError) {
      const changed = entry.configError?.message !== disk.configError.message;
      if (changed) log.error({ model: entry.name, err: disk.configError }, 'model config is invalid; keeping the last good one');
      entry.configError = disk.configError;
      return changed;
    }
    entry.configError = undefined;
    if (disk.configHash === entry.configHash) return false;
    entry.configHash = disk.configHash;
    entry.config = disk.config;
    entry.runtimeKey = disk.config ? JSON.stringify([disk.config.platform, disk.config.runtime]) : undefined;
    return true;
  }

  async function refreshModel(name: string): Promise<void> {
    const entry: ModelEntry = models.get(name) ?? {
      name,
      dir: join(root, name),
      config: undefined,
      configHash: undefined,
      runtimeKey: undefined,
      configError: undefined,
      instances: new Map(),
      failed: new Map(),
      loading: new Set(),
    };
    models.set(name, entry);
    const disk = await scanModel(root, name);
    const previousRuntime = entry.runtimeKey;
    let changed = applyConfig(entry, disk);
    const config = entry.config;
    if (!config) {
      if (changed) emit(name);
      return;
    }
    const runtimeChanged = previousRuntime !== undefined && previousRuntime !== entry.runtimeKey;
    const cutoff = now() - settleMs;
    const settled = disk.versions.filter((v) => v.newestMtimeMs <= cutoff);
    // A version still being written is looked at again once it has had time to settle, even
    // when nothing watches the folder (a server started right after its models were copied).
    if (settled.length < disk.versions.length) scheduleSettleRetry();
    const byVersion = new Map(settled.map((v) => [v.version, v]));
    const loadable = (v: VersionOnDisk): boolean => entry.failed.get(v.version)?.fingerprint !== v.fingerprint;
    const targetsNow = (): number[] =>
      selectVersions(
        config.versionPolicy,
        settled.filter(loadable).map((v) => v.version),
      );
    const reloaded = new Set<number>();
    // Newest first, so a rollout's new version serves as early as possible. A version that fails
    // drops out of the candidates, so the loop moves on to the next one the policy selects
    // (e.g. latest: 1 falls back to the previous version) and ends when every target is loaded.
    for (;;) {
      const todo = targetsNow()
        .reverse()
        .filter((version) => {
          const current = entry.instances.get(version);
          const disk = byVersion.get(version) as VersionOnDisk;
          return !current || current.fingerprint !== disk.fingerprint || (runtimeChanged && !reloaded.has(version));
        });
      const version = todo[0];
      if (version === undefined) break;
      const current = entry.instances.get(version);
      const fresh = await loadVersion(entry, config, byVersion.get(version) as VersionOnDisk);
      reloaded.add(version);
      changed = true;
      if (!fresh) continue;
      entry.instances.set(version, fresh);
      emit(name); // AVAILABLE before the old instance goes
      if (current) await retire(entry, current);
    }
    const targets = targetsNow();
    const keep = new Set(targets);
    for (const instance of [...entry.instances.values()]) {
      const stillOnDisk = disk.versions.some((v) => v.version === instance.version);
      const unsettledReplacement = !byVersion.has(instance.version) && stillOnDisk;
      if (keep.has(instance.version) || unsettledReplacement) continue;
      changed = true;
      await retire(entry, instance);
    }
    if (changed) emit(name);
  }

  async function doRefresh(): Promise<void> {
    const listed = await listModels(root);
    const { invalid } = listed;
    const names = only ? listed.names.filter((n) => only.has(n)) : listed.names;
    for (const name of only ?? []) {
      if (!listed.names.includes(name) && !reportedMissing.has(name)) {
        reportedMissing.add(name);
        log.warn({ model: name, root }, 'a model to load has no folder in the model repository (yet)');
      }
    }
    for (const bad of invalid) {
      if (!reportedInvalid.has(bad)) log.warn({ folder: join(root, bad) }, 'ignoring a folder whose name is not a valid model name');
      reportedInvalid.add(bad);
    }
    for (const [name, entry] of models) {
      if (names.includes(name)) continue;
      for (const instance of [...entry.instances.values()]) await retire(entry, instance);
      models.delete(name);
      emit(name);
    }
    for (const name of names) {
      if (closed) return;
      if (disabled.has(name)) continue;
      try {
        await refreshModel(name);
      } catch (error) {
        log.error({ model: name, err: error }, 'refreshing a model failed');
      }
    }
  }

  const repository: ModelRepository = {
    refresh() {
      if (closed) return Promise.resolve();
      const run = (): Promise<void> => {
        running = doRefresh().finally(() => {
          running = undefined;
        });
        return running;
      };
      if (!running) return run();
      // One refresh runs at a time; callers during it share the single one queued behind it.
      pending ??= running
        .catch(() => undefined)
        .then(() => {
          pending = undefined;
          return run();
        });
      return pending;
    },
    models: () => [...models.keys()].sort(),
    status(model) {
      const entry = models.get(model);
      if (!entry) return undefined;
      const versions = new Map<number, VersionStatus>();
      for (const [version, f] of entry.failed) versions.set(version, { version, state: 'END', error: errorInfo(f.error) });
      for (const version of entry.loading) versions.set(version, { version, state: 'LOADING' });
      for (const i of entry.instances.values()) versions.set(i.version, { version: i.version, state: i.state });
      return {
        name: model,
        config: entry.config,
        ...(entry.configError ? { configError: errorInfo(entry.configError) } : {}),
        versions: [...versions.values()].sort((a, b) => a.version - b.version),
      };
    },
    available(model) {
      const entry = models.get(model);
      if (!entry) return [];
      return [...entry.instances.values()]
        .filter((i) => i.state === 'AVAILABLE')
        .map((i) => i.version)
        .sort((a, b) => a - b);
    },
    get(model, version) {
      const instance = models.get(model)?.instances.get(version);
      return instance?.state === 'AVAILABLE' ? instance : undefined;
    },
    config: (model) => models.get(model)?.config,
    async unload(model) {
      const entry = models.get(model);
      if (!entry) throw new InflowError('NOT_FOUND', `model ${model} is not in the repository`);
      disabled.add(model);
      await running?.catch(() => undefined);
      for (const instance of [...entry.instances.values()]) await retire(entry, instance);
      emit(model);
    },
    async load(model) {
      const { names } = await listModels(root);
      if (only && !only.has(model))
        throw new InflowError('NOT_FOUND', `model ${model} is not among the models this process loads (${[...only].join(', ')})`);
      if (!names.includes(model)) throw new InflowError('NOT_FOUND', `model ${model} has no folder in the repository ${root}`);
      disabled.delete(model);
      await repository.refresh();
    },
    unloaded: () => [...disabled].sort(),
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      closed = true;
      clearTimeout(settleTimer);
      await running?.catch(() => undefined);
      for (const entry of models.values()) for (const instance of [...entry.instances.values()]) await retire(entry, instance);
      models.clear();
    },
  };
  return repository;
}
