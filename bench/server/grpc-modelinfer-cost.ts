/**
 * CPU per OIP ModelInfer call of inflow's own gRPC path, without the transport: the request bytes
 * ghz sends (digits-mlp, 1 row, typed contents) → the server's request deserializer → the call
 * wrapper (in-flight bound, deadline timer, AbortSignal, metrics) → the OIP handler → the
 * response serializer, with 64 calls in flight. `--inference fake` answers every infer with the
 * fixed outputs of digits-mlp (the handler, codec and wrapper alone); `--inference local` runs
 * inflow's local inference over models/repository (batcher, worker hop, ONNX Runtime) as well.
 *
 *   node bench/server/grpc-modelinfer-cost.ts [--inference fake|local] [--calls 200000] [--reps 5]
 *
 * Prints CPU µs per call (process.cpuUsage, all threads) and heap bytes allocated per call
 * (process.memoryUsage is not enough: v8's allocation counter via `--trace-gc` is not
 * available here, so the GC share shows as CPU) for each rep; compare two checkouts by running
 * this file in each, alternating.
 */
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { silentLogger } from '../../src/observability/logger.ts';
import { createGrpcMetrics, createUnaryWrapper } from '../../src/server/grpc/grpc-call.ts';
import type { GrpcInference } from '../../src/server/grpc/grpc-inference.ts';
import { GrpcServiceName, loadGrpcProtos, tolerantServiceDefinition } from '../../src/server/grpc/grpc-protos.ts';
import { createOipHandlers } from '../../src/server/grpc/oip-service.ts';
import { DEFAULT_DECODE_LIMITS } from '../../src/serving/check-inputs.ts';
import type { InferResponse } from '../../src/serving/types.ts';

const { values } = parseArgs({
  options: {
    inference: { type: 'string', default: 'fake' },
    calls: { type: 'string', default: '200000' },
    reps: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '64' },
  },
});

const row = Array.from({ length: 64 }, (_, i) => i % 17);
const protos = loadGrpcProtos();
const plain = protos.services[GrpcServiceName.INFERENCE].ModelInfer as grpc.MethodDefinition<object, object>;
const requestBytes = plain.requestSerialize({
  model_name: 'digits-mlp',
  inputs: [{ name: 'input', datatype: 'FP32', shape: ['1', '64'], contents: { fp32_contents: row } }],
});
const method = tolerantServiceDefinition(GrpcServiceName.INFERENCE).ModelInfer as grpc.MethodDefinition<unknown, unknown>;

let inference: GrpcInference;
let close = async (): Promise<void> => undefined;
if (values.inference === 'local') {
  process.env.INFLOW_ONNX_INTRA_OP_THREADS ??= '1';
  const { loadServable } = await import('../../src/runtime/index.ts');
  const { createLocalInference } = await import('../../src/serving/local-inference.ts');
  const local = await createLocalInference({ modelRepository: 'models/repository', load: loadServable, watch: false, settleMs: 0 });
  inference = local;
  close = () => local.close();
} else {
  const probabilities = new Float32Array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.55]);
  const registry = new Registry();
  inference = {
    metrics: { registry } as GrpcInference['metrics'],
    ready: async () => true,
    metadata: () => Promise.reject(new Error('not used')),
    infer: async (request): Promise<InferResponse> => ({
      model: request.model,
      version: 1,
      outputs: {
        label: { dtype: 'INT64', shape: [1], data: new BigInt64Array([4n]) },
        probabilities: { dtype: 'FP32', shape: [1, 10], data: probabilities.slice() },
      },
    }),
  };
}

const handlers = createOipHandlers(inference, {
  serverName: 'inflow',
  serverVersion: '0',
  admin: false,
  accepting: () => true,
  decodeLimits: DEFAULT_DECODE_LIMITS,
});
const wrapper = createUnaryWrapper({
  metrics: createGrpcMetrics(inference.metrics.registry),
  logger: silentLogger,
  maxConcurrentCalls: 1024,
  requestTimeoutMs: 30_000,
});
const handle = wrapper.wrap('inference.GRPCInferenceService/ModelInfer', handlers.ModelInfer);
const metadata = new grpc.Metadata();

/** One call as grpc-js makes it: deserialize, handler, serialize; resolves when the response bytes exist. */
function call(): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = method.requestDeserialize(requestBytes);
    const fakeCall = {
      request,
      metadata,
      getDeadline: () => Infinity,
      on: () => fakeCall,
      off: () => fakeCall,
    };
    handle(fakeCall as unknown as Parameters<typeof handle>[0], (error, response) => {
      if (error) reject(new Error(`call failed: ${error.details ?? String(error.code)}`));
      else resolve(method.responseSerialize(response).length);
    });
  });
}

async function runCalls(total: number, concurrency: number): Promise<void> {
  let started = 0;
  const lane = async (): Promise<void> => {
    while (started < total) {
      started++;
      await call();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
}

const calls = Number(values.calls);
const concurrency = Number(values.concurrency);
await runCalls(Math.min(20_000, calls), concurrency); // warm-up (JIT)
for (let rep = 0; rep < Number(values.reps); rep++) {
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await runCalls(calls, concurrency);
  const used = process.cpuUsage(cpu);
  const seconds = (performance.now() - t0) / 1000;
  console.log(
    JSON.stringify({
      inference: values.inference,
      rep,
      cpuUsPerCall: Number(((used.user + used.system) / calls).toFixed(2)),
      callsPerSec: Math.round(calls / seconds),
    }),
  );
}
await close();
