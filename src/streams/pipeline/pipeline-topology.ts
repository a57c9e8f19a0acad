/**
 * The topology of a validated pipeline file, made with the StreamsBuilder a program would use:
 * filter and split become predicates on fields, select and rename become mapValues, predict a
 * predict with a field mapping (or the tensor form), to a sink with the serdes the values need.
 */
import { InflowError } from '../../errors.ts';
import type { SchemaRegistryClient } from '../../kafka/schema-registry/registry-client.ts';
import type { AsyncSerde } from '../../kafka/serdes.ts';
import { jsonSerdeWithNumericArrays } from '../../kafka/json-numeric.ts';
import { topicSerde } from '../../kafka/topic-serde.ts';
import { numericInputFields } from './numeric-fields.ts';
import type { Inferencer } from '../../serving/types.ts';
import type { OutputField } from '../api/field-mapping.ts';
import type { PredictOptions } from '../api/predict-spec.ts';
import { createStreamsBuilder, type KStream, type StreamsBuilder } from '../api/streams-builder.ts';
import type { Topology } from '../api/topology.ts';
import type { PipelineConfig, PipelineStep, PredictStepConfig, SerdeSpec } from './pipeline-config.ts';
import { type AggregateStepConfig, addAggregate, aggregateNodeCount } from './pipeline-aggregate.ts';
import { type Flow, kindOf, operatorOf, predictOutputKind } from './pipeline-checks.ts';
import { compilePredicate, compileRename, compileSelect, tensorInputs, tensorOutput } from './pipeline-ops.ts';
import { addJoin, addStreamJoin, declareTables, type PipelineTable } from './pipeline-joins.ts';

/** A predict step's inputs fitted to its model's signature (embedded models; pipeline-features.ts). */
export type FittedInputs = ReadonlyMap<PredictStepConfig, PredictStepConfig['inputs']>;

function predictOptions(
  p: PredictStepConfig,
  flow: Flow,
  inferencer: Inferencer,
  fitted: FittedInputs | undefined,
  serdeFor: SerdeFactory,
): PredictOptions {
  const tensorIn = flow.value === 'tensor';
  const [inputName, inputSpec] = Object.entries(p.inputs)[0] ?? ['', { field: '.' }];
  const toTensor = tensorIn ? tensorInputs(inputName, inputSpec.dtype, inputSpec.shape) : undefined;
  const toOutput = p.outputTensor !== undefined ? tensorOutput(p.outputTensor) : undefined;
  return {
    inferencer,
    inferencerName: p.using,
    model: p.model,
    ...(p.version !== undefined ? { version: p.version } : {}),
    ...(p.label !== undefined ? { label: p.label } : {}),
    inputs: toTensor ? (r) => toTensor(r.value) : (fitted?.get(p) ?? p.inputs),
    outputs: toOutput ? (_r, outputs) => toOutput(outputs) : (p.outputs as Record<string, OutputField>),
    keepInput: p.keepInput ?? flow.value === 'json',
    ...(p.outputTensor !== undefined ? { requestOutputs: [p.outputTensor] } : {}),
    ...(p.maxBatch !== undefined ? { maxBatch: p.maxBatch } : {}),
    ...(p.maxDelayMs !== undefined ? { maxDelayMs: p.maxDelayMs } : {}),
    ...(p.idleDispatch !== undefined ? { idleDispatch: p.idleDispatch } : {}),
    ...(p.maxConcurrentBatches !== undefined ? { maxConcurrentBatches: p.maxConcurrentBatches } : {}),
    ...(p.timeoutMs !== undefined ? { timeoutMs: p.timeoutMs } : {}),
    ...(p.retry !== undefined ? { retry: p.retry } : {}),
    ...(p.predictionLog !== undefined
      ? {
          predictionLog: {
            topic: p.predictionLog.topic,
            ...(p.predictionLog.includeInputs !== undefined ? { includeInputs: p.predictionLog.includeInputs } : {}),
            ...(p.predictionLog.value !== undefined ? { valueSerde: serdeFor(p.predictionLog.value, p.predictionLog.topic, false) } : {}),
          },
        }
      : {}),
  };
}

/** Counts the nodes added, as the builder does, so select and rename get names like the builder's own (`SELECT-0003`). */
interface NodeCounter {
  added: number;
  /** The global tables join steps use, and the file's table configs (their key serdes). */
  tables?: ReadonlyMap<string, PipelineTable>;
  tableConfigs?: PipelineConfig['tables'];
  /** The builder (a stream join adds a source). */
  builder?: StreamsBuilder;
}

function autoName(kind: string, index: number, name: string | undefined): string {
  return name ?? `${kind}-${String(index).padStart(4, '0')}`;
}

/** Makes the serde of a topic's keys or values from its spec. */
type SerdeFactory = (spec: SerdeSpec, topic: string, isKey: boolean) => AsyncSerde<unknown>;

/** Adds `steps` after `stream` (the source already added). */
function addSteps(
  stream: KStream<unknown, unknown>,
  steps: readonly PipelineStep[],
  flow: Flow,
  inferencers: ReadonlyMap<string, Inferencer>,
  counter: NodeCounter,
  serdeFor: SerdeFactory,
  fitted?: FittedInputs,
): void {
  let s = stream;
  let f = flow;
  for (const step of steps) {
    const op = operatorOf(step);
    // One node per operator; a split adds one more per branch (a pass-through the branch starts from).
    const at = counter.added;
    counter.added +=
      op === 'split'
        ? 1 + (step.split?.branches.length ?? 0)
        : op === 'aggregate'
          ? aggregateNodeCount(step.aggregate as AggregateStepConfig)
          : 1;
    switch (op) {
      case 'filter': {
        const { name, ...predicate } = step.filter as NonNullable<PipelineStep['filter']>;
        const test = compilePredicate(predicate);
        s = s.filter((r) => test(r.value), { name });
        break;
      }
      case 'select': {
        const o = step.select as NonNullable<PipelineStep['select']>;
        const fn = compileSelect(o.fields);
        s = s.mapValues((r) => fn(r.value), { name: autoName('SELECT', at, o.name) });
        break;
      }
      case 'rename': {
        const o = step.rename as NonNullable<PipelineStep['rename']>;
        const fn = compileRename(o.fields);
        s = s.mapValues((r) => fn(r.value), { name: autoName('RENAME', at, o.name) });
        break;
      }
      case 'join': {
        const j = step.join as NonNullable<PipelineStep['join']>;
        if (j.stream !== undefined) {
          const o = j.stream;
          const other = (counter.builder as StreamsBuilder).stream(o.topic, {
            key: serdeFor(o.key ?? f.key, o.topic, true),
            value: serdeFor(o.value ?? 'json', o.topic, false),
          });
          // Its source, the two sides and the merged stream: four nodes where the step counted one.
          counter.added += 3;
          s = addStreamJoin(s, other, j, autoName('JOIN', at, j.name));
          break;
        }
        const table = counter.tables?.get(j.table as string);
        if (!table) throw new InflowError('INTERNAL', `join on table "${j.table}" that was not declared passed validation`);
        s = addJoin(s, j, table, counter.tableConfigs?.[j.table as string]?.key);
        break;
      }
      case 'aggregate': {
        const a = step.aggregate as AggregateStepConfig;
        s = addAggregate(s, a, autoName('AGGREGATE', at, a.name));
        f = { key: 'string', value: 'json' };
        break;
      }
      case 'predict': {
        const p = step.predict as PredictStepConfig;
        s = s.predict(predictOptions(p, f, inferencers.get(p.using) as Inferencer, fitted, serdeFor), { name: p.name });
        f = { key: f.key, value: predictOutputKind(p) };
        break;
      }
      case 'to': {
        const o = step.to as NonNullable<PipelineStep['to']>;
        s.to(
          o.topic,
          { key: serdeFor(o.key ?? f.key, o.topic, true), value: serdeFor(o.value ?? f.value, o.topic, false) },
          { name: o.name },
        );
        return;
      }
      case 'split': {
        const o = step.split as NonNullable<PipelineStep['split']>;
        const predicates: Record<string, (r: { value: unknown }) => boolean> = {};
        let defaultBranch: string | undefined;
        for (const b of o.branches) {
          if (b.when === undefined) defaultBranch = b.name;
          else {
            const test = compilePredicate(b.when);
            predicates[b.name] = (r) => test(r.value);
          }
        }
        const branches = s.split(predicates, { name: o.name, ...(defaultBranch !== undefined ? { defaultBranch } : {}) });
        for (const b of o.branches)
          addSteps(branches[b.name] as KStream<unknown, unknown>, b.pipeline, f, inferencers, counter, serdeFor, fitted);
        return;
      }
      case 'source':
      case undefined:
        // Ruled out by the schema (a source only first, exactly one operator per step).
        throw new InflowError('INTERNAL', 'pipeline step without a single operator passed validation');
    }
  }
}

/** The tables the join steps name, branches included. */
function joinedTables(steps: readonly PipelineStep[]): Set<string> {
  const out = new Set<string>();
  for (const step of steps) {
    if (step.join?.table !== undefined) out.add(step.join.table);
    for (const b of step.split?.branches ?? []) for (const t of joinedTables(b.pipeline)) out.add(t);
  }
  return out;
}

/** The Schema Registry of a pipeline with registry formats, and the folder its schema files are relative to. */
export interface TopologyRegistry {
  readonly client: SchemaRegistryClient;
  readonly baseDir: string;
}

/**
 * Builds the topology; `inferencers` holds an Inferencer for every `using` name; `registry` is
 * needed when a key or value is in a registry format.
 * @throws InflowError INVALID_CONFIG from the builder, prefixed with `source`.
 */
export function buildTopology(
  config: PipelineConfig,
  inferencers: ReadonlyMap<string, Inferencer>,
  source: string,
  registry?: TopologyRegistry,
  fitted?: FittedInputs,
): Topology {
  const [first, ...rest] = config.pipeline;
  const src = first?.source;
  if (!src) throw new InflowError('INTERNAL', 'pipeline without a source step passed validation');
  const flow: Flow = { key: kindOf(src.key) ?? 'bytes', value: kindOf(src.value) ?? 'json' };
  const serdeFor: SerdeFactory = (spec, topic, isKey) => topicSerde(spec, { topic, isKey }, registry);
  try {
    const builder = createStreamsBuilder();
    const topics = typeof src.topic === 'string' ? src.topic : src.topic.join(',');
    // JSON numeric arrays the predict steps read go straight into typed arrays (numeric-fields.ts).
    const numeric = (src.value ?? flow.value) === 'json' ? numericInputFields(config.pipeline) : undefined;
    const value =
      numeric !== undefined && numeric.size > 0 ? jsonSerdeWithNumericArrays(numeric) : serdeFor(src.value ?? flow.value, topics, false);
    const stream = builder.stream(src.topic, { key: serdeFor(src.key ?? flow.key, topics, true), value }, { name: src.name });
    const tables = declareTables(builder, config.tables, joinedTables(config.pipeline), serdeFor);
    // A co-partitioned table added its source and materializing nodes.
    const added = 1 + 2 * [...tables.keys()].filter((t) => config.tables[t]?.copartitioned).length;
    addSteps(stream, rest, flow, inferencers, { added, tables, tableConfigs: config.tables, builder }, serdeFor, fitted);
    return builder.build();
  } catch (error) {
    const e = InflowError.from(error);
    if (e.code !== 'INVALID_CONFIG') throw e;
    throw new InflowError('INVALID_CONFIG', `${source}: ${e.message}`, { cause: e });
  }
}
