/**
 * The configuration reference (docs/config-reference.md), generated from the zod schemas that
 * validate the files — model config.yaml, pipeline files and the `kafka:` section — so the docs
 * cannot drift from what is accepted: zod 4's `z.toJSONSchema` gives types, defaults and
 * constraints; the descriptions are the TSDoc comments above each key in the schema sources.
 * scripts/gen-config-docs.ts writes the file; a test fails when the committed one is stale.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { kafkaConfigSchema } from '../config/kafka-config.ts';
import { modelConfigSchema } from '../repository/model-config.ts';
import { pipelineConfigSchema } from '../streams/pipeline/pipeline-config.ts';

const SRC = join(import.meta.dirname, '..');

/** The documented files: title, schema, the sources whose comments describe its keys, an example. */
const SECTIONS = [
  {
    title: 'Model config.yaml (`<repository>/<model>/config.yaml`)',
    schema: modelConfigSchema,
    sources: ['repository/model-config.ts'],
    intro:
      'How one model is served: platform, which versions load, labels, batching, routing (canary / A-B / shadow), warm-up and platform options. Read by `inflow serve`, embedded pipelines, `inflow predict` and the edge agent.',
    example:
      'platform: onnx\nversionPolicy: { latest: 2 }\nlabels: { stable: 1, canary: 2 }\nbatching: { maxBatchSize: 64, maxDelayMicros: 500 }\nrouting: { split: [{ version: 1, weight: 90 }, { version: 2, weight: 10 }], shadow: { version: 2, fraction: 0.1 } }\nruntime: { file: model.onnx }',
  },
  {
    title: 'Pipeline file (`inflow stream <file.yaml>`)',
    schema: pipelineConfigSchema,
    sources: [
      'streams/pipeline/pipeline-config.ts',
      'client/remote-config.ts',
      'config/kafka-config.ts',
      'config/schema-registry-config.ts',
    ],
    intro:
      'A stream pipeline: source topic → filter / select / rename → predict (embedded model or remote server) → split → to. Each step holds exactly one operator. See examples/pipelines/.',
    example:
      'applicationId: digits-scorer\nkafka: { bootstrapServers: [127.0.0.1:9092] }\nguarantee: exactly-once\nmodels:\n  local: { embedded: { modelRepository: ../../models/repository } }\npipeline:\n  - source: { topic: digits, key: string, value: json }\n  - predict: { model: digits-mlp, using: local, inputs: { input: { field: pixels, dtype: FP32, shape: [64] } } }\n  - to: { topic: digits-scored }',
  },
  {
    title: 'Kafka section (`kafka:` of every file)',
    schema: kafkaConfigSchema,
    sources: ['config/kafka-config.ts'],
    intro:
      'Where the cluster is and how to reach it (SASL, TLS). `memory` is the in-process log. Secrets and certificates are given inline (`password`, `ca`: PEM text) or as files (`passwordFile`, `caFile`: e.g. a mounted Kubernetes Secret), not both.',
    example:
      'kafka:\n  bootstrapServers: [broker-1.example.com:9093, broker-2.example.com:9093]\n  sasl: { mechanism: SCRAM-SHA-512, username: inflow, passwordFile: /etc/inflow/kafka-password }\n  ssl: { caFile: /etc/inflow/ca.pem }',
  },
] as const;

type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  minItems?: number;
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
};

/** Descriptions by full path: for keys whose meaning depends on where they are (see {@link GENERIC}). */
const OVERRIDES: Record<string, string> = {
  pipeline: 'The steps in order: a `source` first, then filter / select / rename / predict, a `to` (or a `split`) last.',
  'pipeline[].split.branches[].pipeline': "The branch's own steps (no source), ending with `to` or another `split`.",
  'pipeline[].split.branches[].name': 'Starts with a letter (an integer-like name would reorder the branches of a JS object).',
  'pipeline[].source.topic': 'One topic or several (read as one stream).',
  'pipeline[].predict.timeoutMs': 'Deadline of one inference call, ms; default 30 000.',
  'pipeline[].predict.predictionLog.topic': 'The topic the prediction log is written to.',
  'pipeline[].predict.retry': 'Retries of an inference call that failed with a retriable error.',
  'models.<name>.remote.timeoutMs': 'Deadline of one attempt (connect, send, whole answer), ms; 0 disables.',
  'models.<name>.remote.retry': '`false`: one attempt per call.',
  'models.<name>.remote.auth.token': 'The bearer token.',
  'sasl.token': 'OAUTHBEARER token.',
  'kafka.sasl.token': 'OAUTHBEARER token.',
  'schemaRegistry.url': "Base URL of the Confluent-compatible API: `http://registry:8081`, or Apicurio's `…/apis/ccompat/v7`.",
  'schemaRegistry.requestTimeoutMs': 'Bound on one request to the registry, ms; default 10 000.',
  'schemaRegistry.basicAuth.passwordFile': 'File holding the password (a mounted Secret), read at start.',
  'schemaRegistry.bearerTokenFile': 'File holding the bearer token, read at start.',
  'pipeline[].source.key': 'Default bytes. A name, or a Schema Registry format: `{ format: avro | protobuf | json-schema }`.',
  'pipeline[].source.value': 'Default json. A name, or a Schema Registry format (records are read as JSON-like objects).',
  'pipeline[].to.key': "Default: the source's key serde (a registry format must be given: it names this topic's schema).",
  'pipeline[].to.value':
    'Default: the serde of the values that reach it. A registry format names one output schema: `schema`, `schemaFile`, `useLatest` or `schemaId`.',
};

/** Keys used by several objects with different meanings: described only through {@link OVERRIDES}. */
const GENERIC = new Set([
  'name',
  'topic',
  'key',
  'value',
  'retry',
  'token',
  'timeoutMs',
  'fields',
  'field',
  'version',
  'label',
  'pipeline',
]);

/** Node names of steps (`pipeline[].<operator>.name`). */
const STEP_NAME = /^pipeline\[\]\.\w+\.name$/;

/**
 * Key → the TSDoc comments right above it in the schema sources. A key with several different
 * comments (e.g. `timeoutMs` of two objects) is ambiguous: the reference leaves it undescribed
 * rather than risk the wrong text.
 */
export function keyComments(sources: readonly string[]): Map<string, string[]> {
  const comments = new Map<string, string[]>();
  // A doc comment (no "*/" inside), then the key on the next line (`key:`, `'key':` or `get key() {`).
  const pattern = /\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*\n\s*(?:get\s+)?['"]?([A-Za-z][\w-]*)['"]?\s*(?:\(\)\s*)?[:{]/g;
  for (const text of sources) {
    for (const m of text.matchAll(pattern)) {
      const key = m[2] as string;
      const comment = (m[1] as string)
        .split('\n')
        .map((l) => l.replace(/^\s*\*\s?/, '').trim())
        .join(' ')
        .replace(/\s+/g, ' ')
        .trim();
      const list = comments.get(key) ?? [];
      if (comment && !list.includes(comment)) comments.set(key, [...list, comment]);
    }
  }
  return comments;
}

const SAFE_MAX = Number.MAX_SAFE_INTEGER;
const code = (value: unknown): string => `\`${JSON.stringify(value)}\``;

function typeOf(s: JsonSchema): string {
  if (s.$ref) return 'step (as in `pipeline`)';
  if (s.const !== undefined) return code(s.const);
  if (s.enum) return s.enum.map(code).join(' | ');
  const variants = s.anyOf ?? s.oneOf;
  if (variants) return variants.map(typeOf).join(' or ');
  if (s.type === 'array') return `list of ${s.items ? typeOf(s.items) : 'values'}`;
  if (s.type === 'object') {
    if (s.properties) return `{ ${Object.keys(s.properties).join(', ')} }`;
    if (typeof s.additionalProperties === 'object') return `map of name → ${typeOf(s.additionalProperties)}`;
    return 'object';
  }
  return Array.isArray(s.type) ? s.type.join(' | ') : (s.type ?? 'any');
}

function constraints(s: JsonSchema): string {
  const parts: string[] = [];
  if (s.minimum !== undefined) parts.push(`≥ ${s.minimum}`);
  if (s.exclusiveMinimum !== undefined) parts.push(`> ${s.exclusiveMinimum}`);
  if (s.maximum !== undefined && s.maximum < SAFE_MAX) parts.push(`≤ ${s.maximum}`);
  if (s.minLength !== undefined && s.minLength > 0) parts.push('non-empty');
  if (s.minItems !== undefined) parts.push(`at least ${s.minItems}`);
  if (s.pattern !== undefined) parts.push(`pattern \`${s.pattern}\``);
  return parts.join(', ');
}

interface Row {
  path: string;
  type: string;
  required: boolean;
  default: string;
  rules: string;
  description: string;
}

/** What {@link rows} walks with. */
interface Walk {
  readonly comments: Map<string, string[]>;
  readonly defs: Record<string, JsonSchema>;
  /** $refs being expanded (a recursive schema is expanded once). */
  readonly expanding: Set<string>;
  readonly out: Row[];
}

function describe(path: string, comments: Map<string, string[]>): string {
  const override = OVERRIDES[path];
  if (override !== undefined) return override;
  if (STEP_NAME.test(path)) return 'A node name (describe(), metrics, dead-letter headers); generated when omitted.';
  // Rows of list items and map entries repeat their parent's key: the parent row has the text.
  if (path.endsWith('[]') || path.endsWith('.<name>')) return '';
  const key = /([A-Za-z][\w-]*)$/.exec(path)?.[1] ?? '';
  if (GENERIC.has(key)) return '';
  const found = comments.get(key) ?? [];
  return found.length === 1 ? (found[0] as string) : '';
}

/** One row per field, depth first; object variants of a union (`a or b`) each list their fields. */
function rows(s: JsonSchema, path: string, required: boolean, w: Walk): void {
  const ref = s.$ref?.replace('#/$defs/', '');
  const expand = ref !== undefined && !w.expanding.has(ref) && w.defs[ref] !== undefined;
  if (path !== '') {
    const shown = expand ? (w.defs[ref] as JsonSchema) : s;
    w.out.push({
      path,
      type: typeOf(shown),
      required,
      default: s.default === undefined ? '' : code(s.default),
      rules: constraints(shown),
      description: describe(path, w.comments),
    });
  }
  if (ref !== undefined) {
    if (!expand) return;
    w.expanding.add(ref);
    const inner: Row[] = [];
    rows({ ...(w.defs[ref] as JsonSchema), default: undefined }, path, required, { ...w, out: inner });
    // Children only: the row of `path` itself was written above.
    w.out.push(...(path === '' ? inner : inner.slice(1)));
    w.expanding.delete(ref);
    return;
  }
  for (const variant of s.anyOf ?? s.oneOf ?? []) if (variant.properties) children(variant, path, w);
  children(s, path, w);
}

function children(s: JsonSchema, path: string, w: Walk): void {
  if (s.properties) {
    for (const [key, child] of Object.entries(s.properties))
      rows(child, path ? `${path}.${key}` : key, (s.required ?? []).includes(key), w);
  }
  if (s.type === 'object' && typeof s.additionalProperties === 'object' && Object.keys(s.additionalProperties).length > 0) {
    const inner = s.additionalProperties;
    if (inner.properties || inner.anyOf || inner.$ref) rows({ ...inner, default: undefined }, `${path}.<name>`, false, w);
  }
  if (s.type === 'array' && s.items && (s.items.properties || s.items.anyOf || s.items.$ref))
    rows({ ...s.items, default: undefined }, `${path}[]`, false, w);
}

/** Keeps the first row of each path (a union's variants may list a field twice). */
function unique(all: Row[]): Row[] {
  const seen = new Set<string>();
  return all.filter((r) => (seen.has(r.path) ? false : (seen.add(r.path), true)));
}

const cell = (text: string): string => text.replaceAll('\n', ' ').replaceAll('|', '\\|');

/** Renders the whole reference (Markdown). */
export async function renderConfigReference(): Promise<string> {
  const lines = [
    '# Configuration reference',
    '',
    '<!-- Generated by scripts/gen-config-docs.ts from the zod schemas; do not edit by hand. -->',
    '',
    'Every file is YAML (or JSON). Unknown keys are errors, so a typo fails at load time with the',
    'file and the field named. Times are milliseconds unless the name says otherwise (`…Micros`).',
    'Regenerate with `node scripts/gen-config-docs.ts`; `test/cli-config-reference.test.ts` fails when this file is stale.',
    '',
  ];
  for (const section of SECTIONS) {
    const sources = await Promise.all(section.sources.map((f) => readFile(join(SRC, f), 'utf8')));
    const schema = z.toJSONSchema(section.schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
    const all: Row[] = [];
    rows(schema, '', true, { comments: keyComments(sources), defs: schema.$defs ?? {}, expanding: new Set(), out: all });
    lines.push(`## ${section.title}`, '', section.intro, '', '```yaml', section.example, '```', '');
    lines.push('| field | type | required | default | rules | description |', '|---|---|---|---|---|---|');
    for (const r of unique(all)) {
      lines.push(
        `| \`${r.path}\` | ${cell(r.type)} | ${r.required ? 'yes' : ''} | ${cell(r.default)} | ${cell(r.rules)} | ${cell(r.description)} |`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}
