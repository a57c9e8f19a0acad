/**
 * The module platform: a JavaScript or TypeScript module in the version folder, for models that
 * are code (business rules, heuristics, glue). Its default export is either a model object or a
 * factory that makes one:
 *
 * ```ts
 * export default {
 *   signature: { inputs: [{ name: 'amount', dtype: 'FP64', shape: [-1] }], outputs: [{ name: 'flag', dtype: 'BOOL', shape: [-1] }] },
 *   run(inputs) { ... return { flag: { dtype: 'BOOL', shape: [n], data } }; },
 *   close() { ... },                          // optional
 * };
 * // or: export default async (ctx: { dir, model, version, signal }) => ({ signature, run, close })
 * ```
 *
 * Inputs are checked against the signature before `run`, and what `run` returns is checked
 * against it after (dtype, shape, batch size), so a module bug surfaces as INTERNAL naming the
 * file rather than as a malformed response. TypeScript modules must be erasable TypeScript (Node
 * strips types). Node cannot unload ES modules: each load of a changed file adds one module to the
 * process for good (an unchanged file is imported once).
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { validateConfig } from '../config/load-config.ts';
import { InflowError } from '../errors.ts';
import { DType } from '../tensor/dtype.ts';
import { dataFits, elementCount, type Tensor } from '../tensor/tensor.ts';
import type { RunOptions, Servable, ServableContext, Signature } from './servable.ts';
import { checkInputs, describeSpec, selectOutputs, shapeFits, throwIfAborted } from './signature-check.ts';
import { versionFile } from './version-file.ts';

/** Options of the module platform. */
export const moduleOptionsSchema = z.strictObject({
  /** The module, relative to the version folder; default: the first of model.ts, model.mts, model.js, model.mjs that exists. */
  file: versionFile.optional(),
});
export type ModuleOptions = z.output<typeof moduleOptionsSchema>;

const DEFAULT_FILES = ['model.ts', 'model.mts', 'model.js', 'model.mjs'];

/** What a module's factory gets. */
export interface ModuleContext {
  dir: string;
  model: string;
  version: number;
  signal?: AbortSignal;
}

/** What a module's default export is (or its factory returns). */
export interface ModuleModel {
  signature: Signature;
  run(inputs: Readonly<Record<string, Tensor>>, options: RunOptions): Promise<Record<string, Tensor>> | Record<string, Tensor>;
  close?(): Promise<void> | void;
}

const specSchema = z.strictObject({
  name: z.string().min(1),
  dtype: z.enum(Object.keys(DType) as [DType, ...DType[]]),
  shape: z.array(z.int().min(-1)),
});
const signatureSchema = z.strictObject({
  inputs: z.array(specSchema),
  outputs: z.array(specSchema).min(1),
});

async function findModule(dir: string, file: string | undefined): Promise<string> {
  for (const candidate of file === undefined ? DEFAULT_FILES : [file]) {
    const path = resolve(dir, candidate);
    const info = await stat(path).catch(() => undefined);
    if (info?.isFile()) return path;
  }
  const tried = file === undefined ? DEFAULT_FILES.join(', ') : file;
  throw new InflowError('INVALID_CONFIG', `no module file in ${dir} (looked for ${tried})`);
}

function broken(path: string, message: string, cause?: unknown): InflowError {
  return new InflowError('FAILED_PRECONDITION', `module ${path}: ${message}`, cause === undefined ? {} : { cause });
}

/** Checks what `run` returned: every wanted output, of its spec's dtype and shape, consistent data, dim 0 = the batch. */
function checkOutputs(
  signature: Signature,
  result: unknown,
  wanted: readonly string[],
  rows: number | undefined,
  fail: (message: string) => never,
): Record<string, Tensor> {
  if (typeof result !== 'object' || result === null) fail(`run() returned ${String(result)}; expected an object of output tensors`);
  const outputs = result as Record<string, Tensor | undefined>;
  const checked: Record<string, Tensor> = {};
  for (const name of wanted) {
    const spec = signature.outputs.find((s) => s.name === name);
    const tensor = outputs[name];
    if (!spec || !tensor) fail(`run() returned no output "${name}"`);
    const shapeOk =
      Array.isArray(tensor.shape) &&
      shapeFits(spec.shape, tensor.shape) &&
      (rows === undefined || tensor.shape.length === 0 || tensor.shape[0] === rows);
    if (tensor.dtype !== spec.dtype || !shapeOk)
      fail(
        `output "${name}": expected ${describeSpec(spec)}${rows === undefined ? '' : ` with ${rows} rows`}, got ${describeSpec(tensor)}`,
      );
    if (!dataFits(tensor.dtype, tensor.data) || tensor.data.length !== elementCount(tensor.shape))
      fail(`output "${name}": its data does not fit ${describeSpec(tensor)}`);
    checked[name] = tensor;
  }
  return checked;
}

/** Imports the module and wraps its model as a servable. */
export async function loadModuleServable(context: ServableContext): Promise<Servable> {
  const options = moduleOptionsSchema.parse(context.options);
  const path = await findModule(context.dir, options.file);
  const where = `model "${context.model}" v${context.version}`;
  let exported: unknown;
  try {
    // The modification time in the URL makes a changed file load fresh (import() caches by URL).
    const { mtimeMs } = await stat(path);
    exported = ((await import(`${pathToFileURL(path).href}?mtime=${mtimeMs}`)) as { default?: unknown }).default;
  } catch (error) {
    throw broken(path, `cannot be imported: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`, error);
  }
  let model: unknown = exported;
  if (typeof exported === 'function') {
    const moduleContext: ModuleContext = {
      dir: context.dir,
      model: context.model,
      version: context.version,
      ...(context.signal ? { signal: context.signal } : {}),
    };
    try {
      model = await (exported as (ctx: ModuleContext) => unknown)(moduleContext);
    } catch (error) {
      const cause = InflowError.from(error, 'FAILED_PRECONDITION');
      throw new InflowError(cause.code, `module ${path}: its factory failed: ${cause.message}`, { cause: error });
    }
  }
  if (typeof model !== 'object' || model === null) {
    throw broken(
      path,
      `default export is ${model === undefined ? 'missing' : typeof model}; expected { signature, run, close? } or a function returning it`,
    );
  }
  const candidate = model as Partial<Record<keyof ModuleModel, unknown>>;
  if (typeof candidate.run !== 'function') throw broken(path, 'run is not a function; expected { signature, run(inputs), close?() }');
  if (candidate.close !== undefined && typeof candidate.close !== 'function') throw broken(path, 'close is not a function');
  const signature: Signature = validateConfig(signatureSchema, candidate.signature, `${path} (signature)`);
  for (const list of [signature.inputs, signature.outputs]) {
    const seen = new Set<string>();
    for (const spec of list) {
      if (seen.has(spec.name)) throw broken(path, `signature names "${spec.name}" twice`);
      seen.add(spec.name);
    }
  }
  const impl = model as ModuleModel;
  const fail = (message: string): never => {
    throw new InflowError('INTERNAL', `${where}: module ${path}: ${message}`);
  };
  return {
    signature,
    async run(inputs: Readonly<Record<string, Tensor>>, runOptions: RunOptions = {}): Promise<Record<string, Tensor>> {
      throwIfAborted(runOptions.signal, where);
      checkInputs(signature, inputs, where);
      const wanted = selectOutputs(signature, runOptions.outputs, where);
      const dims = Object.values(inputs).map((t) => t.shape[0]);
      const rows = dims.length > 0 && dims.every((d) => d !== undefined && d === dims[0]) ? dims[0] : undefined;
      let result: unknown;
      try {
        result = await impl.run(inputs, { ...runOptions, outputs: wanted });
      } catch (error) {
        if (error instanceof InflowError) throw error;
        throw InflowError.from(error).code === 'CANCELLED'
          ? InflowError.from(error)
          : new InflowError('INTERNAL', `${where}: module ${path} failed: ${String(error)}`, { cause: error });
      }
      return checkOutputs(signature, result, wanted, rows, fail);
    },
    async close(): Promise<void> {
      await impl.close?.();
    },
  };
}
