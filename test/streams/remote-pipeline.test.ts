/**
 * The remote deployment mode on the real broker: the digits pipeline calls inflow's own model
 * server (REST and gRPC, TF Serving and OIP) through the remote client and predicts what the
 * embedded model predicts. When the server stops mid-stream, calls are retried and then the
 * embedded fallback answers — nothing is lost; without a fallback, records are retried and then
 * dead-lettered with UNAVAILABLE — none is silently lost.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRemoteInferencer, type RemoteInferencerOptions, type ResilientInferencer } from '../../src/client/index.ts';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { loadServable } from '../../src/runtime/index.ts';
import { type RunningModelServer, startModelServer } from '../../src/server/model-server.ts';
import type { LocalInference } from '../../src/serving/local-inference.ts';
import type { Inferencer } from '../../src/serving/types.ts';
import { createStreamsRunner, DeadLetterHeader } from '../../src/streams/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import {
  assertMatchesReference,
  assertPerKeyOrder,
  completeness,
  createTopics,
  type DigitsReference,
  digitsReference,
  digitsTopology,
  embeddedInferencer,
  endOffsetSum,
  modelRepository,
  produceDigits,
  readToEnd,
  uniqueName,
  inputOf,
  outputOf,
  waitFor,
  waitForLagZero,
} from './fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();

async function startServer(): Promise<RunningModelServer> {
  return startModelServer({
    modelRepository: await modelRepository(['digits-mlp']),
    load: loadServable,
    rest: { host: '127.0.0.1', port: 0 },
    grpc: { host: '127.0.0.1', port: 0 },
    watch: false,
    shutdownGraceMs: 1000,
  });
}

function urlOf(server: RunningModelServer, protocol: RemoteInferencerOptions['protocol']): string {
  return protocol.endsWith('-rest') ? `http://${server.restAddress}` : (server.grpcAddress ?? '');
}

describe('the digits pipeline with a remote model server on Apache Kafka', { skip: bootstrap ? false : 'no Kafka broker' }, () => {
  let client: KafkaClient;
  let embedded: LocalInference;
  let ref: DigitsReference;
  let server: RunningModelServer | undefined;
  let remote: ResilientInferencer | undefined;

  before(async () => {
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'streams-it-remote' });
    embedded = await embeddedInferencer();
    ref = await digitsReference();
  });
  after(async () => {
    await remote?.close();
    await server?.close();
    await embedded?.close();
    await client?.close();
  });

  /** Fresh input, output and dead-letter topics (4 partitions each) and an application id. */
  async function topics(prefix: string): Promise<{ input: string; output: string; dlq: string; applicationId: string }> {
    const t = {
      input: uniqueName(`${prefix}-in`),
      output: uniqueName(`${prefix}-out`),
      dlq: uniqueName(`${prefix}-dlq`),
      applicationId: uniqueName(`${prefix}-app`),
    };
    await createTopics(client, [t.input, t.output, t.dlq], 4);
    return t;
  }

  for (const protocol of ['oip-grpc', 'oip-rest', 'tfserving-grpc', 'tfserving-rest'] as const) {
    it(`predicts what the embedded model predicts over ${protocol}`, async () => {
      const count = 500;
      server = await startServer();
      remote = createRemoteInferencer({ protocol, url: urlOf(server, protocol) });
      const t = await topics(`remote-${protocol}`);
      await produceDigits(client, t.input, ref, count);
      const runner = createStreamsRunner(digitsTopology(remote, t.input, t.output), {
        client,
        applicationId: t.applicationId,
        instanceId: 'only',
        deadLetterTopic: t.dlq,
        lagIntervalMs: 0,
      });
      await runner.start();
      try {
        await waitForLagZero(client, t.applicationId, t.input);
      } finally {
        await runner.close();
        await remote.close();
        remote = undefined;
        await server.close();
        server = undefined;
      }
      const out = await readToEnd(client, t.output);
      assert.deepEqual(completeness(out, count), { missing: [], duplicates: 0 });
      assert.equal(out.length, count);
      // The reference is the embedded model's answer for each id: the remote server answered the same.
      for (const r of out) assertMatchesReference(outputOf(r), ref);
      assertPerKeyOrder(out);
      assert.equal((await readToEnd(client, t.dlq)).length, 0, 'nothing dead-lettered');
    });
  }

  it('retries and then answers from the embedded fallback when the server stops mid-stream, losing nothing', async (t) => {
    const count = 2000;
    server = await startServer();
    let fallbackRows = 0;
    const fallback: Inferencer = {
      infer: (request, options) => {
        fallbackRows += request.inputs.input?.shape[0] ?? 0;
        return embedded.infer(request, options);
      },
      metadata: (model, version) => embedded.metadata(model, version),
      ready: (model) => embedded.ready(model),
      close: async () => undefined,
    };
    remote = createRemoteInferencer({
      protocol: 'oip-grpc',
      url: urlOf(server, 'oip-grpc'),
      fallback,
      retry: { maxAttempts: 3, initialBackoffMs: 5, maxBackoffMs: 50 },
      timeoutMs: 2000,
    });
    const r = remote;
    const tp = await topics('fallback');
    const runner = createStreamsRunner(digitsTopology(r, tp.input, tp.output), {
      client,
      applicationId: tp.applicationId,
      instanceId: 'only',
      deadLetterTopic: tp.dlq,
      lagIntervalMs: 0,
    });
    await runner.start();
    const admin = client.admin();
    try {
      // The first half is in flight when the server stops; the second half comes after it stopped.
      await produceDigits(client, tp.input, ref, count / 2);
      await waitFor('a first part of the stream to be predicted remotely', async () =>
        (await endOffsetSum(admin, tp.output)) >= 400n ? true : undefined,
      );
      const before = r.stats();
      assert.equal(before.fallbacks, 0, 'the remote server answered so far');
      await server.close();
      server = undefined;
      await produceDigits(client, tp.input, ref, count / 2, count / 2);
      await waitForLagZero(client, tp.applicationId, tp.input);
    } finally {
      await admin.close();
      await runner.close();
    }
    const stats = r.stats();
    t.diagnostic(`remote client: ${JSON.stringify(stats)}; the fallback predicted ${fallbackRows} records`);
    assert.ok(fallbackRows >= count / 2, `the fallback predicted at least the ${count / 2} records sent after the stop`);
    assert.ok(stats.remoteErrors > 0, 'calls to the stopped server failed');
    assert.ok(stats.retries > 0 || stats.shortCircuited > 0, 'failed calls were retried (or the circuit opened)');
    assert.ok(stats.fallbacks > 0, 'the embedded fallback answered');
    assert.equal(stats.failures, 0, 'no call failed for the pipeline');

    const out = await readToEnd(client, tp.output);
    assert.deepEqual(completeness(out, count), { missing: [], duplicates: 0 });
    for (const rec of out) assertMatchesReference(outputOf(rec), ref);
    assertPerKeyOrder(out);
    assert.equal((await readToEnd(client, tp.dlq)).length, 0, 'nothing dead-lettered');
    await r.close();
    remote = undefined;
  });

  it('retries and then dead-letters records with UNAVAILABLE when the server stops and there is no fallback', async (t) => {
    const count = 1000;
    server = await startServer();
    remote = createRemoteInferencer({
      protocol: 'oip-grpc',
      url: urlOf(server, 'oip-grpc'),
      retry: { maxAttempts: 2, initialBackoffMs: 5, maxBackoffMs: 20 },
      timeoutMs: 2000,
    });
    const r = remote;
    const tp = await topics('nofallback');
    const runner = createStreamsRunner(
      digitsTopology(r, tp.input, tp.output, { retry: { maxAttempts: 3, initialBackoffMs: 5, maxBackoffMs: 20 } }),
      { client, applicationId: tp.applicationId, instanceId: 'only', deadLetterTopic: tp.dlq, lagIntervalMs: 0 },
    );
    await runner.start();
    const admin = client.admin();
    try {
      await produceDigits(client, tp.input, ref, count / 2);
      await waitFor('a first part of the stream to be predicted remotely', async () =>
        (await endOffsetSum(admin, tp.output)) >= 200n ? true : undefined,
      );
      await server.close();
      server = undefined;
      await produceDigits(client, tp.input, ref, count / 2, count / 2);
      await waitForLagZero(client, tp.applicationId, tp.input);
    } finally {
      await admin.close();
      await runner.close();
    }
    const out = await readToEnd(client, tp.output);
    const dead = await readToEnd(client, tp.dlq);
    const retries = (await runner.metrics.inferenceRetries.get()).values.reduce((a, v) => a + v.value, 0);
    t.diagnostic(`${out.length} predicted, ${dead.length} dead-lettered; ${retries} pipeline retries; client ${JSON.stringify(r.stats())}`);

    assert.ok(dead.length > 0, 'records were dead-lettered once the server was gone');
    for (const d of dead) {
      assert.equal(d.headers.find(([k]) => k === DeadLetterHeader.CODE)?.[1].toString(), 'UNAVAILABLE');
      assert.equal(d.headers.find(([k]) => k === DeadLetterHeader.STAGE)?.[1].toString(), 'predict');
      assert.equal(d.headers.find(([k]) => k === DeadLetterHeader.RETRIABLE)?.[1].toString(), 'true');
    }
    assert.ok(retries > 0, 'the pipeline retried before giving up');
    const deadSet = new Set(dead.map((rec) => inputOf(rec).id));
    for (let id = count / 2; id < count; id++) assert.ok(deadSet.has(id), `input ${id}, sent after the stop, is dead-lettered`);
    // Every input is accounted for: predicted or dead-lettered, never both, never neither.
    const predicted = out.map((rec) => outputOf(rec).id);
    const deadIds = dead.map((rec) => inputOf(rec).id);
    assert.deepEqual(
      [...predicted, ...deadIds].sort((a, b) => a - b),
      Array.from({ length: count }, (_, i) => i),
    );
    for (const rec of out) assertMatchesReference(outputOf(rec), ref);
    await r.close();
    remote = undefined;
  });
});
