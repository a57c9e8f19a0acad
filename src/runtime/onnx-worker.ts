/**
 * Worker thread of the onnx servable: owns one onnxruntime session and runs it, so the event loop
 * of the main thread never waits on a model (session.run executes synchronously on the thread
 * that calls it). Protocol in onnx-protocol.ts. Started by onnx-servable.ts with a WorkerInit as
 * workerData; answers `ready` or `load-error`, then one `result` / `run-error` per `run`.
 */
import { readFile } from 'node:fs/promises';
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { Tensor } from '../tensor/tensor.ts';
import {
  dtypeOfOrt,
  type FromWorker,
  ortTypeOf,
  type ToWorker,
  toWire,
  type WireSpec,
  type WireTensor,
  type WorkerInit,
} from './onnx-protocol.ts';
import { rewriteZipMap } from './onnx-zipmap.ts';

// onnxruntime reads this from the C environment (getenv) when its first session is created (not at
// import); in a worker thread process.env is a copy, so the main thread sets it too (onnx-servable.ts).
process.env.ORT_DISABLE_TELEMETRY = '1';

const port = parentPort;
if (port === null) throw new Error('onnx-worker.ts runs only as a worker thread');
const init = workerData as WorkerInit;

function send(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(message, transfer);
}

const utf8 = new TextDecoder();
const encoder = new TextEncoder();

/** Creates a session, skipping execution providers whose libraries cannot be loaded (CUDA absent, …). */
async function createSession(
  model: string | Uint8Array,
): Promise<{ session: ort.InferenceSession; provider: string; skipped: { provider: string; reason: string }[] }> {
  const skipped: { provider: string; reason: string }[] = [];
  const providers = [...init.executionProviders];
  for (;;) {
    const options: ort.InferenceSession.SessionOptions = {
      executionProviders: providers,
      graphOptimizationLevel: init.graphOptimizationLevel,
      ...(init.intraOpThreads === undefined ? {} : { intraOpNumThreads: init.intraOpThreads }),
      ...(init.interOpThreads === undefined ? {} : { interOpNumThreads: init.interOpThreads }),
    };
    try {
      const session =
        typeof model === 'string' ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(model, options);
      return { session, provider: providers[0] ?? 'cpu', skipped };
    } catch (error) {
      const first = providers[0];
      // Only a provider that failed to come up is skipped; a bad model fails the same on every provider.
      if (providers.length > 1 && first !== undefined && /ExecutionProvider|shared library|provider/i.test(String(error))) {
        skipped.push({ provider: first, reason: firstLine(error) });
        providers.shift();
        continue;
      }
      throw error;
    }
  }
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  // onnxruntime appends its native log (with ANSI colours) after the first line.
  return (text.split('\n')[0] ?? text).replace(/\u001b\[[0-9;]*m/g, '').trim();
}

function specsOf(metadata: readonly ort.InferenceSession.ValueMetadata[], kind: string, classLabels: Record<string, unknown>): WireSpec[] {
  return metadata.map((m) => {
    if (!m.isTensor) {
      throw new Error(
        `${kind} "${m.name}" is not a tensor (a sequence or map), which onnxruntime-node cannot return; ` +
          'export the model with plain tensor outputs (for skl2onnx classifiers: options={id(model): {"zipmap": False}})',
      );
    }
    const dtype = dtypeOfOrt(m.type);
    if (dtype === undefined) throw new Error(`${kind} "${m.name}" has type ${m.type}, which inflow does not support`);
    // Symbolic ("batch") and unknown ("") dims are dynamic.
    const shape = m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1));
    if (classLabels[m.name] !== undefined && shape.length === 2 && shape[0] !== -1) shape[0] = -1;
    return { name: m.name, dtype, shape };
  });
}

let session: ort.InferenceSession;

async function load(): Promise<void> {
  let created = await createSession(init.path);
  let classLabels: Record<string, (string | number)[]> = {};
  if (created.session.outputMetadata.some((m) => !m.isTensor)) {
    const rewrite = rewriteZipMap(await readFile(init.path));
    if (rewrite) {
      await created.session.release();
      created = await createSession(rewrite.bytes);
      classLabels = rewrite.classLabels;
    }
  }
  session = created.session;
  send({
    type: 'ready',
    inputs: specsOf(session.inputMetadata, 'input', {}),
    outputs: specsOf(session.outputMetadata, 'output', classLabels),
    provider: created.provider,
    skipped: created.skipped,
    classLabels,
  });
}

function toOrt(wire: WireTensor): ort.Tensor {
  if (wire.dtype === 'BYTES') {
    const strings: string[] = [];
    for (let i = 0; i + 1 < wire.offsets.length; i++) strings.push(utf8.decode(wire.bytes.subarray(wire.offsets[i], wire.offsets[i + 1])));
    return new ort.Tensor('string', strings, wire.shape);
  }
  return new ort.Tensor(ortTypeOf[wire.dtype], wire.data as never, wire.shape);
}

function fromOrt(value: ort.OnnxValue, name: string): Tensor {
  const dtype = dtypeOfOrt(value.type);
  if (dtype === undefined) throw new Error(`output "${name}" has type ${value.type}, which inflow does not support`);
  const shape = [...value.dims];
  if (dtype === 'BYTES') return { dtype, shape, data: (value.data as string[]).map((s) => encoder.encode(s)) };
  let data = value.data as Tensor['data'];
  // float16 may come back as a Float16Array where the runtime has one: inflow carries raw bits.
  if (dtype === 'FP16' && !(data instanceof Uint16Array)) {
    const view = data as unknown as ArrayBufferView;
    data = new Uint16Array(view.buffer, view.byteOffset, view.byteLength / 2);
  }
  return { dtype, shape, data };
}

async function run(id: number, feeds: Record<string, WireTensor>, fetches: string[]): Promise<void> {
  try {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, wire] of Object.entries(feeds)) ortFeeds[name] = toOrt(wire);
    const results = await session.run(ortFeeds, fetches);
    const transfer: ArrayBuffer[] = [];
    const outputs: Record<string, WireTensor> = {};
    for (const name of fetches) {
      const value = results[name];
      if (value === undefined) throw new Error(`the session returned no output "${name}"`);
      outputs[name] = toWire(fromOrt(value, name), transfer, false);
    }
    send({ type: 'result', id, outputs }, transfer);
  } catch (error) {
    send({ type: 'run-error', id, message: firstLine(error) });
  }
}

try {
  await load();
  let closing = false;
  port.on('message', (message: ToWorker) => {
    if (message.type === 'run') void run(message.id, message.feeds, message.fetches);
    else if (!closing) {
      closing = true;
      // Closing the port lets the thread exit; a failed release is moot then (the thread's memory goes with it).
      session.release().then(
        () => port.close(),
        () => port.close(),
      );
    }
  });
} catch (error) {
  const message = firstLine(error);
  const code = /doesn't exist|No such file|ENOENT/i.test(message) ? 'INVALID_CONFIG' : 'FAILED_PRECONDITION';
  send({ type: 'load-error', code, message });
  port.close();
}
