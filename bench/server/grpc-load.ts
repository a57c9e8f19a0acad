/**
 * Unary gRPC load against inflow's gRPC server (or any TF Serving / OIP server): closed loop,
 * `--concurrency` calls in flight split over `--procs` client processes (the grpc-js client tops
 * out near 3 k calls/s per core, so one process would measure the client), digits-mlp, 1 row.
 *
 *   node bench/server/grpc-load.ts [--target host:port] [--method predict|infer|infer-raw]
 *        [--concurrency 64] [--procs 2] [--seconds 10] [--warmup 2] [--serve]
 *
 * `--serve` starts an in-process server over models/repository first (otherwise point --target at
 * a running one, e.g. `node bench/server/grpc-serve.ts`). Prints req/s, p50, p99 (ms) as JSON.
 */
import { fork } from 'node:child_process';
import { parseArgs } from 'node:util';
import { GrpcServiceName } from '../../src/server/grpc/grpc-protos.ts';
import { createGrpcTestClient } from '../../src/server/grpc/grpc-test-client.ts';

const { values } = parseArgs({
  options: {
    target: { type: 'string', default: '127.0.0.1:8500' },
    method: { type: 'string', default: 'infer' },
    concurrency: { type: 'string', default: '64' },
    procs: { type: 'string', default: '2' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    serve: { type: 'boolean', default: false },
    worker: { type: 'boolean', default: false },
  },
});

const row = Array.from({ length: 64 }, (_, i) => i % 17);

function request(method: string): { service: GrpcServiceName; rpc: string; message: object } {
  switch (method) {
    case 'predict':
      return {
        service: GrpcServiceName.PREDICTION,
        rpc: 'Predict',
        message: {
          model_spec: { name: 'digits-mlp' },
          inputs: { input: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: 1 }, { size: 64 }] }, float_val: row } },
        },
      };
    case 'infer-raw':
      return {
        service: GrpcServiceName.INFERENCE,
        rpc: 'ModelInfer',
        message: {
          model_name: 'digits-mlp',
          inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64] }],
          raw_input_contents: [Buffer.from(Float32Array.from(row).buffer)],
        },
      };
    default:
      return {
        service: GrpcServiceName.INFERENCE,
        rpc: 'ModelInfer',
        message: {
          model_name: 'digits-mlp',
          inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], contents: { fp32_contents: row } }],
        },
      };
  }
}

/** One client process: `concurrency` loops until `endAt`; latencies (ms) of calls that started after `measureFrom`. */
async function runWorker(): Promise<void> {
  const client = createGrpcTestClient(values.target);
  const { service, rpc, message } = request(values.method);
  const measureFrom = Date.now() + Number(values.warmup) * 1000;
  const endAt = measureFrom + Number(values.seconds) * 1000;
  const latencies: number[] = [];
  let errors = 0;
  async function loop(): Promise<void> {
    while (Date.now() < endAt) {
      const started = performance.now();
      const measured = Date.now() >= measureFrom;
      try {
        await client.unary(service, rpc, message);
        if (measured) latencies.push(performance.now() - started);
      } catch {
        errors++;
      }
    }
  }
  await Promise.all(Array.from({ length: Number(values.concurrency) }, loop));
  client.close();
  process.send?.({ latencies, errors });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function main(): Promise<void> {
  let close = async (): Promise<void> => undefined;
  let target = values.target;
  if (values.serve) {
    const { loadServable } = await import('../../src/runtime/index.ts');
    const { createLocalInference } = await import('../../src/serving/local-inference.ts');
    const { createGrpcServer } = await import('../../src/server/grpc/index.ts');
    const inference = await createLocalInference({ modelRepository: 'models/repository', load: loadServable, watch: false, settleMs: 0 });
    const server = createGrpcServer(inference, { host: '127.0.0.1', port: 0 });
    target = `127.0.0.1:${(await server.start()).port}`;
    close = async () => {
      await server.close(1000);
      await inference.close();
    };
  }
  const procs = Number(values.procs);
  const perProc = Math.ceil(Number(values.concurrency) / procs);
  const args = ['--worker', '--target', target, '--method', values.method, '--concurrency', String(perProc)];
  args.push('--seconds', values.seconds, '--warmup', values.warmup);
  // Server CPU per call (only meaningful with --serve: the server shares this process, clients do not).
  let cpuAtStart: NodeJS.CpuUsage | undefined;
  const cpuTimer = setTimeout(() => (cpuAtStart = process.cpuUsage()), Number(values.warmup) * 1000 + 500);
  const results = await Promise.all(
    Array.from(
      { length: procs },
      () =>
        new Promise<{ latencies: number[]; errors: number }>((resolve, reject) => {
          const child = fork(new URL(import.meta.url).pathname, args, { stdio: 'inherit' });
          child.once('message', (m) => resolve(m as { latencies: number[]; errors: number }));
          child.once('error', reject);
        }),
    ),
  );
  clearTimeout(cpuTimer);
  const cpu = cpuAtStart ? process.cpuUsage(cpuAtStart) : undefined;
  await close();
  const all = results.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const errors = results.reduce((n, r) => n + r.errors, 0);
  console.log(
    JSON.stringify({
      method: values.method,
      concurrency: perProc * procs,
      procs,
      seconds: Number(values.seconds),
      requests: all.length,
      errors,
      reqPerSec: Math.round(all.length / Number(values.seconds)),
      p50ms: Number(percentile(all, 50).toFixed(3)),
      p99ms: Number(percentile(all, 99).toFixed(3)),
      ...(values.serve && cpu
        ? {
            serverCpuMicrosPerCall: Math.round(
              (cpu.user + cpu.system) / (all.length * ((Number(values.seconds) - 0.5) / Number(values.seconds))),
            ),
          }
        : {}),
    }),
  );
}

if (values.worker) await runWorker();
else await main();
