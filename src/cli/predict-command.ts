/**
 * `inflow predict <model>`: one inference, embedded (the model repository loaded in this
 * process) or remote (`--server`: inflow serve, TF Serving, Triton, MLServer, KServe). It parses
 * its own flags (main.ts hands it the arguments after `predict`).
 */
import { readdir } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { InflowError } from '../errors.ts';
import { createLogger } from '../observability/logger.ts';
import { loadServable, setRuntimeLogger } from '../runtime/index.ts';
import { createLocalInference } from '../serving/local-inference.ts';
import type { Inferencer, InferResponse } from '../serving/types.ts';
import { encodeOipResponse } from '../tensor/codecs/index.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { commandFailed } from './cli-errors.ts';
import { serverInferencer, serverProtocol } from './cli-remote.ts';
import { parseInferRequest, readRequestText } from './request-input.ts';

/**
 * Only the asked-for model is loaded, so an unknown name would otherwise surface as a repository
 * warning plus a lookup failure: say it in one line, with the models the repository has. A
 * repository that cannot be read is left to the loader, which names it.
 */
async function checkModelFolder(repository: string, model: string): Promise<void> {
  let entries: string[];
  try {
    entries = (await readdir(repository, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return;
  }
  if (entries.includes(model)) return;
  throw new InflowError(
    'NOT_FOUND',
    `model ${model} has no folder in the model repository ${repository}; expected one of: ${entries.sort().join(', ') || '(none)'}`,
  );
}

export const predictHelp = `inflow predict <model> --input <file|-> [--model-repository <dir> | --server <url>] [options]

One inference request. Embedded by default: the model repository is loaded in this process
(no server). With --server the request goes to a model server instead.

The input is JSON: an Open Inference Protocol v2 request ({"inputs": [{"name", "datatype",
"shape", "data"}]}), a TF Serving :predict body ({"instances": [...]} or {"inputs": ...}), or
a sample of models/samples/ ({"inputs": {"<name>": {"datatype", "shape", "data"}}}).

Options:
  --input <file|->          the request (- reads standard input)
  --model-repository <dir>  embedded: the repository to load (default $INFLOW_MODEL_REPOSITORY)
  --server <url>            remote: http(s)://host:port (OIP REST) or host:port (OIP gRPC)
  --protocol <p>            with --server: oip-rest, oip-grpc, tfserving-rest or tfserving-grpc
  --version <n>, --label <l> a specific version or label (default: the model's routing)
  --key <k>                 routing key (the same key always lands on the same version of a split)
  --json                    print the Open Inference Protocol response JSON
Environment: INFLOW_AUTH_TOKEN (bearer token for --server)

Examples:
  inflow predict digits-mlp --input models/samples/digits-mlp.json --model-repository models/repository
  echo '{"instances": [[0,0,5,13,9,1,0,0,0,0,13,15,10,15,5,0,0,3,15,2,0,11,8,0,0,4,12,0,0,8,8,0,0,5,8,0,0,9,8,0,0,4,11,0,1,12,7,0,0,2,14,5,10,12,0,0,0,0,6,13,10,0,0,0]]}' \\
    | inflow predict digits-mlp --input - --server http://127.0.0.1:8501
  inflow predict digits-mlp --input request.json --server 127.0.0.1:8500 --label canary --json`;

/** Values shown per output before "…" in the human-readable answer. */
const SHOWN = 12;

function valuesText(tensor: Tensor): string {
  const data = tensor.data;
  const values: string[] = [];
  const n = Math.min(SHOWN, data.length);
  for (let i = 0; i < n; i++) {
    const v = data[i];
    values.push(
      v instanceof Uint8Array
        ? JSON.stringify(Buffer.from(v).toString('utf8'))
        : typeof v === 'number'
          ? String(Number(v.toPrecision(6)))
          : String(v),
    );
  }
  return `[${values.join(', ')}${data.length > n ? `, … ${data.length - n} more` : ''}]`;
}

/** The answer for people: model, version, time, then one line per output. */
export function describeResponse(response: InferResponse, where: string, ms: number): string[] {
  const rows = Object.entries(response.outputs).map(([name, t]) => [name, `${t.dtype} [${t.shape.join(', ')}]`, valuesText(t)]);
  const width = [0, 1].map((i) => Math.max(...rows.map((r) => (r[i] as string).length)));
  return [
    `${response.model} v${response.version} (${where}, ${ms.toFixed(1)} ms)`,
    ...rows.map((r) => `  ${(r[0] as string).padEnd(width[0] ?? 0)}  ${(r[1] as string).padEnd(width[1] ?? 0)}  ${r[2] as string}`),
  ];
}

async function run(argv: string[], out: (line: string) => void): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      json: { type: 'boolean' },
      verbose: { type: 'boolean' },
      input: { type: 'string' },
      'model-repository': { type: 'string' },
      server: { type: 'string' },
      protocol: { type: 'string' },
      version: { type: 'string' },
      label: { type: 'string' },
      key: { type: 'string' },
    },
  });
  if (values.help) return out(predictHelp);
  const [model, ...extra] = positionals;
  if (!model || extra.length > 0)
    throw new InflowError('INVALID_ARGUMENT', 'expected one model name: inflow predict <model> --input <file|-> (see --help)');
  if (values.version !== undefined && values.label !== undefined)
    throw new InflowError('INVALID_ARGUMENT', 'give --version or --label, not both');
  const version = values.version === undefined ? undefined : /^\d+$/.test(values.version) ? Number(values.version) : Number.NaN;
  if (Number.isNaN(version)) throw new InflowError('INVALID_ARGUMENT', `--version must be a version number, got "${values.version ?? ''}"`);
  const text = await readRequestText(values.input, `models/samples/${model}.json`);

  let inferencer: Inferencer;
  let where: string;
  if (values.server !== undefined) {
    if (values['model-repository'] !== undefined)
      throw new InflowError('INVALID_ARGUMENT', 'give --server or --model-repository, not both');
    const protocol = serverProtocol(values.server, values.protocol);
    inferencer = serverInferencer(values.server, protocol);
    where = `${protocol} ${values.server}`;
  } else {
    const repository = values['model-repository'] ?? process.env.INFLOW_MODEL_REPOSITORY;
    if (!repository) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        '--model-repository <dir> is required for an embedded prediction (e.g. models/repository), or --server <url> for a remote one',
      );
    }
    await checkModelFolder(repository, model);
    const logger = createLogger({ name: 'inflow.predict', level: process.env.INFLOW_LOG_LEVEL ?? 'warn' });
    setRuntimeLogger(logger);
    // Only the model asked for: the repository's other models (a CNN among them) need not load.
    inferencer = await createLocalInference({ modelRepository: repository, models: [model], load: loadServable, watch: false, logger });
    where = 'embedded';
  }
  try {
    const request = await parseInferRequest(text, { model, version, label: values.label }, () => inferencer.metadata(model, version)).catch(
      (error: unknown) => {
        // Name the file the request came from: "JSON Parse error at position 1" alone does not say where.
        const e = InflowError.from(error);
        if (e.httpStatus !== 400) throw e;
        throw new InflowError(e.code, `--input ${values.input === '-' ? '- (standard input)' : values.input}: ${e.message}`, {
          cause: error,
        });
      },
    );
    const started = performance.now();
    const response = await inferencer.infer(request, values.key !== undefined ? { key: values.key } : {});
    const ms = performance.now() - started;
    if (values.json) {
      out(
        encodeOipResponse({
          modelName: response.model,
          modelVersion: String(response.version),
          ...(response.id !== undefined ? { id: response.id } : {}),
          outputs: response.outputs,
        }),
      );
    } else {
      for (const line of describeResponse(response, where, ms)) out(line);
    }
  } finally {
    await inferencer.close();
  }
}

/** Runs `inflow predict …` (the arguments after `predict`); returns the exit code. */
export async function predictMain(argv: string[], out: (line: string) => void): Promise<number> {
  try {
    await run(argv, out);
    return 0;
  } catch (error) {
    return commandFailed(error, argv);
  }
}
