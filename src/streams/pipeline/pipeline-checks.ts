/**
 * The cross-field rules of a pipeline file, run by the schema after every field has its type:
 * the step order (source first, `to` or `split` last), the names a predict or fallback points
 * to, and the kind of value (json, string, bytes, tensor) each operator sees, which follows the
 * records from the source's serde through predicts to each `to`. Every problem is reported with
 * its field path, like a type error of the schema.
 */
import type { z } from 'zod';
import type { Operator, PipelineStep, PredictStepConfig, SerdeName, SerdeSpec } from './pipeline-config.ts';
import { type AggregateStepConfig, aggregateReadsFields } from './pipeline-aggregate.ts';

type Path = (string | number)[];

/** What the checks read of the whole file (structural, so the schema can refer to this function). */
interface CheckedConfig {
  readonly applicationId: string;
  readonly errors: { readonly policy: string; readonly deadLetterTopic?: string | undefined };
  readonly models: Readonly<Record<string, { readonly embedded?: unknown; readonly remote?: { readonly fallback?: string | undefined } }>>;
  readonly pipeline: readonly PipelineStep[];
  readonly schemaRegistry?: unknown;
  readonly tables: Readonly<
    Record<
      string,
      {
        readonly topic: string;
        readonly key?: SerdeSpec | undefined;
        readonly value?: SerdeSpec | undefined;
        readonly copartitioned?: boolean | undefined;
      }
    >
  >;
}

/** The serdes of the records at one point of the pipeline (a value's kind is its serde's name). */
export interface Flow {
  readonly key: SerdeName;
  readonly value: SerdeName;
}

/** The operator of a step (undefined when the step has none or several: the schema reported that). */
export function operatorOf(step: PipelineStep): Operator | undefined {
  const ops = (Object.keys(step) as Operator[]).filter((k) => step[k] !== undefined);
  return ops.length === 1 ? ops[0] : undefined;
}

/** The kind of value a serde gives: its name, or json for the registry formats (records are JSON-like objects). */
export function kindOf(spec: SerdeSpec): SerdeName;
export function kindOf(spec: SerdeSpec | undefined): SerdeName | undefined;
export function kindOf(spec: SerdeSpec | undefined): SerdeName | undefined {
  return spec === undefined || typeof spec === 'string' ? spec : 'json';
}

/** Whether a sink serde can write values of `kind`: its own kind, or any string as JSON text. */
export function serdeFits(serde: SerdeName, kind: SerdeName): boolean {
  return serde === kind || (serde === 'json' && kind === 'string');
}

/** The value kind after a predict step. */
export function predictOutputKind(predict: PredictStepConfig): SerdeName {
  return predict.outputTensor !== undefined ? 'tensor' : 'json';
}

interface State {
  readonly context: z.core.$RefinementCtx;
  readonly models: CheckedConfig['models'];
  readonly tables: CheckedConfig['tables'];
  readonly inputTopics: Set<string>;
  readonly names: Map<string, string>;
  readonly hasRegistry: boolean;
  /** The source's key serde is a registry format: every `to` must name its own key serde. */
  registryKey?: string;
}

function issue(state: State, path: Path, message: string): void {
  state.context.addIssue({ code: 'custom', path, message });
}

function checkName(state: State, name: string | undefined, path: Path): void {
  if (name === undefined) return;
  const earlier = state.names.get(name);
  if (earlier !== undefined) issue(state, [...path, 'name'], `node name "${name}" is already used at ${earlier}; node names are unique`);
  else state.names.set(name, path.join('.'));
}

function checkPredict(state: State, p: PredictStepConfig, path: Path, flow: Flow): void {
  const known = Object.keys(state.models);
  if (!Object.hasOwn(state.models, p.using)) {
    issue(
      state,
      [...path, 'using'],
      `unknown model source "${p.using}"; expected a name under models: (${known.length ? known.join(', ') : 'none defined'})`,
    );
  }
  if (p.version !== undefined && p.label !== undefined) {
    issue(state, [...path, 'label'], `set a version (${p.version}) or a label ("${p.label}"), not both`);
  }
  if ((p.outputs === undefined) === (p.outputTensor === undefined)) {
    issue(
      state,
      path,
      'give `outputs` (model outputs merged into a JSON value) or `outputTensor` (the value becomes that tensor), exactly one',
    );
  }
  const inputs = Object.entries(p.inputs);
  if (inputs.length === 0) issue(state, [...path, 'inputs'], 'map at least one model input to a field of the record value');
  if (flow.value === 'bytes') {
    issue(state, path, "predict reads json, string or tensor values; the values here are bytes (set the source's `value:` serde)");
  } else if (flow.value === 'tensor') {
    if (inputs.length !== 1 || inputs[0]?.[1].field !== '.') {
      issue(state, [...path, 'inputs'], 'the values here are tensors (tensor serde): map exactly one model input, with field "."');
    }
  } else {
    for (const [name, spec] of inputs) {
      if (spec.dtype === 'FP16') {
        issue(state, [...path, 'inputs', name, 'dtype'], 'FP16 cannot be filled from JSON numbers; expected FP32 (or the tensor serde)');
      }
      if ((spec.shape?.filter((d) => d === -1).length ?? 0) > 1) {
        issue(state, [...path, 'inputs', name, 'shape'], 'at most one -1 (inferred from the element count); give the other dimensions');
      }
    }
  }
  if (p.keepInput === true && (flow.value !== 'json' || p.outputs === undefined)) {
    issue(state, [...path, 'keepInput'], `keepInput merges outputs into a JSON object value; the values here are ${flow.value}`);
  }
}

function checkRegistryFormat(state: State, spec: SerdeSpec | undefined, path: Path, writes: boolean): void {
  if (spec === undefined || typeof spec === 'string') return;
  if (!state.hasRegistry) issue(state, [...path, 'format'], `the ${spec.format} format needs a schemaRegistry: section (its url)`);
  if (!writes) return;
  const ways = (['schema', 'schemaFile', 'useLatest', 'schemaId'] as const).filter((k) => spec[k] !== undefined && spec[k] !== false);
  if (ways.length !== 1) {
    issue(
      state,
      path,
      `writing ${spec.format} needs exactly one output schema: schema, schemaFile, useLatest: true or schemaId; got ${ways.length === 0 ? 'none' : ways.join(' and ')}`,
    );
  }
}

function checkSerde(state: State, spec: SerdeSpec | undefined, kind: SerdeName, path: Path, what: string): void {
  checkRegistryFormat(state, spec, path, true);
  const serde = kindOf(spec);
  if (serde !== undefined && !serdeFits(serde, kind)) {
    const name = typeof spec === 'object' ? spec.format : serde;
    issue(state, path, `the ${what}s that reach this step are ${kind}; the ${name} serde cannot write them (expected ${kind})`);
  }
}

function walk(state: State, steps: readonly PipelineStep[], path: Path, start: Flow | undefined): void {
  let flow = start;
  let ended: { op: Operator; at: string } | undefined;
  steps.forEach((step, i) => {
    const at: Path = [...path, i];
    const op = operatorOf(step);
    if (op === undefined) return;
    if (ended) {
      issue(
        state,
        at,
        `nothing can follow the "${ended.op}" step at ${ended.at}: it ends the pipeline (use split to write to several topics)`,
      );
      return;
    }
    const here: Path = [...at, op];
    if (op === 'source') {
      const s = step.source as NonNullable<PipelineStep['source']>;
      if (flow !== undefined) {
        issue(
          state,
          at,
          i === 0 ? 'a split branch reads its records from the split; remove this source' : 'only the first step is a source',
        );
        return;
      }
      for (const t of typeof s.topic === 'string' ? [s.topic] : s.topic) state.inputTopics.add(t);
      checkName(state, s.name, here);
      checkRegistryFormat(state, s.key, [...here, 'key'], false);
      checkRegistryFormat(state, s.value, [...here, 'value'], false);
      if (typeof s.key === 'object') state.registryKey = s.key.format;
      flow = { key: kindOf(s.key) ?? 'bytes', value: kindOf(s.value) ?? 'json' };
      return;
    }
    if (flow === undefined) {
      issue(state, at, `a pipeline starts with a source step; got "${op}"`);
      return;
    }
    const cur: Flow = flow;
    switch (op) {
      case 'join': {
        const j = step.join as NonNullable<PipelineStep['join']>;
        checkName(state, j.name, here);
        if (j.stream !== undefined) {
          if (state.inputTopics.has(j.stream.topic)) {
            issue(state, [...here, 'stream', 'topic'], `"${j.stream.topic}" is already read by this pipeline; join another topic`);
          }
          state.inputTopics.add(j.stream.topic);
          checkRegistryFormat(state, j.stream.key, [...here, 'stream', 'key'], false);
          checkRegistryFormat(state, j.stream.value, [...here, 'stream', 'value'], false);
        } else if (j.table !== undefined && !Object.hasOwn(state.tables, j.table)) {
          const known = Object.keys(state.tables);
          issue(
            state,
            [...here, 'table'],
            `unknown table "${j.table}"; expected one of tables: ${known.length ? known.join(', ') : '(none declared)'}`,
          );
        } else if (j.table !== undefined && state.tables[j.table]?.copartitioned && j.key !== undefined) {
          issue(
            state,
            [...here, 'key'],
            `table "${j.table}" is co-partitioned: a record meets the row of its own key (its partition); key applies to global tables`,
          );
        }
        if (cur.value !== 'json') issue(state, here, `join adds a field to JSON values; the values here are ${cur.value}`);
        return;
      }
      case 'aggregate': {
        const a = step.aggregate as AggregateStepConfig;
        checkName(state, a.name, here);
        if (aggregateReadsFields(a) && cur.value !== 'json')
          issue(state, here, `aggregate reads fields of JSON values; the values here are ${cur.value}`);
        // Updates go on keyed by the group key as text, valued by JSON objects.
        flow = { key: 'string', value: 'json' };
        return;
      }
      case 'filter':
      case 'select':
      case 'rename': {
        const o = step[op] as { name?: string | undefined };
        checkName(state, o.name, here);
        const fits = cur.value === 'json' || (op === 'filter' && cur.value === 'string');
        if (!fits) issue(state, here, `${op} reads fields of JSON values; the values here are ${cur.value}`);
        return;
      }
      case 'predict': {
        const p = step.predict as PredictStepConfig;
        checkName(state, p.name, here);
        checkPredict(state, p, here, cur);
        flow = { key: cur.key, value: predictOutputKind(p) };
        return;
      }
      case 'to': {
        const t = step.to as NonNullable<PipelineStep['to']>;
        checkName(state, t.name, here);
        if (state.inputTopics.has(t.topic)) {
          issue(
            state,
            [...here, 'topic'],
            `"${t.topic}" is an input topic of this pipeline; it would read its own output (expected another topic)`,
          );
        }
        if (t.key === undefined && state.registryKey !== undefined) {
          issue(
            state,
            [...here, 'key'],
            `the source's keys are ${state.registryKey}: give this topic's key serde (e.g. { format: ${state.registryKey}, schema: … } or json)`,
          );
        }
        checkSerde(state, t.key, cur.key, [...here, 'key'], 'key');
        checkSerde(state, t.value, cur.value, [...here, 'value'], 'value');
        ended = { op, at: at.join('.') };
        return;
      }
      case 'split': {
        const s = step.split as NonNullable<PipelineStep['split']>;
        checkName(state, s.name, here);
        const seen = new Set<string>();
        s.branches.forEach((b, j) => {
          const bp: Path = [...here, 'branches', j];
          if (seen.has(b.name)) issue(state, [...bp, 'name'], `branch "${b.name}" is named twice; branch names are unique in a split`);
          seen.add(b.name);
          if (b.when === undefined && j !== s.branches.length - 1) {
            issue(state, [...bp, 'when'], 'only the last branch may omit `when` (the default branch takes what no other branch takes)');
          }
          if (b.when !== undefined && cur.value !== 'json' && cur.value !== 'string') {
            issue(state, [...bp, 'when'], `when reads fields of JSON values; the values here are ${cur.value}`);
          }
          walk(state, b.pipeline, [...bp, 'pipeline'], cur);
        });
        ended = { op, at: at.join('.') };
        return;
      }
    }
  });
  const last = steps.at(-1);
  const lastOp = last && operatorOf(last);
  if (lastOp !== undefined && lastOp !== 'to' && lastOp !== 'split' && !ended) {
    issue(state, [...path, steps.length - 1], `a pipeline ends with a "to" step (or a split whose branches do); got "${lastOp}"`);
  }
}

/** The schema's cross-field refinement of a whole pipeline file. */
export function checkPipeline(config: CheckedConfig, context: z.core.$RefinementCtx): void {
  const state: State = {
    context,
    models: config.models,
    tables: config.tables,
    inputTopics: new Set(),
    names: new Map(),
    hasRegistry: config.schemaRegistry !== undefined,
  };
  for (const [name, source] of Object.entries(config.models)) {
    const fallback = source.remote?.fallback;
    if (fallback === undefined) continue;
    const target = config.models[fallback];
    const path = ['models', name, 'remote', 'fallback'];
    if (!target) issue(state, path, `unknown model source "${fallback}"; expected the name of an embedded source under models:`);
    else if (target.embedded === undefined) {
      issue(state, path, `"${fallback}" is not embedded; a fallback answers when the remote cannot, so it must be an embedded source`);
    }
  }
  walk(state, config.pipeline, ['pipeline'], undefined);
  for (const [name, table] of Object.entries(config.tables)) {
    if (state.inputTopics.has(table.topic)) {
      issue(state, ['tables', name, 'topic'], `"${table.topic}" is an input topic of this pipeline; a table reads a topic of its own`);
    }
    checkRegistryFormat(state, table.key, ['tables', name, 'key'], false);
    checkRegistryFormat(state, table.value, ['tables', name, 'value'], false);
  }
  const dlq = config.errors.deadLetterTopic;
  if (dlq !== undefined && config.errors.policy !== 'dlq') {
    issue(state, ['errors', 'deadLetterTopic'], `applies to policy dlq only; the policy is ${config.errors.policy}`);
  }
  const effective = dlq ?? `${config.applicationId}-dlq`;
  if (state.inputTopics.has(effective)) {
    issue(state, ['errors', 'deadLetterTopic'], `"${effective}" is an input topic of this pipeline; expected a topic of its own`);
  }
}
