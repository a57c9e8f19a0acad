/**
 * Fuzzing the gRPC methods: 10 000 random and mutated request messages per method (seeded, so a
 * failure reproduces), sent as raw bytes. Every answer must be OK or a clean client-side status
 * with a message — never INTERNAL or UNKNOWN, never a hang (each call has a deadline), never a
 * dropped connection — and the server must still answer correctly afterwards.
 *
 * `INFLOW_FUZZ_RUNS` (default 10 000) bodies per method, `INFLOW_FUZZ_SEED` the seed.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { status as S } from '@grpc/grpc-js';
import fc from 'fast-check';
import { grpcStatusName } from '../../src/server/grpc/grpc-call.ts';
import { GrpcServiceName } from '../../src/server/grpc/grpc-protos.ts';
import { createGrpcTestClient, type GrpcTestClient } from '../../src/server/grpc/grpc-test-client.ts';
import { encode, fuzzBodies, methodTypes, validModelInfer, validPredict } from './grpc-fuzz-bodies.ts';

const RUNS = Number(process.env.INFLOW_FUZZ_RUNS ?? 10_000);
const SEED = Number(process.env.INFLOW_FUZZ_SEED ?? 20261126);
/** Calls in flight per property run: keeps both cores busy without queueing at the server. */
const BATCH = 32;
/** Bodies sent per method: RUNS rounded up to whole batches. */
const PER_METHOD = Math.ceil(RUNS / BATCH) * BATCH;
/** Per-call deadline, ms: far above any honest answer (~1 ms), so hitting it means a hang. */
const DEADLINE_MS = 10_000;

const { PREDICTION, MODEL, INFERENCE, HEALTH } = GrpcServiceName;
const METHODS: ReadonlyArray<readonly [GrpcServiceName, string]> = [
  [PREDICTION, 'Predict'],
  [PREDICTION, 'GetModelMetadata'],
  [PREDICTION, 'Classify'],
  [PREDICTION, 'Regress'],
  [MODEL, 'GetModelStatus'],
  [INFERENCE, 'ModelInfer'],
  [INFERENCE, 'ModelMetadata'],
  [INFERENCE, 'ModelReady'],
  [INFERENCE, 'ServerMetadata'],
  [HEALTH, 'Check'],
];

/** What a fuzzed call may answer: success or a status that blames the request (or says "not supported"). */
const ACCEPTABLE = new Set<number>([
  S.OK,
  S.INVALID_ARGUMENT,
  S.NOT_FOUND,
  S.FAILED_PRECONDITION,
  S.UNIMPLEMENTED,
  S.RESOURCE_EXHAUSTED,
  S.OUT_OF_RANGE,
]);

interface Answer {
  code: number;
  details: string;
  response?: Buffer;
}

/** A fuzz body that fast-check prints short (a failing batch holds 32 bodies of up to ~500 KB). */
function printable(body: Buffer): Buffer {
  return Object.assign(body, { [fc.toStringMethod]: () => `<${body.length} bytes: ${body.subarray(0, 32).toString('hex')}…>` });
}

/** The first 2 KiB of `body` in hex (a failure report must reproduce without the seed too). */
function hex(body: Buffer): string {
  const shown = body.subarray(0, 2048).toString('hex');
  return body.length > 2048 ? `${shown}… (${body.length} bytes)` : shown;
}

/**
 * Starts grpc-fuzz-server.ts (startModelServer over models/repository, gRPC only) in a child
 * process and resolves with it and its `host:port` once it listens.
 */
async function startServerProcess(): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, [join(import.meta.dirname, 'grpc-fuzz-server.ts')], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit').then(([code, signal]) => {
    throw new Error(`the fuzz server exited before listening (code ${String(code)}, signal ${String(signal)})`);
  });
  const listening = (async () => {
    // The server's own log lines share stdout; the address line is the one with the prefix.
    for await (const line of createInterface({ input: child.stdout as NodeJS.ReadableStream })) {
      if (line.startsWith(READY_PREFIX)) return line.slice(READY_PREFIX.length);
    }
    throw new Error('the fuzz server closed stdout before listening');
  })();
  const address = await Promise.race([listening, exited]);
  exited.catch(() => undefined);
  // Keep draining stdout so the child never blocks on a full pipe.
  child.stdout?.resume();
  return { child, address };
}

/** What grpc-fuzz-server.ts prints before the address. */
const READY_PREFIX = 'INFLOW_FUZZ_GRPC ';

describe('gRPC fuzzing', () => {
  let server: ChildProcess;
  let client: GrpcTestClient;
  let baseline: { predict: unknown; infer: unknown };

  async function call(service: GrpcServiceName, method: string, body: Buffer): Promise<Answer> {
    try {
      const response = await client.unaryBytes(service, method, body, { deadline: DEADLINE_MS });
      return { code: S.OK, details: '', response };
    } catch (error) {
      const e = error as grpc.ServiceError;
      return { code: e.code, details: e.details };
    }
  }

  /** Valid Predict and ModelInfer answers, decoded (compared before and after fuzzing). */
  async function validAnswers(): Promise<{ predict: unknown; infer: unknown }> {
    const deadline = { deadline: DEADLINE_MS };
    const predict = await client.unaryBytes(PREDICTION, 'Predict', encode('tensorflow.serving.PredictRequest', validPredict), deadline);
    const infer = await client.unaryBytes(INFERENCE, 'ModelInfer', encode('inference.ModelInferRequest', validModelInfer), deadline);
    const options = { longs: String, enums: String, bytes: String };
    const { response: predictType } = methodTypes(PREDICTION, 'Predict');
    const { response: inferType } = methodTypes(INFERENCE, 'ModelInfer');
    return {
      predict: predictType.toObject(predictType.decode(predict), options),
      infer: inferType.toObject(inferType.decode(infer), options),
    };
  }

  before(async () => {
    const started = await startServerProcess();
    server = started.child;
    client = createGrpcTestClient(started.address);
    baseline = await validAnswers();
  });
  after(async () => {
    client?.close();
    if (server && server.exitCode === null && server.signalCode === null) {
      const exited = once(server, 'exit');
      server.stdin?.end();
      await exited;
    }
  });

  for (const [service, method] of METHODS) {
    it(`answers ${PER_METHOD} random and mutated ${method} messages with a clean status, never INTERNAL, UNKNOWN or a hang`, async (t) => {
      const { request, response } = methodTypes(service, method);
      const seen = new Map<string, number>();
      let decoded = 0;
      const check = async (body: Buffer): Promise<void> => {
        const answer = await call(service, method, body);
        const name = grpcStatusName(answer.code);
        seen.set(name, (seen.get(name) ?? 0) + 1);
        if (!answer.details.includes('not a valid protobuf message')) decoded++;
        const what = `${method} answered ${name} "${answer.details}" to ${hex(body)}`;
        assert.ok(ACCEPTABLE.has(answer.code), what);
        if (answer.response) assert.doesNotThrow(() => response.decode(answer.response as Buffer), `${what}: the response decodes`);
        else assert.notEqual(answer.details.trim(), '', `${what}: a non-OK status says why`);
      };
      await fc.assert(
        fc.asyncProperty(
          fc.array(fuzzBodies(request.fullName.slice(1)).map(printable), { minLength: BATCH, maxLength: BATCH }),
          async (bodies) => {
            await Promise.all(bodies.map(check));
          },
        ),
        // No shrinking: each failure names its body in hex, and a batch's other bodies are unrelated.
        { numRuns: Math.ceil(RUNS / BATCH), seed: SEED, endOnFailure: true },
      );
      t.diagnostic(`${method}: ${[...seen].map(([name, n]) => `${name} ${n}`).join(', ')}`);
      // Most bodies must get past the protobuf decoder to the method's own checks, or the fuzzing tests little.
      assert.ok(decoded > PER_METHOD / 2, `${decoded} of ${PER_METHOD} bodies decoded as a ${request.name}`);
      const live = await client.unary<{ live: boolean }>(INFERENCE, 'ServerLive', {}, { deadline: DEADLINE_MS });
      assert.equal(live.live, true);
    });
  }

  it('keeps the connection when an error message would echo a 300 KB model name', async () => {
    const huge = encode('inference.ModelMetadataRequest', { name: 'x'.repeat(300_000) });
    const [bad, good] = await Promise.all([
      call(INFERENCE, 'ModelMetadata', huge),
      call(INFERENCE, 'ModelMetadata', encode('inference.ModelMetadataRequest', { name: 'digits-mlp' })),
    ]);
    assert.equal(bad.code, S.NOT_FOUND, bad.details);
    assert.ok(bad.details.length < 5000, `the message is cut (${bad.details.length} characters)`);
    assert.equal(good.code, S.OK, good.details);
  });

  it('still answers valid Predict and ModelInfer requests as before the fuzzing', async () => {
    assert.equal(server.exitCode, null, 'the server process is still running');
    assert.deepEqual(await validAnswers(), baseline);
    const ready = await client.unary<{ ready: boolean }>(INFERENCE, 'ModelReady', { name: 'digits-mlp' }, { deadline: DEADLINE_MS });
    assert.equal(ready.ready, true);
  });
});
