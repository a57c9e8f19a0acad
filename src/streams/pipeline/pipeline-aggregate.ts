/**
 * The `aggregate` step of pipeline files: group (by fields of the value, through a repartition
 * topic, or by the record key), optionally window on event time, and compute named
 * aggregations — the YAML form of `groupBy(...).windowedBy(...).aggregate(...)`:
 *
 * ```yaml
 * - aggregate:
 *     name: card-10m
 *     groupBy: card                 # a field or a list of fields; omitted: the record key
 *     window: { tumbling: 10m, grace: 1m }   # or hopping + advance, sliding, session; omitted: all time
 *     time: ts                      # event-time field (ms or ISO-8601); omitted: the record timestamp
 *     emit: update                  # or final (each window once, when it closes)
 *     late: dlq                     # or drop
 *     aggregations: { n: count, total: { sum: amount }, avg: { mean: amount }, top: { max: amount } }
 * ```
 * `{ diff: field }` is the last value of a numeric field minus the one before it in the window
 * (pandas `diff()`; null with fewer than two): with `diff: ts`, the time since the key's previous
 * event. Values are added in arrival order — the own window of a sliding window folds its
 * records in event-time order.
 * Each update goes on as a JSON value `{ key, windowStart, windowEnd, <aggregations> }` keyed by
 * the group key as a string (JSON text for composite keys).
 */
import { z } from 'zod';
import { InflowError } from '../../errors.ts';
import { readField } from '../api/field-mapping.ts';
import type { KStream } from '../api/streams-builder.ts';
import type { WindowSpec } from '../api/windows.ts';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration: whole ms, or a string like `500ms`, `10s`, `5m`, `1h`, `1d`. */
const DURATION_ERROR = 'expected a duration: whole milliseconds, or a number with ms, s, m, h or d (e.g. 10s, 5m)';
const duration = z.union([z.number().int().min(0), z.string().regex(/^\d+(ms|s|m|h|d)$/, DURATION_ERROR)], { error: DURATION_ERROR });

function ms(d: number | string): number {
  if (typeof d === 'number') return d;
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(d) as RegExpExecArray;
  return Number(m[1]) * (UNITS[m[2] as string] as number);
}

const field = z.string().min(1);
const aggregationSchema = z.union(
  [
    z.literal('count'),
    z.strictObject({ sum: field }),
    z.strictObject({ mean: field }),
    z.strictObject({ min: field }),
    z.strictObject({ max: field }),
    z.strictObject({ last: field }),
    z.strictObject({ diff: field }),
  ],
  { error: 'expected count, or one of { sum | mean | min | max | last | diff: <field> }' },
);

const WINDOW_TYPES = ['tumbling', 'hopping', 'sliding', 'session'] as const;

const windowSchema = z
  .strictObject({
    tumbling: duration.optional(),
    /** With `advance`. */
    hopping: duration.optional(),
    advance: duration.optional(),
    sliding: duration.optional(),
    /** The gap that ends a session. */
    session: duration.optional(),
    grace: duration.optional(),
  })
  .superRefine((w, ctx) => {
    const types = WINDOW_TYPES.filter((t) => w[t] !== undefined);
    if (types.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: `a window is exactly one of ${WINDOW_TYPES.join(', ')}; got ${types.join(' and ') || 'none'}`,
      });
    }
    if ((w.hopping !== undefined) !== (w.advance !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['advance'], message: 'a hopping window needs advance (and only a hopping window has one)' });
    }
  });

export const aggregateSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,100}$/, 'expected 1-100 characters of A-Z a-z 0-9 . _ -')
    .optional(),
  /** Value field(s) to group by; omitted: the record key. */
  groupBy: z.union([field, z.array(field).min(1)]).optional(),
  window: windowSchema.optional(),
  /** Event-time field (ms since the epoch or ISO-8601); omitted: the record timestamp. */
  time: field.optional(),
  emit: z.enum(['update', 'final']).optional(),
  late: z.enum(['dlq', 'drop']).optional(),
  /** Store name; default `<name>-store`. */
  store: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,200}$/)
    .optional(),
  aggregations: z.record(z.string().min(1), aggregationSchema).refine((a) => Object.keys(a).length > 0, 'give at least one aggregation'),
});

export type AggregateStepConfig = z.output<typeof aggregateSchema>;

/** Nodes the step adds (for the pipeline's automatic node names). */
export function aggregateNodeCount(step: AggregateStepConfig): number {
  // [map, repartition sink, repartition source] + aggregation + output formatting.
  return (step.groupBy === undefined ? 0 : 3) + 2;
}

/** Whether the step reads fields of the value (then the values must be JSON). */
export function aggregateReadsFields(step: AggregateStepConfig): boolean {
  return step.groupBy !== undefined || step.time !== undefined || Object.values(step.aggregations).some((a) => a !== 'count');
}

function windowSpec(w: NonNullable<AggregateStepConfig['window']>): WindowSpec {
  const graceMs = w.grace === undefined ? 0 : ms(w.grace);
  if (w.tumbling !== undefined) return { type: 'tumbling', sizeMs: ms(w.tumbling), graceMs };
  if (w.hopping !== undefined) return { type: 'hopping', sizeMs: ms(w.hopping), advanceMs: ms(w.advance ?? 0), graceMs };
  if (w.sliding !== undefined) return { type: 'sliding', sizeMs: ms(w.sliding), graceMs };
  return { type: 'session', gapMs: ms(w.session ?? 0), graceMs };
}

type Acc = Record<string, unknown>;

function numberAt(value: unknown, path: string, name: string): number | undefined {
  const v = readField(value, path);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      `aggregation "${name}" reads field "${path}": expected a finite number, got ${JSON.stringify(v)?.slice(0, 64)}`,
    );
  }
  return v;
}

/** The accumulators of the aggregations: count → n, sum → s, mean → [s, n], diff → [previous, last], min/max/last → value. */
function compile(aggs: AggregateStepConfig['aggregations']) {
  const entries = Object.entries(aggs);
  const init = (): Acc =>
    Object.fromEntries(
      entries.map(([n, a]) => [n, a === 'count' ? 0 : 'mean' in a ? [0, 0] : 'diff' in a ? [null, null] : 'sum' in a ? 0 : null]),
    );
  // One step per aggregation, chosen once here, not per record (add runs on every record).
  const steps = entries.map(([n, a]): ((acc: Acc, value: unknown, out: Acc) => void) => {
    if (a === 'count') return (acc, _value, out) => void (out[n] = (acc[n] as number) + 1);
    if ('last' in a) return (acc, value, out) => void (out[n] = readField(value, a.last) ?? acc[n]);
    if ('diff' in a)
      return (acc, value, out) => {
        const x = numberAt(value, a.diff, n);
        if (x !== undefined) out[n] = [(acc[n] as (number | null)[])[1] ?? null, x];
      };
    const path = 'sum' in a ? a.sum : 'mean' in a ? a.mean : 'min' in a ? a.min : a.max;
    const fold: (cur: unknown, x: number) => unknown =
      'sum' in a
        ? (cur, x) => (cur as number) + x
        : 'mean' in a
          ? (cur, x) => [((cur as number[])[0] as number) + x, ((cur as number[])[1] as number) + 1]
          : 'min' in a
            ? (cur, x) => (cur === null ? x : Math.min(cur as number, x))
            : (cur, x) => (cur === null ? x : Math.max(cur as number, x));
    return (acc, value, out) => {
      const x = numberAt(value, path, n);
      if (x !== undefined) out[n] = fold(acc[n], x);
    };
  });
  const add = (acc: Acc, value: unknown): Acc => {
    const out: Acc = { ...acc };
    for (const step of steps) step(acc, value, out);
    return out;
  };
  const merge = (x: Acc, y: Acc): Acc => {
    const out: Acc = {};
    for (const [n, a] of entries) {
      const [p, q] = [x[n], y[n]];
      if (a === 'count' || 'sum' in a) out[n] = (p as number) + (q as number);
      else if ('mean' in a)
        out[n] = [
          ((p as number[])[0] as number) + ((q as number[])[0] as number),
          ((p as number[])[1] as number) + ((q as number[])[1] as number),
        ];
      else if ('last' in a) out[n] = q ?? p;
      else if ('diff' in a) {
        // y holds the later values: its own pair when it has two, else x's last before y's only one.
        const [[, xLast], [yPrev, yLast]] = [p as (number | null)[], q as (number | null)[]];
        out[n] = yLast === null ? p : yPrev !== null ? q : [xLast ?? null, yLast];
      } else if (p === null || q === null) out[n] = p ?? q;
      else out[n] = 'min' in a ? Math.min(p as number, q as number) : Math.max(p as number, q as number);
    }
    return out;
  };
  const shown = entries.map(([n, a]): ((acc: Acc) => unknown) => {
    if (a !== 'count' && 'mean' in a)
      return (acc) => {
        const [s, c] = acc[n] as [number, number];
        return c === 0 ? null : s / c;
      };
    if (a !== 'count' && 'diff' in a)
      return (acc) => {
        const [previous, last] = acc[n] as [number | null, number | null];
        return previous === null || last === null ? null : last - previous;
      };
    return (acc) => acc[n] ?? null;
  });
  const names = entries.map(([n]) => n);
  const result = (acc: Acc): Acc => {
    const out: Acc = {};
    for (let i = 0; i < names.length; i++) out[names[i] as string] = (shown[i] as (acc: Acc) => unknown)(acc);
    return out;
  };
  return { init, add, merge, result };
}

const keyText = (key: unknown): string => (typeof key === 'string' ? key : JSON.stringify(key));

/** Adds the step after `stream`; returns the stream of its updates. */
export function addAggregate(stream: KStream<unknown, unknown>, step: AggregateStepConfig, name: string): KStream<unknown, unknown> {
  const { init, add, merge, result } = compile(step.aggregations);
  const store = step.store ?? `${name}-store`;
  const by = step.groupBy;
  const grouped =
    by === undefined
      ? stream.groupByKey({ name })
      : stream.groupBy((r) => (typeof by === 'string' ? (readField(r.value, by) ?? null) : by.map((f) => readField(r.value, f) ?? null)), {
          name,
        });
  const format = { name: `${name}-result` };
  if (step.window === undefined) {
    return grouped
      .aggregate(init, (acc, v) => add(acc, v), { name: `${name}-aggregate`, store })
      .toStream()
      .map((r) => ({ key: keyText(r.key), value: { key: r.key, ...result(r.value) } }), format);
  }
  return grouped
    .windowedBy(windowSpec(step.window), {
      ...(step.time !== undefined ? { time: { field: step.time } } : {}),
      ...(step.emit !== undefined ? { emit: step.emit } : {}),
      ...(step.late !== undefined ? { late: step.late } : {}),
    })
    .aggregate(init, (acc, v) => add(acc, v), { name: `${name}-aggregate`, store, merge })
    .toStream()
    .map((r) => {
      const w = r.key;
      const value = r.value === null ? null : { key: w.key, windowStart: w.start, windowEnd: w.end, ...result(r.value) };
      return { key: keyText(w.key), value };
    }, format);
}
