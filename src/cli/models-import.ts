/**
 * `inflow models import --savedmodel <dir>`: the migration path from TF Serving. One signature of a
 * TensorFlow SavedModel becomes an inflow model version (ONNX, converted by tf2onnx from PyPI in a
 * managed virtualenv), with the signature's input and output names kept, so TF Serving clients
 * (Predict, `:predict`) need no change. The conversion is verified before anything is installed:
 * TensorFlow's own outputs on sample inputs must equal inflow's runtime on the ONNX model.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { InflowError } from '../errors.ts';
import { loadServable } from '../runtime/index.ts';
import { decodeOipRequest } from '../tensor/codecs/index.ts';
import type { Tensor } from '../tensor/tensor.ts';

const run = promisify(execFile);

export const modelsImportHelp = `inflow models import --savedmodel <dir> --model-repository <repo> --model <name> [options]

Turns a TensorFlow SavedModel (what TF Serving serves) into an inflow model version: the signature
is converted to ONNX with tf2onnx, keeping its input and output names, so TF Serving clients
(gRPC Predict, REST :predict) work unchanged against inflow serve. Before the version is installed,
TensorFlow's outputs on sample inputs are compared with inflow's runtime on the converted model.

The converter runs in a Python virtualenv made on first use (TensorFlow 2.21 CPU, tf2onnx 1.17;
about 1.5 GB, a few minutes) under $INFLOW_CACHE_DIR (default ~/.cache/inflow); python3 ≥ 3.10
with venv is required.

Options:
  --savedmodel <dir>        the SavedModel folder (saved_model.pb and variables/)
  --model-repository <dir>  the repository to install into (created if missing)
  --model <name>            the model's name in inflow (the name TF Serving clients use)
  --version <n>             the version number (default: one above the highest already there, else 1)
  --signature <name>        the signature to convert (default serving_default)
  --opset <n>               the ONNX opset (default 17)
  --tolerance <x>           largest allowed |TensorFlow - inflow| relative to max(1, |value|) (default 1e-4)
  --json                    print the result as JSON

Example:
  inflow models import --savedmodel /models/iris/1 --model-repository models/repository --model iris
  inflow serve --model-repository models/repository`;

const HERE = import.meta.dirname;
const REQUIREMENTS = join(HERE, 'models-import-requirements.txt');
const CONVERTER = join(HERE, 'models-import.py');

const bad = (message: string): InflowError => new InflowError('INVALID_ARGUMENT', message);

/** The managed virtualenv's python, made once per requirements content. */
async function converterPython(out: (line: string) => void): Promise<string> {
  const hash = createHash('sha256')
    .update(await readFile(REQUIREMENTS))
    .digest('hex')
    .slice(0, 12);
  const cache = process.env.INFLOW_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'inflow');
  const venv = join(cache, `savedmodel-import-venv-${hash}`);
  const python = join(venv, 'bin', 'python');
  if (existsSync(join(venv, '.complete'))) return python;
  out(`setting up the converter (TensorFlow, tf2onnx) in ${venv} — once, a few minutes…`);
  await rm(venv, { recursive: true, force: true });
  await mkdir(cache, { recursive: true });
  try {
    await run('python3', ['-m', 'venv', venv]);
    await run(join(venv, 'bin', 'pip'), ['install', '-q', '--disable-pip-version-check', '-r', REQUIREMENTS], {
      maxBuffer: 64 * 1024 * 1024,
    });
    await run(python, ['-c', 'import tensorflow, tf2onnx, onnx'], { maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr;
    const detail = (typeof stderr === 'string' && stderr !== '' ? stderr : (error as Error).message).trim().split('\n').slice(-3).join(' ');
    throw new InflowError(
      'FAILED_PRECONDITION',
      `cannot set up the converter's Python environment in ${venv}: ${detail}; it needs python3 (≥ 3.10, with venv) and PyPI`,
      { cause: error },
    );
  }
  await writeFile(join(venv, '.complete'), '');
  return python;
}

interface Converted {
  signature: string;
  inputs: Array<{ name: string; datatype: string; shape: number[] }>;
  outputs: Array<{ name: string; datatype: string; shape: number[] }>;
  tensorflow: string;
  tf2onnx: string;
  opset: number;
}

type SampleTensors = Record<string, { datatype: string; shape: number[]; data: unknown[] }>;

/** A sample's tensors, decoded as an OIP request's inputs are. */
function tensorsOf(tensors: SampleTensors): Record<string, Tensor> {
  return decodeOipRequest({ inputs: Object.entries(tensors).map(([name, t]) => ({ name, ...t })) }).inputs;
}

/** The largest relative difference between TensorFlow's and inflow's outputs; throws naming a mismatch in kind. */
function compare(want: Record<string, Tensor>, got: Record<string, Tensor>): number {
  let worst = 0;
  for (const [name, w] of Object.entries(want)) {
    const g = got[name];
    if (!g) throw new InflowError('INTERNAL', `the converted model has no output "${name}" (outputs: ${Object.keys(got).join(', ')})`);
    if (g.dtype !== w.dtype || g.shape.join() !== w.shape.join()) {
      throw new InflowError(
        'INTERNAL',
        `output "${name}": TensorFlow gives ${w.dtype} [${w.shape.join(', ')}], the converted model ${g.dtype} [${g.shape.join(', ')}]`,
      );
    }
    const a = w.data as ArrayLike<unknown>;
    const b = g.data as ArrayLike<unknown>;
    for (let i = 0; i < a.length; i++) {
      const x = a[i];
      const y = b[i];
      if (x instanceof Uint8Array || y instanceof Uint8Array) {
        if (Buffer.compare(Buffer.from(x as Uint8Array), Buffer.from(y as Uint8Array)) !== 0) return Number.POSITIVE_INFINITY;
        continue;
      }
      const d = Math.abs(Number(x) - Number(y)) / Math.max(1, Math.abs(Number(x)));
      if (!(d <= worst)) worst = Number.isNaN(d) ? (Number.isNaN(Number(x)) && Number.isNaN(Number(y)) ? worst : Infinity) : d;
    }
  }
  return worst;
}

async function nextVersion(modelDir: string): Promise<number> {
  const entries = existsSync(modelDir) ? await readdir(modelDir) : [];
  const versions = entries.filter((e) => /^\d+$/.test(e)).map(Number);
  return versions.length === 0 ? 1 : Math.max(...versions) + 1;
}

/** Runs the command; `out` gets the progress and result lines. */
export async function modelsImport(argv: string[], out: (line: string) => void): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      json: { type: 'boolean' },
      verbose: { type: 'boolean' },
      savedmodel: { type: 'string' },
      'model-repository': { type: 'string' },
      model: { type: 'string' },
      version: { type: 'string' },
      signature: { type: 'string', default: 'serving_default' },
      opset: { type: 'string', default: '17' },
      tolerance: { type: 'string', default: '1e-4' },
    },
  });
  if (values.help) return out(modelsImportHelp);
  if (positionals.length > 0) throw bad(`inflow models import: unexpected argument "${positionals[0]}"; see --help`);
  const { savedmodel, model } = values;
  const repository = values['model-repository'];
  if (!savedmodel || !repository || !model) {
    throw bad('inflow models import: --savedmodel <dir>, --model-repository <dir> and --model <name> are required');
  }
  if (!/^[A-Za-z0-9][\w.-]*$/.test(model))
    throw bad(`--model "${model}" is not a valid model name; expected letters, digits, ".", "_", "-"`);
  const source = resolve(savedmodel);
  if (!existsSync(join(source, 'saved_model.pb'))) {
    throw bad(
      `--savedmodel ${savedmodel}: no saved_model.pb there; expected a SavedModel folder (e.g. <base_path>/<version>/ of TF Serving)`,
    );
  }
  const opset = Number(values.opset);
  if (!Number.isInteger(opset) || opset < 9 || opset > 21) throw bad(`--opset must be an integer 9-21, got "${values.opset}"`);
  const tolerance = Number(values.tolerance);
  if (!(tolerance >= 0)) throw bad(`--tolerance must be a non-negative number, got "${values.tolerance}"`);
  const modelDir = join(resolve(repository), model);
  const version = values.version === undefined ? await nextVersion(modelDir) : Number(values.version);
  if (!Number.isSafeInteger(version) || version < 1) throw bad(`--version must be a positive integer, got "${values.version}"`);
  const target = join(modelDir, String(version));
  if (existsSync(target)) {
    throw new InflowError('ALREADY_EXISTS', `${target} exists; choose another --version (versions are never overwritten)`);
  }
  const configFile = join(modelDir, 'config.yaml');
  if (existsSync(configFile) && !/^platform:\s*onnx\s*$/m.test(await readFile(configFile, 'utf8'))) {
    throw new InflowError('FAILED_PRECONDITION', `${configFile} exists and is not "platform: onnx"; import into a new model name`);
  }

  const python = await converterPython(out);
  await mkdir(modelDir, { recursive: true });
  // Staged beside the target (same file system, renamed into place); dot folders are not versions.
  const staging = await mkdtemp(join(modelDir, '.import-'));
  try {
    const onnx = join(staging, 'model.onnx');
    const referenceFile = join(staging, 'reference.json');
    out(`converting ${source} (signature ${values.signature}) to ONNX opset ${opset}…`);
    let converted: Converted;
    try {
      const { stdout } = await run(
        python,
        [CONVERTER, source, onnx, referenceFile, '--signature', values.signature, '--opset', String(opset)],
        { maxBuffer: 64 * 1024 * 1024, env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' } },
      );
      converted = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Converted;
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr ?? '';
      const reason = /^error: (.*)$/m.exec(stderr)?.[1] ?? stderr.trim().split('\n').slice(-2).join(' ');
      throw new InflowError('FAILED_PRECONDITION', `cannot convert ${source}: ${reason || (error as Error).message}`, { cause: error });
    }
    const reference = JSON.parse(await readFile(referenceFile, 'utf8')) as { inputs: SampleTensors; outputs: SampleTensors };
    await rm(referenceFile, { force: true });

    // Verify with inflow's own runtime, on the folder as it will be served.
    const servable = await loadServable('onnx', { dir: staging, model, version, options: { file: 'model.onnx' } });
    let worst: number;
    try {
      const inputs = tensorsOf(reference.inputs);
      worst = compare(tensorsOf(reference.outputs), await servable.run(inputs));
    } finally {
      await servable.close();
    }
    const rows = Object.values(reference.inputs)[0]?.shape[0] ?? 0;
    if (!(worst <= tolerance)) {
      throw new InflowError(
        'FAILED_PRECONDITION',
        `the converted model does not match TensorFlow on ${rows} sample rows: largest relative difference ${worst} > ${tolerance} (--tolerance); nothing was installed`,
      );
    }
    if (!existsSync(configFile)) {
      await writeFile(
        configFile,
        `# Imported from the TensorFlow SavedModel ${source} (signature ${converted.signature}) by inflow models import.\nplatform: onnx\nruntime: { file: model.onnx }\n`,
      );
    }
    await chmod(staging, 0o755); // mkdtemp made it private; a version folder is readable like its files
    await rename(staging, target);
    const bytes = (await stat(join(target, 'model.onnx'))).size;
    const result = { model, version, path: target, bytes, ...converted, verifiedRows: rows, maxRelativeDifference: worst };
    if (values.json) return out(JSON.stringify(result));
    const names = (list: Converted['inputs']): string => list.map((t) => `${t.name} ${t.datatype} [${t.shape.join(', ')}]`).join(', ');
    out(
      `imported ${model} version ${version} → ${target} (${bytes} bytes, TensorFlow ${converted.tensorflow}, tf2onnx ${converted.tf2onnx})`,
    );
    out(`  inputs:  ${names(converted.inputs)}`);
    out(`  outputs: ${names(converted.outputs)}`);
    out(`  matches TensorFlow on ${rows} sample rows (largest relative difference ${worst.toExponential(2)})`);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
