/**
 * Turns a validated pipeline file into what the runner needs: the topology (built with the same
 * StreamsBuilder a program would use), the runner's options, and the inferencers the predict
 * steps use — embedded (one LocalInference per distinct model repository) or remote (the client
 * of src/client, optionally falling back to an embedded source). The factories are injectable,
 * so tests build real pipelines around a test inferencer.
 */
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createRemoteInferencer, type RemoteInferencerOptions } from '../../client/index.ts';
import { InflowError } from '../../errors.ts';
import type { ModelsSyncConfig } from '../../delivery/sync-policy.ts';
import type { Logger } from '../../observability/logger.ts';
import type { PlatformLoader } from '../../repository/model-repository.ts';
import { loadServable } from '../../runtime/index.ts';
import { createLocalInference, type LocalInferenceOptions } from '../../serving/local-inference.ts';
import type { Inferencer } from '../../serving/types.ts';
import type { StreamsRunnerOptions } from '../runtime/streams-runner-options.ts';
import type { Topology } from '../api/topology.ts';
import type { PipelineConfig, PipelineStep, PredictStepConfig } from './pipeline-config.ts';
import type { SchemaRegistryClient } from '../../kafka/schema-registry/registry-client.ts';
import { registryClientFromConfig } from '../../kafka/schema-registry/registry-from-config.ts';
import { fitInputsToSignature } from './pipeline-features.ts';
import { buildTopology } from './pipeline-topology.ts';

type RemoteSource = NonNullable<PipelineConfig['models'][string]['remote']>;

/** What {@link buildPipeline} creates things with; every field is optional. */
export interface PipelineDeps {
  /** Folder that relative `modelRepository` paths resolve against: the pipeline file's folder (default the working directory). */
  readonly baseDir?: string;
  /** The file the config came from, named in errors (default "pipeline"). */
  readonly source?: string;
  /** Build the topology with placeholder inferencers: nothing loads or connects (model folders are still checked). */
  readonly dryRun?: boolean;
  /** Platform loader of embedded repositories (default src/runtime's loadServable). */
  readonly load?: PlatformLoader;
  /** Default: createLocalInference (src/serving). */
  readonly createLocalInference?: (options: LocalInferenceOptions) => Promise<Inferencer>;
  /** Default: createRemoteInferencer (src/client). */
  readonly createRemoteInferencer?: (options: RemoteInferencerOptions) => Inferencer;
  /**
   * Starts delivery of `topic` into the repository folder `root` (before it loads) for embedded
   * sources with `modelsTopic`; `attach` then gets the loaded inferencer. Without it (or in a
   * dry run), `modelsTopic` is not followed.
   */
  readonly syncModels?: (
    root: string,
    topic: string,
    /** `modelsSync:` of the source, key paths resolved against the pipeline file's folder. */
    policy: ModelsSyncConfig | undefined,
  ) => Promise<{ attach(inferencer: Inferencer): void; close(): Promise<void> }>;
  readonly logger?: Logger;
}

/** A pipeline ready to run: `createStreamsRunner(topology, { client, ...runnerOptions })`. */
export interface BuiltPipeline {
  readonly config: PipelineConfig;
  readonly topology: Topology;
  readonly runnerOptions: Omit<StreamsRunnerOptions, 'client'>;
  /** The inferencers of the model sources the pipeline uses (a fallback included), by name. */
  readonly inferencers: ReadonlyMap<string, Inferencer>;
  /**
   * The Schema Registry client of a pipeline with registry formats. While the registry is
   * unreachable the records that need a schema wait (retried with backoff, never dead-lettered)
   * and `health().reachable` is false: readiness shows it.
   */
  readonly schemaRegistry?: SchemaRegistryClient;
  /** The pipeline (guarantee, errors, model sources) and the topology's description. */
  describe(): string;
  /** Closes every inferencer (remote ones first: they may fall back to an embedded one). */
  close(): Promise<void>;
}

/** Every predict step, branches included, with its field path. */
function predictSteps(steps: readonly PipelineStep[], path: string): [PredictStepConfig, string][] {
  return steps.flatMap((step, i): [PredictStepConfig, string][] => {
    if (step.predict) return [[step.predict, `${path}.${i}.predict`]];
    if (step.split) return step.split.branches.flatMap((b, j) => predictSteps(b.pipeline, `${path}.${i}.split.branches.${j}.pipeline`));
    return [];
  });
}

function placeholder(name: string): Inferencer {
  const fail = (): never => {
    throw new InflowError(
      'FAILED_PRECONDITION',
      `model source "${name}" is a dry-run placeholder; build the pipeline without dryRun to infer`,
    );
  };
  return { infer: async () => fail(), metadata: async () => fail(), ready: async () => false, close: async () => undefined };
}

/** The remote inferencer of one `remote:` source; the only place that knows src/client's options. */
function remoteInferencer(spec: RemoteSource, fallback: Inferencer | undefined, deps: PipelineDeps): Inferencer {
  const create = deps.createRemoteInferencer ?? createRemoteInferencer;
  // The file names the fallback; the client takes the Inferencer itself.
  return create({ ...spec, fallback });
}

function describeSource(name: string, config: PipelineConfig, baseDir: string, used: boolean): string {
  const src = config.models[name];
  const parts: string[] = [];
  if (src?.embedded) parts.push(`embedded ${resolve(baseDir, src.embedded.modelRepository)}${src.embedded.watch ? ' (watched)' : ''}`);
  if (src?.remote) {
    const r = src.remote;
    parts.push(`${r.protocol} ${r.url}`);
    parts.push(r.retry === false ? 'no retry' : `${r.retry.maxAttempts} attempts`);
    parts.push(r.circuitBreaker === false ? 'no circuit breaker' : `circuit opens after ${r.circuitBreaker.failureThreshold} failures`);
    if (r.fallback) parts.push(`fallback ${r.fallback}`);
  }
  return `  ${name.padEnd(10)} ${parts.join(', ')}${used ? '' : ' (unused)'}`;
}

/**
 * Builds a validated pipeline (see pipeline-config.ts). Embedded sources load their repository
 * (every model warmed up) and each embedded model a predict names is checked to exist, so a
 * typo fails here and not on the first record; remote sources are created but not called.
 * @throws InflowError INVALID_CONFIG / NOT_FOUND naming the file and field; nothing stays open.
 */
export async function buildPipeline(config: PipelineConfig, deps: PipelineDeps = {}): Promise<BuiltPipeline> {
  const source = deps.source ?? 'pipeline';
  const baseDir = deps.baseDir ?? process.cwd();
  const predicts = predictSteps(config.pipeline, 'pipeline');
  const used = new Set(predicts.map(([p]) => p.using));
  for (const name of [...used]) {
    const fallback = config.models[name]?.remote?.fallback;
    if (fallback) used.add(fallback);
  }
  // The models each repository must load: those a predict names through a source on it.
  const rootOf = (name: string): string | undefined => {
    const embedded = config.models[name]?.embedded;
    return embedded ? resolve(baseDir, embedded.modelRepository) : undefined;
  };
  const modelsOfRoot = new Map<string, Set<string> | 'all'>();
  for (const [name, source] of Object.entries(config.models)) {
    if (source?.embedded?.loadModels === 'all' && used.has(name)) modelsOfRoot.set(rootOf(name) as string, 'all');
  }
  for (const [p] of predicts) {
    for (const name of [p.using, config.models[p.using]?.remote?.fallback]) {
      const root = name === undefined ? undefined : rootOf(name);
      if (root === undefined) continue;
      const set = modelsOfRoot.get(root) ?? new Set<string>();
      if (set !== 'all') modelsOfRoot.set(root, set.add(p.model));
    }
  }
  const inferencers = new Map<string, Inferencer>();
  const repositories = new Map<string, { inferencer: Inferencer; watch: boolean; name: string }>();
  const syncs: { close(): Promise<void> }[] = [];
  // Ends the registry client's retries (it waits for an unreachable registry) when the pipeline closes.
  const registryAbort = new AbortController();
  const closeAll = async (): Promise<void> => {
    registryAbort.abort();
    for (const sync of syncs.splice(0)) await sync.close().catch(() => undefined);
    const order = [...inferencers.entries()].sort(([a], [b]) => Number(!!config.models[b]?.remote) - Number(!!config.models[a]?.remote));
    const errors: unknown[] = [];
    for (const inferencer of new Set(order.map(([, i]) => i))) await inferencer.close().catch((e: unknown) => errors.push(e));
    if (errors.length > 0) throw InflowError.from(errors[0]);
  };
  try {
    // Embedded first: a remote source's fallback must exist when the remote is created.
    for (const name of used) {
      const embedded = config.models[name]?.embedded;
      if (!embedded) continue;
      const root = resolve(baseDir, embedded.modelRepository);
      const same = repositories.get(root);
      if (same && same.watch !== embedded.watch) {
        throw new InflowError(
          'INVALID_CONFIG',
          `${source}: models.${name}.embedded.watch: "${name}" and "${same.name}" share the repository ${root}; give both the same watch setting`,
        );
      }
      if (embedded.modelsSync && !embedded.modelsTopic) {
        throw new InflowError(
          'INVALID_CONFIG',
          `${source}: models.${name}.embedded.modelsSync: applies to modelsTopic, which is not given`,
        );
      }
      if (!same) {
        const sync =
          embedded.modelsTopic && !deps.dryRun && deps.syncModels
            ? await deps.syncModels(
                root,
                embedded.modelsTopic,
                embedded.modelsSync && {
                  ...embedded.modelsSync,
                  trustedKeys: embedded.modelsSync.trustedKeys.map((k) => resolve(baseDir, k)),
                },
              )
            : undefined;
        if (sync) syncs.push(sync);
        const only = modelsOfRoot.get(root);
        const inferencer = deps.dryRun
          ? placeholder(name)
          : await (deps.createLocalInference ?? createLocalInference)({
              modelRepository: root,
              load: deps.load ?? loadServable,
              watch: embedded.watch,
              ...(only === 'all' ? {} : { models: [...(only ?? [])].sort() }),
              ...(deps.logger ? { logger: deps.logger } : {}),
            });
        sync?.attach(inferencer);
        repositories.set(root, { inferencer, watch: embedded.watch, name });
      }
      inferencers.set(name, (repositories.get(root) as { inferencer: Inferencer }).inferencer);
    }
    for (const name of used) {
      const remote = config.models[name]?.remote;
      if (!remote) continue;
      const fallback = remote.fallback !== undefined ? inferencers.get(remote.fallback) : undefined;
      inferencers.set(name, deps.dryRun ? placeholder(name) : remoteInferencer(remote, fallback, deps));
    }
    const fitted = await checkEmbeddedModels(config, predicts, inferencers, { source, baseDir, dryRun: deps.dryRun ?? false });
    const registry = config.schemaRegistry
      ? { client: registryClientFromConfig(config.schemaRegistry, { baseDir, signal: registryAbort.signal }), baseDir }
      : undefined;
    const topology = buildTopology(config, inferencers, source, registry, fitted);
    const runnerOptions: Omit<StreamsRunnerOptions, 'client'> = {
      applicationId: config.applicationId,
      guarantee: config.guarantee,
      onError: config.errors.policy,
      autoOffsetReset: config.autoOffsetReset,
      ...(config.instanceId !== undefined ? { instanceId: config.instanceId } : {}),
      ...(config.staticMembership ? { staticMembership: true } : {}),
      ...(config.errors.deadLetterTopic !== undefined ? { deadLetterTopic: config.errors.deadLetterTopic } : {}),
      ...(config.state ? { stateDir: resolve(baseDir, config.state.dir) } : {}),
      ...(config.state?.maxStoreBytes !== undefined ? { maxStoreBytes: config.state.maxStoreBytes } : {}),
      ...config.limits,
      ...(deps.logger ? { logger: deps.logger } : {}),
    };
    return {
      config,
      topology,
      runnerOptions,
      inferencers,
      ...(registry ? { schemaRegistry: registry.client } : {}),
      describe() {
        const errors =
          config.errors.policy === 'dlq'
            ? `failed records → ${config.errors.deadLetterTopic ?? `${config.applicationId}-dlq`}`
            : `failed records: ${config.errors.policy}`;
        const models = Object.keys(config.models).map((n) => describeSource(n, config, baseDir, used.has(n)));
        return [
          `Pipeline ${config.applicationId} (${config.guarantee}, ${errors})`,
          ...(models.length ? ['Model sources', ...models] : []),
          topology.describe(),
        ].join('\n');
      },
      close: closeAll,
    };
  } catch (error) {
    await closeAll().catch(() => undefined);
    throw error;
  }
}

/**
 * Fails fast on a model an embedded source (or fallback) does not have, and on an input mapping
 * that does not fit its signature: checked once here, not per record. Returns the inputs of each
 * embedded predict fitted to the signature (row shapes filled in).
 */
async function checkEmbeddedModels(
  config: PipelineConfig,
  predicts: readonly [PredictStepConfig, string][],
  inferencers: ReadonlyMap<string, Inferencer>,
  o: { source: string; baseDir: string; dryRun: boolean },
): Promise<Map<PredictStepConfig, PredictStepConfig['inputs']>> {
  const fitted = new Map<PredictStepConfig, PredictStepConfig['inputs']>();
  for (const [p, path] of predicts) {
    const src = config.models[p.using];
    const localName = src?.embedded ? p.using : src?.remote?.fallback;
    const local = localName !== undefined ? config.models[localName]?.embedded : undefined;
    if (localName === undefined || !local) continue;
    const root = resolve(o.baseDir, local.modelRepository);
    const where = `${o.source}: ${path}.model: model "${p.model}"`;
    if (o.dryRun) {
      const isDir = await stat(join(root, p.model)).then(
        (s) => s.isDirectory(),
        () => false,
      );
      if (!isDir)
        throw new InflowError(
          'NOT_FOUND',
          `${where} has no folder in ${root} (embedded source "${localName}"); expected ${join(root, p.model)}/`,
        );
      continue;
    }
    let meta;
    try {
      meta = await (inferencers.get(localName) as Inferencer).metadata(p.model, p.version);
    } catch (error) {
      const e = InflowError.from(error);
      throw new InflowError(e.code, `${where} is not served by embedded source "${localName}" (${root}): ${e.message}`, { cause: e });
    }
    if (p.label !== undefined && !Object.hasOwn(meta.labels, p.label)) {
      const labels = Object.keys(meta.labels);
      throw new InflowError(
        'NOT_FOUND',
        `${where}: label "${p.label}" is not defined in ${root}; expected one of: ${labels.length ? labels.join(', ') : '(no labels)'}`,
      );
    }
    fitted.set(p, fitInputsToSignature(p.inputs, meta.inputs, p.model, `${o.source}: ${path}`));
  }
  return fitted;
}
