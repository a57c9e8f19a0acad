/**
 * Loading and validating configuration: every config file format has one zod schema that
 * gives its type, its defaults and its validation. Unknown keys are errors (schemas are
 * strict objects), and every message names the file and the field.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { InflowError } from '../errors.ts';

/** Formats one zod issue as `field.path: message`. */
function formatIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.length === 0 ? '(root)' : issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => `"${k}"`).join(', ');
    return `${path}: unknown key${issue.keys.length > 1 ? 's' : ''} ${keys} (check the spelling; unknown keys are not ignored)`;
  }
  return `${path}: ${issue.message}`;
}

/**
 * Validates `value` against `schema` and returns the typed result with defaults applied.
 * @param source what the value came from (a file path, "flags", "environment"), named in errors.
 * @throws InflowError INVALID_CONFIG listing every problem, one per line.
 */
export function validateConfig<S extends z.ZodType>(schema: S, value: unknown, source: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => `  ${formatIssue(issue)}`);
  throw new InflowError('INVALID_CONFIG', `invalid configuration in ${source}:\n${lines.join('\n')}`, {
    details: { source, issues: result.error.issues.map((i) => ({ path: i.path.map(String), message: i.message })) },
  });
}

/** Parses YAML (a superset of JSON) text; syntax errors name the source, line and column. */
export function parseConfigText(text: string, source: string): unknown {
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (error) {
    if (error instanceof YAMLParseError) {
      const where = error.linePos?.[0] ? `:${error.linePos[0].line}:${error.linePos[0].col}` : '';
      throw new InflowError('INVALID_CONFIG', `cannot parse ${source}${where}: ${error.message.split('\n')[0]}`, {
        cause: error,
      });
    }
    throw InflowError.from(error, 'INVALID_CONFIG');
  }
}

/** Reads, parses (YAML or JSON) and validates a config file. */
export async function loadConfigFile<S extends z.ZodType>(schema: S, path: string): Promise<z.output<S>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InflowError(
      'INVALID_CONFIG',
      code === 'ENOENT' ? `config file ${path} does not exist` : `cannot read config file ${path}: ${String(code)}`,
      { cause: error },
    );
  }
  return validateConfig(schema, parseConfigText(text, path), path);
}
