/**
 * `inflow serve`'s readiness follows Kafka where the server uses it (model sync here; the
 * Kafka-native endpoint the same way): while the client's connection state says the cluster is
 * unreachable, REST `/v2/health/ready` answers 503 with the reason, gRPC health NOT_SERVING and
 * OIP ServerReady false; ready again once it is back. The state is the Kafka client's shared
 * monitor (src/kafka/connection.ts), flipped here as the real client's retries flip it.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { InflowError } from '../errors.ts';
import { createConnectionMonitor } from '../kafka/connection.ts';
import { createMemoryClient } from '../kafka/memory/memory-client.ts';
import type { KafkaClient } from '../kafka/types.ts';
import { loadServable } from '../runtime/index.ts';
import { GrpcServiceName } from './grpc/grpc-protos.ts';
import { createGrpcTestClient, type GrpcTestClient } from './grpc/grpc-test-client.ts';
import { type RunningModelServer, startModelServer } from './model-server.ts';
import { exampleRepository } from './rest/fixtures/example-server.ts';

describe('model server readiness with Kafka', () => {
  const connection = createConnectionMonitor();
  const memory = createMemoryClient();
  const client: KafkaClient = Object.assign(Object.create(memory) as KafkaClient, { kind: 'kafka' as const, connection });
  let repo: string;
  let server: RunningModelServer;
  let grpc: GrpcTestClient;
  const ready = async () => {
    const res = await fetch(`http://${server.restAddress}/v2/health/ready`);
    return { status: res.status, body: (await res.json()) as { ready: boolean; reason?: string } };
  };
  const health = () => grpc.unary(GrpcServiceName.HEALTH, 'Check', { service: '' });
  const serverReady = () => grpc.unary(GrpcServiceName.INFERENCE, 'ServerReady', {});

  before(async () => {
    repo = await exampleRepository();
    server = await startModelServer({
      modelRepository: repo,
      load: loadServable,
      pollMs: 50,
      rest: { host: '127.0.0.1', port: 0 },
      grpc: { host: '127.0.0.1', port: 0 },
      modelSync: { client, topic: 'models', startTimeoutMs: 10_000 },
    });
    grpc = createGrpcTestClient(server.grpcAddress as string);
    // The repository settles new version folders before loading them (it polls the disk).
    while (!(await server.inference.ready())) await new Promise((resolve) => setTimeout(resolve, 20));
  });
  after(async () => {
    grpc?.close();
    await server?.close();
    await memory.close();
    await rm(repo, { recursive: true, force: true });
  });

  it('is not ready, with the reason, while the cluster is unreachable, and ready again once it is back', async () => {
    assert.deepEqual(await ready(), { status: 200, body: { ready: true } });
    assert.deepEqual(await health(), { status: 'SERVING' });
    assert.deepEqual(await serverReady(), { ready: true });

    connection.failed(new InflowError('KAFKA_UNREACHABLE', 'connect ECONNREFUSED 127.0.0.1:9092'));
    const down = await ready();
    assert.equal(down.status, 503);
    assert.equal(down.body.ready, false);
    assert.match(
      down.body.reason ?? '',
      /^Kafka unreachable since \S+ \(KAFKA_UNREACHABLE: connect ECONNREFUSED 127\.0\.0\.1:9092\); model sync waits? for it$/,
    );
    assert.deepEqual(await health(), { status: 'NOT_SERVING' });
    assert.deepEqual(await serverReady(), { ready: false });

    connection.succeeded();
    assert.deepEqual(await ready(), { status: 200, body: { ready: true } });
    assert.deepEqual(await health(), { status: 'SERVING' });
    assert.deepEqual(await serverReady(), { ready: true });
  });
});
