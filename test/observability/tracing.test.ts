/**
 * OpenTelemetry tracing end to end, checked in what a real OpenTelemetry Collector received (the
 * global setup starts one: test/setup/otel-collector.ts) over OTLP/HTTP from the SDK that
 * `startTracing` registers: a producer's W3C traceparent in Kafka record headers → the
 * pipeline's consume/decode/predict spans → the gRPC call (metadata) → the model server's RPC,
 * inference, queue and compute spans → the output record, whose traceparent names the pipeline's
 * send span; the Kafka-native endpoint's request → response; a REST call's traceparent.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { createRemoteInferencer, type ResilientInferencer } from '../../src/client/index.ts';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import type { ConsumedRecord } from '../../src/kafka/types.ts';
import { headersWithContext } from '../../src/observability/kafka-tracing.ts';
import { inflowTracer, startTracing, type TracingHandle } from '../../src/observability/tracing.ts';
import { loadServable } from '../../src/runtime/index.ts';
import { startKafkaEndpoint } from '../../src/server/kafka/kafka-endpoint-runner.ts';
import { type RunningModelServer, startModelServer } from '../../src/server/model-server.ts';
import { createStreamsRunner } from '../../src/streams/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import {
  createTopics,
  digitsReference,
  digitsTopology,
  keyOf,
  modelRepository,
  readToEnd,
  uniqueName,
  waitFor,
  waitForLagZero,
} from '../streams/fixtures/streams-fixtures.ts';

const bootstrap = brokerOrSkip();
const collectorEndpoint = process.env.INFLOW_OTELCOL_ENDPOINT;
const collectorFile = process.env.INFLOW_OTELCOL_FILE;
const skip = !bootstrap ? 'no Kafka broker' : !collectorEndpoint || !collectorFile ? 'no OpenTelemetry Collector (needs Go)' : false;

/** A span as the collector's file exporter writes it (OTLP JSON: ids in hex, kind as a number). */
interface CollectedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  links?: { traceId: string; spanId: string }[];
  attributes?: { key: string; value: Record<string, unknown> }[];
}
const KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;

/** Every span the collector wrote so far. */
function collected(): CollectedSpan[] {
  let text: string;
  try {
    text = readFileSync(collectorFile as string, 'utf8');
  } catch {
    return [];
  }
  const spans: CollectedSpan[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const doc = JSON.parse(line) as { resourceSpans?: { scopeSpans?: { spans?: CollectedSpan[] }[] }[] };
    for (const rs of doc.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans.push(...(ss.spans ?? []));
  }
  return spans;
}

/** The one span of `trace` named `name` (and of `kind`) whose parent is `parent`. */
function child(spans: readonly CollectedSpan[], parent: CollectedSpan, name: string, kind?: number): CollectedSpan {
  const found = spans.filter((s) => s.traceId === parent.traceId && s.parentSpanId === parent.spanId && s.name === name);
  const chosen = kind === undefined ? found : found.filter((s) => s.kind === kind);
  assert.equal(
    chosen.length,
    1,
    `expected one span "${name}" under "${parent.name}" (${parent.spanId}); the trace has: ${spans
      .filter((s) => s.traceId === parent.traceId)
      .map((s) => `${s.name}[${s.spanId}←${s.parentSpanId ?? ''}]`)
      .join(', ')}`,
  );
  return chosen[0] as CollectedSpan;
}

/** The trace and parent span ids a record's traceparent header names. */
function traceparentOf(record: ConsumedRecord): { traceId: string; spanId: string } {
  const header = record.headers.find(([k]) => k === 'traceparent');
  assert.ok(header, 'the record carries a traceparent header');
  const [, traceId, spanId] = header[1].toString().split('-');
  return { traceId: traceId as string, spanId: spanId as string };
}

/** Headers of a record sent inside a fresh producer span of ours (the upstream application). */
function producedInSpan(topic: string): { headers: [string, Buffer][]; traceId: string; spanId: string } {
  const span = inflowTracer().startSpan(`send ${topic}`, { kind: SpanKind.PRODUCER });
  const headers = headersWithContext([], trace.setSpan(ROOT_CONTEXT, span)) as [string, Buffer][];
  span.end();
  return { headers, traceId: span.spanContext().traceId, spanId: span.spanContext().spanId };
}

describe('OpenTelemetry tracing through Kafka and the model server, as a real OpenTelemetry Collector received it', { skip }, () => {
  let tracing: TracingHandle | undefined;
  let client: KafkaClient;
  let server: RunningModelServer;
  let remote: ResilientInferencer;

  before(async () => {
    // The exporter reads the standard variables itself; a short batch delay keeps the test quick.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = collectorEndpoint;
    tracing = await startTracing({
      env: { OTEL_TRACES_EXPORTER: 'otlp', OTEL_BSP_SCHEDULE_DELAY: '50' },
      serviceName: 'inflow-tracing-test',
    });
    client = createKafkaClient({ bootstrapServers: bootstrap ?? [], clientId: 'tracing-it' });
    server = await startModelServer({
      modelRepository: await modelRepository(['digits-mlp']),
      load: loadServable,
      rest: { host: '127.0.0.1', port: 0 },
      grpc: { host: '127.0.0.1', port: 0 },
      watch: false,
      shutdownGraceMs: 1000,
    });
    remote = createRemoteInferencer({ protocol: 'oip-grpc', url: server.grpcAddress ?? '' });
  });
  after(async () => {
    await remote?.close();
    await server?.close();
    await client?.close();
    await tracing?.shutdown();
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  });

  /** Waits until the collector has written a span matching `probe` (the SDK exports in batches). */
  async function spansWhere(what: string, probe: (spans: CollectedSpan[]) => boolean): Promise<CollectedSpan[]> {
    await tracing?.forceFlush();
    return waitFor(
      what,
      () => {
        const spans = collected();
        return probe(spans) ? spans : undefined;
      },
      { timeoutMs: 30_000 },
    );
  }

  it('follows one record from its producer through the pipeline and the gRPC call into the server, with the right parents', async () => {
    const ref = await digitsReference();
    const input = uniqueName('trace-in');
    const output = uniqueName('trace-out');
    const dlq = uniqueName('trace-dlq');
    const applicationId = uniqueName('trace-app');
    await createTopics(client, [input, output, dlq], 1);
    const sent = [0, 1, 2].map((id) => ({ id, ...producedInSpan(input) }));
    const producer = client.producer();
    try {
      await producer.send(
        sent.map((s) => ({
          topic: input,
          key: Buffer.from(keyOf(s.id)),
          value: Buffer.from(JSON.stringify({ id: s.id, pixels: ref.pixelsOf(s.id) })),
          headers: s.headers,
        })),
      );
    } finally {
      await producer.close();
    }
    const runner = createStreamsRunner(digitsTopology(remote, input, output), {
      client,
      applicationId,
      instanceId: 'only',
      deadLetterTopic: dlq,
      lagIntervalMs: 0,
    });
    await runner.start();
    try {
      await waitForLagZero(client, applicationId, input);
    } finally {
      await runner.close();
    }
    const out = await readToEnd(client, output);
    assert.equal(out.length, 3);

    const traceIds = new Set(sent.map((s) => s.traceId));
    const spans = await spansWhere(
      'the server spans of the pipeline traces',
      (all) =>
        sent.every((s) => all.some((x) => x.traceId === s.traceId && x.name === `send ${output}`)) &&
        all.some((x) => traceIds.has(x.traceId) && x.name === 'compute'),
    );
    for (const s of sent) {
      const record = out.find((r) => r.key?.toString() === keyOf(s.id)) as ConsumedRecord;
      const consume = spans.find((x) => x.traceId === s.traceId && x.parentSpanId === s.spanId) as CollectedSpan;
      assert.ok(consume, `a span of trace ${s.traceId} has the producer's span as parent`);
      assert.equal(consume.name, `process ${input}`);
      assert.equal(consume.kind, KIND.CONSUMER);
      child(spans, consume, 'deserialize');
      // The output continues the trace: its traceparent is the pipeline's send span.
      const send = child(spans, consume, `send ${output}`, KIND.PRODUCER);
      assert.deepEqual(traceparentOf(record), { traceId: s.traceId, spanId: send.spanId });
      // Every record is linked from the batch span that predicted it (a batch has many parents).
      const predict = spans.find((x) => x.name === 'predict digits-mlp' && (x.links ?? []).some((l) => l.spanId === consume.spanId));
      assert.ok(predict, `a predict span links to record ${s.id}'s process span`);
    }
    // The batch span's parent is its first record's span: that trace runs on into the server.
    const predict = spans.find((x) => x.name === 'predict digits-mlp' && traceIds.has(x.traceId)) as CollectedSpan;
    const rpc = 'inference.GRPCInferenceService/ModelInfer';
    const clientSpan = child(spans, predict, rpc, KIND.CLIENT);
    const serverSpan = child(spans, clientSpan, rpc, KIND.SERVER);
    const infer = child(spans, serverSpan, 'infer digits-mlp');
    child(spans, infer, 'queue');
    child(spans, infer, 'compute');
  });

  it('continues a request trace of the Kafka-native endpoint in its response', async () => {
    const requests = uniqueName('trace-req');
    const responses = uniqueName('trace-resp');
    const errors = uniqueName('trace-err');
    await createTopics(client, [requests, responses, errors], 1);
    const runner = await startKafkaEndpoint(server.inference, {
      client,
      requestTopic: requests,
      responseTopic: responses,
      errorTopic: errors,
      applicationId: uniqueName('trace-endpoint'),
    });
    const sent = producedInSpan(requests);
    try {
      const producer = client.producer();
      try {
        const body = { id: 'traced', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], data: new Array(64).fill(0) }] };
        await producer.send([
          {
            topic: requests,
            key: Buffer.from('k'),
            value: Buffer.from(JSON.stringify(body)),
            headers: [...sent.headers, ['inflow-model', Buffer.from('digits-mlp')]],
          },
        ]);
      } finally {
        await producer.close();
      }
      await waitFor('the response', async () => ((await readToEnd(client, responses)).length === 1 ? true : undefined));
    } finally {
      await runner.close();
    }
    const [response] = await readToEnd(client, responses);
    const parent = traceparentOf(response as ConsumedRecord);
    assert.equal(parent.traceId, sent.traceId, 'the response continues the request trace');
    const spans = await spansWhere('the endpoint spans', (all) => all.some((x) => x.spanId === parent.spanId));
    const consume = spans.find((x) => x.traceId === sent.traceId && x.parentSpanId === sent.spanId) as CollectedSpan;
    assert.equal(consume?.name, `process ${requests}`);
    child(spans, consume, 'decode-request');
    const predict = child(spans, consume, 'predict digits-mlp');
    const infer = child(spans, predict, 'infer digits-mlp');
    child(spans, infer, 'queue');
    child(spans, infer, 'compute');
    child(spans, consume, 'encode-response');
    const send = child(spans, consume, `send ${responses}`, KIND.PRODUCER);
    assert.equal(parent.spanId, send.spanId, "the response's traceparent names the endpoint's send span");
  });

  it("makes a REST call's server span the child of the caller's traceparent", async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const res = await fetch(`http://${server.restAddress}/v2/models/digits-mlp/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${callerSpan}-01` },
      body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], data: new Array(64).fill(0) }] }),
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    const spans = await spansWhere('the REST server span', (all) => all.some((x) => x.traceId === traceId && x.name === 'compute'));
    const serverSpan = spans.find((x) => x.traceId === traceId && x.parentSpanId === callerSpan) as CollectedSpan;
    assert.equal(serverSpan?.kind, KIND.SERVER);
    assert.match(serverSpan.name, /^POST /);
    const infer = child(spans, serverSpan, 'infer digits-mlp');
    child(spans, infer, 'compute');
  });
});
