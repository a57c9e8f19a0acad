/**
 * The cost of hostile BYTES requests to a model that takes FP32 (issue 15 fault 4), on an
 * `inflow serve` child process: a 30 MB OIP JSON request of 10 M empty strings, the binary
 * extension with 8 M zero-length elements, and gRPC ModelInfer with 8 M zero-length elements in
 * raw_input_contents. For each: the answer's status and time, the server's RSS before, at its
 * peak (sampled every 20 ms) and 2 s after, and the slowest health probe meanwhile (GET
 * /v2/health/live every 50 ms). Each request is sent `--repeat` times (default 2).
 *
 *   node bench/server/bytes-decode-cost.ts [--repeat 2]
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createGrpcTestClient } from '../../src/server/grpc/grpc-test-client.ts';
import { freePort, startService } from '../lib/process.ts';

const { values } = parseArgs({ options: { repeat: { type: 'string', default: '2' } } });
const ROOT = join(import.meta.dirname, '..', '..');
const MODEL = 'digits-mlp';
const [restPort, grpcPort] = [await freePort(), await freePort()];
const server = await startService({
  name: 'server',
  command: process.execPath,
  args: [join(ROOT, 'bin', 'inflow.js'), 'serve', '--model-repository', join(ROOT, 'models', 'repository'), '--host', '127.0.0.1'].concat([
    '--rest-port',
    String(restPort),
    '--grpc-port',
    String(grpcPort),
  ]),
  env: { INFLOW_LOG_LEVEL: 'warn' },
  readyUrl: `http://127.0.0.1:${restPort}/v2/health/ready`,
});
const base = `http://127.0.0.1:${restPort}`;

async function rssMb(): Promise<number> {
  const status = await readFile(`/proc/${server.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024;
}

const N_JSON = 10_000_000;
const N_BIN = 8_000_000;
const jsonBody = Buffer.from(
  `{"inputs":[{"name":"input","datatype":"BYTES","shape":[${N_JSON}],"data":[${Array.from({ length: N_JSON }, () => '""').join(',')}]}]}`,
);
const binHeader = Buffer.from(
  JSON.stringify({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [N_BIN], parameters: { binary_data_size: 4 * N_BIN } }] }),
);
const binBody = Buffer.concat([binHeader, Buffer.alloc(4 * N_BIN)]);
const grpc = createGrpcTestClient(`127.0.0.1:${grpcPort}`);

const cases: Array<[string, () => Promise<string>]> = [
  [
    `REST OIP JSON, ${N_JSON / 1e6} M empty strings (${(jsonBody.length / 1e6).toFixed(1)} MB)`,
    async () => {
      const res = await fetch(`${base}/v2/models/${MODEL}/infer`, {
        method: 'POST',
        body: jsonBody,
        headers: { 'content-type': 'application/json' },
      });
      return `${res.status} ${(await res.text()).slice(0, 160)}`;
    },
  ],
  [
    `REST binary extension, ${N_BIN / 1e6} M zero-length elements (${(binBody.length / 1e6).toFixed(1)} MB)`,
    async () => {
      const res = await fetch(`${base}/v2/models/${MODEL}/infer`, {
        method: 'POST',
        body: binBody,
        headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(binHeader.length) },
      });
      return `${res.status} ${(await res.text()).slice(0, 160)}`;
    },
  ],
  [
    `gRPC ModelInfer raw, ${N_BIN / 1e6} M zero-length elements`,
    async () => {
      try {
        await grpc.unary('inference.GRPCInferenceService', 'ModelInfer', {
          model_name: MODEL,
          inputs: [{ name: 'input', datatype: 'BYTES', shape: [N_BIN] }],
          raw_input_contents: [Buffer.alloc(4 * N_BIN)],
        });
        return 'OK';
      } catch (error) {
        return `${(error as { code?: number }).code} ${(error as Error).message.slice(0, 160)}`;
      }
    },
  ],
];

for (const [name, send] of cases) {
  for (let r = 0; r < Number(values.repeat); r++) {
    const before = await rssMb();
    let peak = before;
    let worstProbe = 0;
    let failedProbes = 0;
    let running = true;
    const sampler = (async () => {
      while (running) {
        peak = Math.max(peak, await rssMb());
        await new Promise((res) => setTimeout(res, 20));
      }
    })();
    const prober = (async () => {
      while (running) {
        const t = performance.now();
        try {
          await (await fetch(`${base}/v2/health/live`, { signal: AbortSignal.timeout(120_000) })).arrayBuffer();
        } catch {
          failedProbes++; // a keep-alive socket the server closed late (its timers wait for the event loop too)
        }
        worstProbe = Math.max(worstProbe, performance.now() - t);
        await new Promise((res) => setTimeout(res, 50));
      }
    })();
    const t0 = performance.now();
    const answer = await send().catch((error: unknown) => {
      throw new Error(`${name}: ${String(error)}; server output:\n${server.output().slice(-2000)}`, { cause: error });
    });
    const ms = performance.now() - t0;
    running = false;
    await Promise.all([sampler, prober]);
    await new Promise((res) => setTimeout(res, 2000));
    const after = await rssMb();
    console.log(
      `${name} #${r + 1}: ${ms.toFixed(0)} ms; RSS ${before.toFixed(0)} → peak ${peak.toFixed(0)} → ${after.toFixed(0)} MB (2 s later); slowest health probe ${worstProbe.toFixed(0)} ms (${failedProbes} failed)\n    answer: ${answer.replace(/\s+/g, ' ')}`,
    );
  }
}
grpc.close();
await server.stop();
