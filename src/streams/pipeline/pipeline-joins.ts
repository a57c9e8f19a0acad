/**
 * The tables and joins of a pipeline file: each table under `tables:` a global table (every
 * instance reads all partitions of its topic; see api/table.ts) or, with `copartitioned: true`, a
 * table partitioned like the source (api/copartitioned-table.ts), its `fields:`
 * the row schema a row must match (else a dead letter with the reason), and each `join` step a
 * lookup that puts the row (or some of its fields) at a path of the value.
 */
import { InflowError } from '../../errors.ts';
import type { AsyncSerde } from '../../kafka/serdes.ts';
import { readField } from '../api/field-mapping.ts';
import type { StreamRecord } from '../api/stream-record.ts';
import type { KStream, StreamsBuilder } from '../api/streams-builder.ts';
import { isKTable } from '../api/copartitioned-table.ts';
import type { KTable } from '../api/ktable.ts';
import type { GlobalKTable } from '../api/table.ts';
import type { JoinStepConfig, SerdeSpec, TableConfig } from './pipeline-config.ts';

type FieldType = NonNullable<TableConfig['fields']>[string];

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

/** The row check of a table's `fields:`: every field present with its type. */
export function compileRowSchema(table: string, fields: Readonly<Record<string, FieldType>>): (row: unknown) => void {
  const entries = Object.entries(fields);
  const is: Record<FieldType, (v: unknown) => boolean> = {
    string: (v) => typeof v === 'string',
    number: (v) => typeof v === 'number' && Number.isFinite(v),
    integer: (v) => Number.isInteger(v),
    boolean: (v) => typeof v === 'boolean',
  };
  return (row) => {
    if (row === null || typeof row !== 'object' || Array.isArray(row)) {
      throw new InflowError('INVALID_ARGUMENT', `table "${table}": the row is ${typeOf(row)}; expected a JSON object`);
    }
    for (const [field, type] of entries) {
      const v = readField(row, field);
      if (!is[type](v)) {
        throw new InflowError(
          'INVALID_ARGUMENT',
          `table "${table}": field "${field}" is ${v === undefined ? 'missing' : typeOf(v)}; expected ${type === 'integer' ? 'an integer' : `a ${type}`} (tables.${table}.fields)`,
        );
      }
    }
  };
}

/** Makes a topic's key or value serde from its spec (the pipeline's serde factory). */
export type TableSerdeFactory = (spec: SerdeSpec, topic: string, isKey: boolean) => AsyncSerde<unknown>;

/** A table of the pipeline: global, or co-partitioned with the source. */
export type PipelineTable = GlobalKTable<unknown, unknown> | KTable<unknown, unknown>;

/** Declares the tables the join steps use on `builder` (a co-partitioned one adds 2 nodes). */
export function declareTables(
  builder: StreamsBuilder,
  tables: Readonly<Record<string, TableConfig>>,
  used: ReadonlySet<string>,
  serdeFor: TableSerdeFactory,
): Map<string, PipelineTable> {
  const out = new Map<string, PipelineTable>();
  for (const [name, t] of Object.entries(tables)) {
    if (!used.has(name)) continue;
    const validate = t.fields ? compileRowSchema(name, t.fields) : undefined;
    const serdes = { key: serdeFor(t.key ?? 'string', t.topic, true), value: serdeFor(t.value ?? 'json', t.topic, false) };
    const options = { name, ...(validate ? { validate } : {}) };
    out.set(name, t.copartitioned ? builder.table(t.topic, serdes, options) : builder.globalTable(t.topic, serdes, options));
  }
  return out;
}

/** The lookup key of a record: a value field (numbers and booleans as text, like the string keys of a topic), or the record key. */
function keyOf(j: JoinStepConfig, textKeys: boolean): (r: StreamRecord) => unknown {
  const path = j.key;
  if (path === undefined) return (r) => (Buffer.isBuffer(r.key) && textKeys ? r.key.toString('utf8') : r.key);
  return (r) => {
    const v = readField(r.value, path);
    return textKeys && (typeof v === 'number' || typeof v === 'boolean') ? String(v) : v;
  };
}

/** Sets a dotted path in a copy of `value` (the input's objects are not mutated). */
function withField(value: Record<string, unknown>, path: string, v: unknown): Record<string, unknown> {
  const [head, ...rest] = path.split('.');
  const out = { ...value };
  if (rest.length === 0) out[head as string] = v;
  else {
    const inner = out[head as string];
    out[head as string] = withField(
      inner !== null && typeof inner === 'object' && !Array.isArray(inner) ? (inner as Record<string, unknown>) : {},
      rest.join('.'),
      v,
    );
  }
  return out;
}

/** Adds a join step after `stream`. */
export function addJoin(
  stream: KStream<unknown, unknown>,
  j: JoinStepConfig,
  table: PipelineTable,
  tableKeySpec: SerdeSpec | undefined,
): KStream<unknown, unknown> {
  const as: string = j.as ?? j.table ?? 'joined';
  const pick = j.fields;
  const key = keyOf(j, (tableKeySpec ?? 'string') === 'string');
  const joiner = (value: unknown, row: unknown): unknown => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new InflowError('INVALID_ARGUMENT', `join "${j.table}": the record value is ${typeOf(value)}; expected a JSON object`);
    }
    if (row === undefined) return value;
    const part: unknown = pick
      ? Object.fromEntries(pick.map((f): [string, unknown] => [f, readField(row, f)]).filter(([, v]) => v !== undefined))
      : row;
    return withField(value as Record<string, unknown>, as, part);
  };
  const options = j.name !== undefined ? { name: j.name } : {};
  if (isKTable(table)) return j.type === 'left' ? stream.leftJoin(table, joiner, options) : stream.join(table, joiner, options);
  return j.type === 'left' ? stream.leftJoin(table, { key, joiner }, options) : stream.join(table, { key, joiner }, options);
}

/**
 * Adds a windowed stream-stream join step: the other record's value (or some fields) goes at `as`
 * (default `joined`); a left or outer join passes a record without a partner on unchanged, and an
 * outer join passes the other stream's unmatched record on as `{ <as>: value }`.
 */
export function addStreamJoin(
  stream: KStream<unknown, unknown>,
  other: KStream<unknown, unknown>,
  j: JoinStepConfig,
  name: string,
): KStream<unknown, unknown> {
  const as = j.as ?? 'joined';
  const pick = j.fields;
  const joiner = (thisValue: unknown, otherValue: unknown): unknown => {
    // An outer join's record of the other stream without a partner: it becomes `{ <as>: … }`.
    const value = thisValue === undefined ? {} : thisValue;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new InflowError('INVALID_ARGUMENT', `join "${name}": the record value is ${typeOf(value)}; expected a JSON object`);
    }
    if (otherValue === undefined) return value;
    const part: unknown = pick
      ? Object.fromEntries(pick.map((f): [string, unknown] => [f, readField(otherValue, f)]).filter(([, v]) => v !== undefined))
      : otherValue;
    return withField(value as Record<string, unknown>, as, part);
  };
  const options = { windowMs: j.windowMs ?? 0, ...(j.graceMs !== undefined ? { graceMs: j.graceMs } : {}), name };
  if (j.type === 'left') return stream.windowedLeftJoin(other, joiner, options);
  if (j.type === 'outer') return stream.windowedOuterJoin(other, joiner, options);
  return stream.windowedJoin(other, joiner, options);
}
