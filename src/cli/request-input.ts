/**
 * Inference requests as `inflow predict` and `inflow bench` read them from a file or stdin, in
 * the formats people already have: an Open Inference Protocol v2 request (`{"inputs": [{name,
 * datatype, shape, data}]}`), a TF Serving `:predict` body (`{"instances": …}` or `{"inputs":
 * …}`, typed by the model's signature), or the repository's samples (`models/samples/*.json`:
 * `{"inputs": {"<name>": {datatype, shape, data}}}`). The wire codecs do the decoding.
 */
import { readFile } from 'node:fs/promises';
import { InflowError } from '../errors.ts';
import type { InferRequest, ModelMetadata } from '../serving/types.ts';
import { decodeOipRequest, decodeTfPredict, parseJsonText } from '../tensor/codecs/index.ts';

/** Reads the request text: a file, or `-` for standard input. */
export async function readRequestText(input: string | undefined, example: string): Promise<string> {
  if (input === undefined) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      `--input <file|-> is required: a JSON request (OIP v2, TF Serving or a sample), e.g. --input ${example}`,
    );
  }
  if (input === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
  try {
    return await readFile(input, 'utf8');
  } catch (error) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      `--input ${input}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      {
        cause: error,
      },
    );
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Which format a parsed body is in. */
export function requestFormat(body: unknown): 'oip' | 'sample' | 'tfserving' {
  if (!isObject(body)) throw new InflowError('INVALID_ARGUMENT', 'the request must be a JSON object with "inputs" or "instances"');
  if (Array.isArray(body.inputs)) return 'oip';
  if (isObject(body.inputs) && Object.values(body.inputs).every((t) => isObject(t) && 'datatype' in t && 'data' in t)) return 'sample';
  return 'tfserving';
}

/**
 * Turns request text into an InferRequest for `model`. A TF Serving body needs the model's
 * input dtypes: `metadata` is called for them (only then).
 */
export async function parseInferRequest(
  text: string,
  target: { model: string; version?: number | undefined; label?: string | undefined },
  metadata: () => Promise<ModelMetadata>,
): Promise<InferRequest> {
  const body = parseJsonText(text);
  const base = {
    model: target.model,
    ...(target.version !== undefined ? { version: target.version } : {}),
    ...(target.label !== undefined ? { label: target.label } : {}),
  };
  switch (requestFormat(body)) {
    case 'oip': {
      const request = decodeOipRequest(body);
      return {
        ...base,
        inputs: request.inputs,
        ...(request.id !== undefined ? { id: request.id } : {}),
        ...(request.outputs ? { outputs: request.outputs.map((o) => o.name) } : {}),
      };
    }
    case 'sample': {
      const inputs = Object.entries((body as { inputs: Record<string, object> }).inputs).map(([name, t]) => ({ name, ...t }));
      return { ...base, inputs: decodeOipRequest({ inputs }).inputs };
    }
    default: {
      const meta = await metadata();
      return { ...base, inputs: decodeTfPredict(body, { inputs: meta.inputs.map((s) => ({ name: s.name, dtype: s.dtype })) }).inputs };
    }
  }
}
