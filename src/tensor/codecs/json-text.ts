/**
 * JSON text helpers shared by the JSON codecs: a parser that also takes the bare `NaN`,
 * `Infinity` and `-Infinity` tokens TF Serving reads and writes, and number formatting that
 * writes floats the way TF Serving does (shortest text that round-trips, `.0` on whole numbers,
 * bare non-finite tokens).
 */
import { InflowError } from '../../errors.ts';

const utf8 = new TextDecoder();

/**
 * Number literal that stands for a bare `NaN` token after {@link parseJsonText} rewrote the text.
 * JSON has no NaN literal, so the reviver recognises this exact source text. A request that
 * itself contains this literal (a zero written with a 4-digit negative exponent and three
 * zero decimals) would read as NaN: an accepted, practically impossible collision.
 */
const NAN_SENTINEL = '-0.000e-9999';

/**
 * Parses JSON text (a string or UTF-8 bytes). Accepts the non-standard tokens `NaN`,
 * `Infinity` and `-Infinity` outside strings, as TF Serving (rapidjson with
 * kParseNanAndInfFlag) does. Throws INVALID_ARGUMENT `JSON Parse error: …`.
 *
 * Fast path: plain `JSON.parse`. Only text that fails to parse and contains one of the tokens
 * is rewritten (one copy of the text) and parsed again.
 */
export function parseJsonText(text: string | Uint8Array): unknown {
  const source = typeof text === 'string' ? text : utf8.decode(text);
  try {
    return JSON.parse(source);
  } catch (error) {
    if (!/NaN|Infinity/.test(source)) throw parseError(error);
    const { rewritten, hasNaN } = rewriteNonFinite(source);
    try {
      if (!hasNaN) return JSON.parse(rewritten);
      return JSON.parse(rewritten, (_key, value: unknown, context?: { source?: string }) =>
        context?.source === NAN_SENTINEL ? Number.NaN : value,
      );
    } catch (second) {
      throw parseError(second);
    }
  }
}

function parseError(error: unknown): InflowError {
  const message = error instanceof Error ? error.message : String(error);
  return new InflowError('INVALID_ARGUMENT', `JSON Parse error: ${message}`, { cause: error });
}

/** Replaces bare NaN / Infinity tokens (outside strings) with number literals JSON.parse accepts. */
function rewriteNonFinite(source: string): { rewritten: string; hasNaN: boolean } {
  const parts: string[] = [];
  let hasNaN = false;
  let start = 0;
  let inString = false;
  for (let i = 0; i < source.length; i++) {
    const c = source.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x4e && source.startsWith('NaN', i)) {
      parts.push(source.slice(start, i), NAN_SENTINEL);
      hasNaN = true;
      start = i + 3;
      i += 2;
    } else if (c === 0x49 && source.startsWith('Infinity', i)) {
      // 1e999 overflows to Infinity in JSON.parse; a preceding '-' stays and gives -Infinity.
      parts.push(source.slice(start, i), '1e999');
      start = i + 8;
      i += 7;
    }
  }
  parts.push(source.slice(start));
  return { rewritten: parts.join(''), hasNaN };
}

/** Appends `.0` to a finite number's text when it has neither a fraction nor an exponent (TF style). */
function withPoint(text: string): string {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e || c === 0x65) return text; // '.' or 'e'
  }
  return `${text}.0`;
}

function nonFinite(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  return value > 0 ? 'Infinity' : '-Infinity';
}

/** Text of an FP64 element: the shortest decimal that reads back as the same double. */
export function formatFloat64(value: number): string {
  if (!Number.isFinite(value)) return nonFinite(value);
  return withPoint(Object.is(value, -0) ? '-0' : String(value));
}

/** Drops trailing zeros of a toPrecision() mantissa ("2.50000e+6" → "2.5e+6"). */
function trimPrecision(text: string): string {
  const e = text.indexOf('e');
  const mantissa = e < 0 ? text : text.slice(0, e);
  if (!mantissa.includes('.')) return text;
  let end = mantissa.length;
  while (mantissa.charCodeAt(end - 1) === 0x30) end--;
  if (mantissa.charCodeAt(end - 1) === 0x2e) end--;
  return mantissa.slice(0, end) + (e < 0 ? '' : text.slice(e));
}

/**
 * Text of an FP32 element as TF Serving writes it: 6 significant digits (`%g`) when they read back
 * as the same float32, else 9 (`max_digits10`, always exact). So `0.1f` is written `0.1` rather
 * than its double expansion `0.10000000149011612`. At most two formatting tries per element.
 */
export function formatFloat32(value: number): string {
  if (!Number.isFinite(value)) return nonFinite(value);
  // Whole numbers below 10^6 print as integers under %g; integer-to-string is cheap. (Number to
  // shortest string in general costs ~3x a toPrecision call, so it is avoided here.)
  if (Number.isInteger(value) && value > -1e6 && value < 1e6) return Object.is(value, -0) ? '-0.0' : `${value}.0`;
  const short = value.toPrecision(6);
  if (Math.fround(Number(short)) === value) return withPoint(trimPrecision(short));
  return withPoint(trimPrecision(value.toPrecision(9)));
}
