/**
 * `inflow serve`'s readiness follows Kafka where the server serves through it (the Kafka-native
 * endpoint): while the client's connection state says the cluster is unreachable, REST
 * `/v2/health/ready` answers 503 with the reason, gRPC health NOT_SERVING and OIP ServerReady
 * false; ready again once it is back. A server that only follows a models topic keeps serving
 * the models it loaded: it stays ready and says it is degraded (the ready body's `degraded`
 * list, `inflow_server_kafka_connected` 0). The state is the Kafka client's shared monitor
 * (src/kafka/connection.ts), flipped here as the real client's retries flip it.
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

async function connectedGauge(server: RunningModelServer): Promise<Record<string, number>> {
  const metric = await server.inference.metrics.registry.getSingleMetric('inflow_server_kafka_connected')?.get();
  return Object.fromEntries((metric?.values ?? []).map((v) => [String(v.labels.uses), v.value]));
}

for (const variant of ['model sync only', 'the Kafka-native endpoint and model sync'] as const) {
  const endpoint = variant !== 'model sync only';
  describe(`model server readiness with Kafka: ${variant}`, () => {
    const connection = createConnectionMonitor();
    const memory = createMemoryClient();
    const client: KafkaClient = Object.assign(Object.create(memory) as KafkaClient, { kind: 'kafka' as const, connection });
    let repo: string;
    let server: RunningModelServer;
    let grpc: GrpcTestClient;
    const ready = async () => {
      const res = await fetch(`http://${server.restAddress}/v2/health/ready`);
      return { status: res.status, body: (await res.json()) as { ready: boolean; reason?: string; degraded?: string[] } };
    };
    const health = () => grpc.unary(GrpcServiceName.HEALTH, 'Check', { service: '' });
    const serverReady = () => grpc.unary(GrpcServiceName.INFERENCE, 'ServerReady', {});
    const uses = endpoint ? 'the Kafka-native endpoint, model sync' : 'model sync';

    before(async () => {
      repo = await exampleRepository();
      if (endpoint) {
        const admin = memory.admin();
        await admin.createTopics(['inflow-requests', 'inflow-responses', 'inflow-errors'].map((topic) => ({ topic, partitions: 1 })));
        await admin.close();
      }
      server = await startModelServer({
        modelRepository: repo,
        load: loadServable,
        pollMs: 50,
        rest: { host: '127.0.0.1', port: 0 },
        grpc: { host: '127.0.0.1', port: 0 },
        modelSync: { client, topic: 'models', startTimeoutMs: 10_000 },
        ...(endpoint ? { kafka: { client } } : {}),
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

    const outcome = endpoint
      ? 'is not ready, with the reason, while the cluster is unreachable, and ready again once it is back'
      : 'stays ready and says it is degraded while the cluster is unreachable, and not degraded once it is back';
    it(outcome, async () => {
      assert.deepEqual(await ready(), { status: 200, body: { ready: true } });
      assert.deepEqual(await health(), { status: 'SERVING' });
      assert.deepEqual(await serverReady(), { ready: true });
      assert.deepEqual(await connectedGauge(server), { [uses]: 1 });

      connection.failed(new InflowError('KAFKA_UNREACHABLE', 'connect ECONNREFUSED 127.0.0.1:9092'));
      const down = await ready();
      assert.deepEqual(await connectedGauge(server), { [uses]: 0 });
      if (endpoint) {
        assert.equal(down.status, 503);
        assert.equal(down.body.ready, false);
        assert.match(
          down.body.reason ?? '',
          /^Kafka unreachable since \S+ \(KAFKA_UNREACHABLE: connect ECONNREFUSED 127\.0\.0\.1:9092\); the Kafka-native endpoint and model sync wait for it$/,
        );
        assert.deepEqual(await health(), { status: 'NOT_SERVING' });
        assert.deepEqual(await serverReady(), { ready: false });
      } else {
        assert.equal(down.status, 200);
        assert.equal(down.body.ready, true);
        assert.equal(down.body.degraded?.length, 1);
        assert.match(
          down.body.degraded?.[0] ?? '',
          /^Kafka unreachable since \S+ \(KAFKA_UNREACHABLE: connect ECONNREFUSED 127\.0\.0\.1:9092\); model sync waits for it; the loaded models keep serving$/,
        );
        assert.deepEqual(await health(), { status: 'SERVING' });
        assert.deepEqual(await serverReady(), { ready: true });
        // It answers with the models it has.
        const res = await fetch(`http://${server.restAddress}/v2/models/digits-mlp/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], data: new Array(64).fill(0) }] }),
        });
        assert.equal(res.status, 200, await res.clone().text());
      }

      connection.succeeded();
      assert.deepEqual(await ready(), { status: 200, body: { ready: true } });
      assert.deepEqual(await health(), { status: 'SERVING' });
      assert.deepEqual(await serverReady(), { ready: true });
      assert.deepEqual(await connectedGauge(server), { [uses]: 1 });
    });
  });
}
