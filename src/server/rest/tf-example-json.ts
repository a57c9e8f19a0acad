/**
 * TF Serving REST's `:classify` / `:regress` bodies (reference (a)): the request's `examples`
 * (and optional `context`) as tf.Examples with TF's JSON → Feature rules, and the
 * `{"results": …}` responses.
 *
 * JSON → Feature, as TF Serving: a number written with a fraction or an exponent (`1.0`, `1e3`) or
 * a bare `NaN`/`Infinity` token → float_list; an integer literal (`1`) → int64_list (exact up to
 * ±2^63); `true`/`false` → int64_list 1/0; a string → bytes_list (UTF-8); `{"b64": …}` →
 * bytes_list (decoded). A list holds values of one kind, except that integer literals among
 * floats make a float_list and among booleans an int64_list; nested lists and null are errors.
 */
import { InflowError } from '../../errors.ts';
import { decodeBase64, formatFloat32, isB64Object, parseJsonText } from '../../tensor/codecs/index.ts';
import { parseInt64, type TfExample, type TfFeature, withContext } from '../tf-example.ts';
import type { TfClass } from '../tf-example-results.ts';

/** A JSON number with its source text (so `1.0` and `1` stay apart). */
class JsonNumber {
  readonly value: number;
  readonly text: string;
  constructor(value: number, text: string) {
    this.value = value;
    this.text = text;
  }
  get isFloat(): boolean {
    return !Number.isFinite(this.value) || /[.eE]/.test(this.text);
  }
}

/**
 * Parses JSON text keeping number literals as {@link JsonNumber}. Text with bare NaN/Infinity tokens
 * (which JSON.parse rejects) goes through parseJsonText, and there a number's kind follows its value.
 */
function parseWithNumbers(text: Uint8Array | string): unknown {
  const source = typeof text === 'string' ? text : new TextDecoder().decode(text);
  try {
    return JSON.parse(source, (_key, value: unknown, context?: { source?: string }) =>
      typeof value === 'number' ? new JsonNumber(value, context?.source ?? String(value)) : value,
    );
  } catch {
    return parseJsonText(source); // throws TF's "JSON Parse error: …" unless only the tokens were the problem
  }
}

/** A `:classify` / `:regress` request body. */
export interface TfExampleRequest {
  /** `signature_name`, or "" when absent. */
  signatureName: string;
  /** The Examples with the context merged in. */
  examples: TfExample[];
}

const utf8 = new TextEncoder();

/** The kind of one JSON feature value: `int` is an integer literal (int64, or float among floats). */
type ValueKind = 'float' | 'int' | 'bool' | 'bytes';

function kindOf(value: unknown): ValueKind | undefined {
  if (value instanceof JsonNumber) return value.isFloat ? 'float' : 'int';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'string' || isB64Object(value)) return 'bytes';
  return undefined;
}

const listOf = { float: 'float', int: 'int64', bool: 'int64', bytes: 'bytes' } as const;

/** The list kind of a feature's values; INVALID_ARGUMENT (TF's text) when they do not fit one. */
function featureKind(name: string, values: readonly unknown[]): TfFeature['kind'] {
  const kinds = new Set<ValueKind>();
  for (const value of values) {
    const kind = kindOf(value);
    if (kind === undefined) {
      const expecting = values[0] === value ? 'a number, boolean, string or {"b64": …}' : listOf[[...kinds][0] as ValueKind];
      throw new InflowError(
        'INVALID_ARGUMENT',
        `Unexpected element type in feature: ${name} expecting type: ${expecting} (nested lists, objects and null are not feature values)`,
      );
    }
    kinds.add(kind);
  }
  if (kinds.size === 1) return listOf[[...kinds][0] as ValueKind];
  if (kinds.size === 2 && kinds.has('int') && (kinds.has('float') || kinds.has('bool'))) return kinds.has('float') ? 'float' : 'int64';
  throw new InflowError(
    'INVALID_ARGUMENT',
    `Unexpected element type in feature: ${name} expecting type: ${listOf[kindOf(values[0]) as ValueKind]} (a list holds numbers, booleans or strings, not a mix)`,
  );
}

const numberOf = (value: unknown): number => (value instanceof JsonNumber ? value.value : (value as number));

function feature(name: string, raw: unknown): TfFeature {
  const values = Array.isArray(raw) ? raw : [raw];
  if (values.length === 0) {
    throw new InflowError('INVALID_ARGUMENT', `feature "${name}" is an empty list; expected at least one value`);
  }
  const kind = featureKind(name, values);
  if (kind === 'bytes') {
    return {
      kind,
      values: values.map((v) => (typeof v === 'string' ? utf8.encode(v) : decodeBase64((v as { b64: string }).b64, name))),
    };
  }
  if (kind === 'float') return { kind, values: values.map(numberOf) };
  return {
    kind,
    values: values.map((v) =>
      typeof v === 'boolean' ? BigInt(v) : parseInt64(v instanceof JsonNumber ? v.text : (v as number), `feature "${name}"`),
    ),
  };
}

function example(value: unknown, where: string): TfExample {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InflowError('INVALID_ARGUMENT', `${where} is not a JSON object; expected {"<feature>": value or list, …}`);
  }
  return new Map(Object.entries(value).map(([name, raw]) => [name, feature(name, raw)]));
}

/** Decodes a `:classify` / `:regress` body: `{"signature_name"?, "context"?, "examples": [{…}, …]}`. */
export function decodeTfExampleRequest(text: Uint8Array | string): TfExampleRequest {
  const body = parseWithNumbers(text);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InflowError('INVALID_ARGUMENT', 'Request body is not a JSON object; expected {"examples": [{…}, …]}');
  }
  const { signature_name: signature, context, examples } = body as Record<string, unknown>;
  if (signature !== undefined && typeof signature !== 'string') {
    throw new InflowError('INVALID_ARGUMENT', "'signature_name' key must be a string value.");
  }
  if (!Array.isArray(examples)) {
    throw new InflowError('INVALID_ARGUMENT', 'Missing \'examples\' key; expected "examples": a non-empty list of objects');
  }
  if (examples.length === 0) throw new InflowError('INVALID_ARGUMENT', "'examples' is an empty list; expected at least one example");
  const list = examples.map((e, i) => example(e, `examples[${i}]`));
  const merged = withContext(list, context === undefined ? undefined : example(context, "'context'"));
  return { signatureName: signature ?? '', examples: merged };
}

/** `{"results": [[["label", score], …], …]}`: one list of (label, score) pairs per Example. */
export function encodeTfClassifyResponse(classifications: readonly (readonly TfClass[])[]): string {
  const rows = classifications.map(
    (classes) => `[${classes.map((c) => `[${JSON.stringify(c.label)}, ${formatFloat32(Math.fround(c.score))}]`).join(', ')}]`,
  );
  return `{\n  "results": [${rows.join(', ')}]\n}`;
}

/** `{"results": [v, …]}`: one value per Example (float, as TF's Regression.value). */
export function encodeTfRegressResponse(values: readonly number[]): string {
  return `{\n  "results": [${values.map((v) => formatFloat32(Math.fround(v))).join(', ')}]\n}`;
}
