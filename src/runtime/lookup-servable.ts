/**
 * The lookup platform: vocabulary and embedding tables read from files in the version folder,
 * applied element by element (so over the whole batch at once).
 *
 * Table kinds and file formats:
 * - `string-to-id`: a UTF-8 text file, one entry per line, line i (0-based) is id i; a final
 *   newline is ignored, duplicates are an error. BYTES in → INT64 (or INT32) out, same shape;
 *   an unknown string gives `default`, or fails the call when there is none.
 * - `id-to-string`: the same file format. INT64/INT32 in → BYTES out; an id outside the file gives
 *   `default`, or fails the call.
 * - `embedding`: FP32 [vocab, dim], either `.json` (an array of `vocab` arrays of `dim` numbers) or
 *   `.npy` (NumPy's format as `np.save` writes it: little-endian `<f4`, C order, 2-D). INT64/INT32
 *   [..] in → FP32 [.., dim] out; an id outside the table gives a zero vector with
 *   `default: zeros`, or fails the call.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { z } from 'zod';
import { InflowError } from '../errors.ts';
import type { DType } from '../tensor/dtype.ts';
import type { Tensor } from '../tensor/tensor.ts';
import type { RunOptions, Servable, ServableContext, Signature, TensorSpec } from './servable.ts';
import { checkInputs, selectOutputs, throwIfAborted } from './signature-check.ts';
import { versionFile } from './version-file.ts';

const name = z.string().min(1);
const shape = z.array(z.int().min(-1)).min(1).default([-1]);
const idType = z.enum(['INT64', 'INT32']).default('INT64');

/** Options of the lookup platform. */
export const lookupOptionsSchema = z.strictObject({
  tables: z
    .array(
      z.discriminatedUnion('kind', [
        z.strictObject({
          kind: z.literal('string-to-id'),
          file: versionFile,
          input: name,
          output: name,
          shape,
          dtype: idType,
          default: z.int().optional(),
        }),
        z.strictObject({
          kind: z.literal('id-to-string'),
          file: versionFile,
          input: name,
          output: name,
          shape,
          dtype: idType,
          default: z.string().optional(),
        }),
        z.strictObject({
          kind: z.literal('embedding'),
          file: versionFile,
          input: name,
          output: name,
          shape,
          dtype: idType,
          default: z.literal('zeros').optional(),
        }),
      ]),
    )
    .min(1),
});
export type LookupOptions = z.output<typeof lookupOptionsSchema>;
type TableOptions = LookupOptions['tables'][number];

/** One loaded table: its specs and its per-call function. */
interface Table {
  input: TensorSpec;
  output: TensorSpec;
  apply(tensor: Tensor): Tensor;
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new InflowError(
      'INVALID_CONFIG',
      `lookup table ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      { cause: error },
    );
  }
}

/** Lines of a vocabulary file (a final newline does not start another entry; CRLF is accepted). */
async function readLines(path: string): Promise<string[]> {
  const text = await readText(path);
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

const utf8 = new TextDecoder();
const encoder = new TextEncoder();

function ids(tensor: Tensor): ArrayLike<number | bigint> {
  return tensor.data as BigInt64Array | Int32Array;
}

function unknown(where: string, what: string): never {
  throw new InflowError('INVALID_ARGUMENT', `${where}: ${what}, and the table has no default`);
}

async function stringToId(t: Extract<TableOptions, { kind: 'string-to-id' }>, path: string, where: string): Promise<Table['apply']> {
  const index = new Map<string, number>();
  for (const [i, line] of (await readLines(path)).entries()) {
    if (index.has(line))
      throw new InflowError(
        'INVALID_CONFIG',
        `lookup table ${path}: line ${i + 1} repeats "${line}" (line ${(index.get(line) ?? 0) + 1}); entries must be unique`,
      );
    index.set(line, i);
  }
  return (tensor) => {
    const items = tensor.data as Uint8Array[];
    const out = t.dtype === 'INT64' ? new BigInt64Array(items.length) : new Int32Array(items.length);
    for (const [i, item] of items.entries()) {
      const key = utf8.decode(item);
      const id = index.get(key) ?? t.default ?? unknown(where, `"${key}" is not in ${t.file}`);
      if (out instanceof BigInt64Array) out[i] = BigInt(id);
      else out[i] = id;
    }
    return { dtype: t.dtype, shape: tensor.shape, data: out };
  };
}

async function idToString(t: Extract<TableOptions, { kind: 'id-to-string' }>, path: string, where: string): Promise<Table['apply']> {
  const entries = (await readLines(path)).map((line) => encoder.encode(line));
  const fallback = t.default === undefined ? undefined : encoder.encode(t.default);
  return (tensor) => {
    const source = ids(tensor);
    const out: Uint8Array[] = new Array<Uint8Array>(source.length);
    for (let i = 0; i < source.length; i++) {
      const id = Number(source[i]);
      out[i] = entries[id] ?? fallback ?? unknown(where, `id ${id} is outside ${t.file} (ids 0..${entries.length - 1})`);
    }
    return { dtype: 'BYTES', shape: tensor.shape, data: out };
  };
}

/** Parses a NumPy .npy file holding a 2-D little-endian float32 C-order array. */
export function parseNpy(bytes: Uint8Array, path: string): { data: Float32Array; rows: number; cols: number } {
  const bad = (why: string): never => {
    throw new InflowError('INVALID_CONFIG', `embedding table ${path}: ${why}; expected a 2-D '<f4' C-order array as np.save writes it`);
  };
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((b, i) => bytes[i] !== b)) bad('not a .npy file');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6] ?? 0;
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = utf8.decode(bytes.subarray(start, start + headerLength));
  if (!/'descr':\s*'<f4'/.test(header)) bad(`dtype in header ${header.trim()}`);
  if (!/'fortran_order':\s*False/.test(header)) bad('Fortran order');
  const dims = /'shape':\s*\((\d+),\s*(\d+)\)/.exec(header);
  if (!dims) bad(`shape in header ${header.trim()}`);
  const rows = Number(dims?.[1]);
  const cols = Number(dims?.[2]);
  const offset = start + headerLength;
  if (bytes.length - offset !== rows * cols * 4) bad(`${bytes.length - offset} data bytes for shape (${rows}, ${cols})`);
  // Copy: the data offset is not necessarily 4-byte aligned in the file buffer.
  const data = new Float32Array(rows * cols);
  new Uint8Array(data.buffer).set(bytes.subarray(offset));
  return { data, rows, cols };
}

async function readEmbedding(path: string): Promise<{ data: Float32Array; rows: number; cols: number }> {
  if (path.endsWith('.npy')) {
    try {
      return parseNpy(await readFile(path), path);
    } catch (error) {
      if (error instanceof InflowError) throw error;
      throw new InflowError(
        'INVALID_CONFIG',
        `embedding table ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
        { cause: error },
      );
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(await readText(path));
  } catch (error) {
    if (error instanceof InflowError) throw error;
    throw new InflowError('INVALID_CONFIG', `embedding table ${path} is not valid JSON: ${String(error)}`, { cause: error });
  }
  const parsed = z.array(z.array(z.number()).min(1)).min(1).safeParse(json);
  const rows = parsed.data;
  const cols = rows?.[0]?.length ?? 0;
  if (!rows || rows.some((r) => r.length !== cols)) {
    throw new InflowError(
      'INVALID_CONFIG',
      `embedding table ${path}: expected a JSON array of equally long arrays of numbers ([vocab][dim])`,
    );
  }
  return { data: Float32Array.from(rows.flat()), rows: rows.length, cols };
}

async function embedding(
  t: Extract<TableOptions, { kind: 'embedding' }>,
  path: string,
  where: string,
): Promise<{ apply: Table['apply']; dim: number }> {
  const table = await readEmbedding(path);
  const dim = table.cols;
  return {
    dim,
    apply: (tensor) => {
      const source = ids(tensor);
      const out = new Float32Array(source.length * dim);
      for (let i = 0; i < source.length; i++) {
        const id = Number(source[i]);
        if (id >= 0 && id < table.rows) out.set(table.data.subarray(id * dim, (id + 1) * dim), i * dim);
        else if (t.default === undefined) unknown(where, `id ${id} is outside ${t.file} (ids 0..${table.rows - 1})`);
      }
      return { dtype: 'FP32', shape: [...tensor.shape, dim], data: out };
    },
  };
}

async function loadTable(t: TableOptions, dir: string, where: string): Promise<Table> {
  const path = resolve(dir, t.file);
  const inputDtype: DType = t.kind === 'string-to-id' ? 'BYTES' : t.dtype;
  const input = { name: t.input, dtype: inputDtype, shape: t.shape };
  if (t.kind === 'string-to-id')
    return { input, output: { name: t.output, dtype: t.dtype, shape: t.shape }, apply: await stringToId(t, path, where) };
  if (t.kind === 'id-to-string')
    return { input, output: { name: t.output, dtype: 'BYTES', shape: t.shape }, apply: await idToString(t, path, where) };
  const { apply, dim } = await embedding(t, path, where);
  return { input, output: { name: t.output, dtype: 'FP32', shape: [...t.shape, dim] }, apply };
}

/** Loads the tables of a lookup servable. */
export async function loadLookupServable(context: ServableContext): Promise<Servable> {
  const options = lookupOptionsSchema.parse(context.options);
  const where = `model "${context.model}" v${context.version}`;
  const tables = await Promise.all(options.tables.map((t) => loadTable(t, context.dir, where)));
  const inputs = new Map<string, TensorSpec>();
  const outputs = new Set<string>();
  for (const [i, table] of tables.entries()) {
    const seen = inputs.get(table.input.name);
    if (seen && (seen.dtype !== table.input.dtype || seen.shape.join() !== table.input.shape.join())) {
      throw new InflowError(
        'INVALID_CONFIG',
        `${where}: runtime.tables.${i}.input "${table.input.name}" is read as ${table.input.dtype} and as ${seen.dtype}; one input has one type`,
      );
    }
    if (outputs.has(table.output.name))
      throw new InflowError('INVALID_CONFIG', `${where}: runtime.tables.${i}.output "${table.output.name}" is written by two tables`);
    inputs.set(table.input.name, table.input);
    outputs.add(table.output.name);
  }
  const signature: Signature = { inputs: [...inputs.values()], outputs: tables.map((t) => t.output) };
  return {
    signature,
    async run(values: Readonly<Record<string, Tensor>>, runOptions: RunOptions = {}): Promise<Record<string, Tensor>> {
      throwIfAborted(runOptions.signal, where);
      checkInputs(signature, values, where);
      const wanted = new Set(selectOutputs(signature, runOptions.outputs, where));
      const result: Record<string, Tensor> = {};
      for (const table of tables)
        if (wanted.has(table.output.name)) result[table.output.name] = table.apply(values[table.input.name] as Tensor);
      return result;
    },
    async close(): Promise<void> {},
  };
}
