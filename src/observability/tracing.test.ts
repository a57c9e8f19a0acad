import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { context, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { createLogger } from './logger.ts';
import { contextOfHeaders, headersWithContext } from './kafka-tracing.ts';
import { inflowTracer, startTracing, tracesExporterFromEnv, tracingActive } from './tracing.ts';

describe('tracing configuration from the OTEL_* environment', () => {
  it('stays off with no OTEL_* variables, with OTEL_TRACES_EXPORTER=none and with OTEL_SDK_DISABLED=true', async () => {
    assert.equal(tracesExporterFromEnv({}), undefined);
    assert.equal(tracesExporterFromEnv({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }), undefined);
    assert.equal(tracesExporterFromEnv({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' }), undefined);
    assert.equal(await startTracing({ env: {} }), undefined);
    assert.equal(tracingActive(), false);
  });

  it('turns on with OTEL_TRACES_EXPORTER=otlp or an OTLP endpoint', () => {
    assert.equal(tracesExporterFromEnv({ OTEL_TRACES_EXPORTER: 'otlp' }), 'otlp');
    assert.equal(tracesExporterFromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' }), 'otlp');
    assert.equal(tracesExporterFromEnv({ OTEL_TRACES_EXPORTER: 'console' }), 'console');
  });

  it('refuses a bad exporter, sampler, ratio, protocol or batch size, naming the variable', async () => {
    assert.throws(() => tracesExporterFromEnv({ OTEL_TRACES_EXPORTER: 'jaeger' }), {
      code: 'INVALID_ARGUMENT',
      message: /OTEL_TRACES_EXPORTER/,
    });
    const otlp = { OTEL_TRACES_EXPORTER: 'otlp' };
    await assert.rejects(startTracing({ env: { ...otlp, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' } }), {
      code: 'INVALID_ARGUMENT',
      message: /OTEL_EXPORTER_OTLP_PROTOCOL is "grpc"/,
    });
    await assert.rejects(startTracing({ env: { ...otlp, OTEL_TRACES_SAMPLER: 'sometimes' } }), {
      code: 'INVALID_ARGUMENT',
      message: /OTEL_TRACES_SAMPLER/,
    });
    await assert.rejects(startTracing({ env: { ...otlp, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' } }), {
      code: 'INVALID_ARGUMENT',
      message: /OTEL_TRACES_SAMPLER_ARG/,
    });
    await assert.rejects(startTracing({ env: { ...otlp, OTEL_BSP_MAX_QUEUE_SIZE: '-1' } }), {
      code: 'INVALID_ARGUMENT',
      message: /OTEL_BSP_MAX_QUEUE_SIZE/,
    });
    assert.equal(tracingActive(), false);
  });
});

describe('tracing on', () => {
  it('carries the W3C trace context through Kafka headers, replacing an older one, and puts the trace id in log lines', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = await startTracing({ exporter, env: {} });
    assert.ok(tracing);
    try {
      assert.equal(tracingActive(), true);
      const span = inflowTracer().startSpan('upstream');
      const old: [string, Buffer][] = [
        ['traceparent', Buffer.from('00-11111111111111111111111111111111-2222222222222222-01')],
        ['other', Buffer.from('x')],
      ];
      const headers = headersWithContext(old, trace.setSpan(ROOT_CONTEXT, span));
      assert.deepEqual(
        headers.filter(([k]) => k === 'traceparent').map(([, v]) => v.toString()),
        [`00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`],
      );
      assert.ok(
        headers.some(([k]) => k === 'other'),
        'other headers are kept',
      );
      const back = trace.getSpanContext(contextOfHeaders(headers));
      assert.equal(back?.traceId, span.spanContext().traceId);
      assert.equal(back?.spanId, span.spanContext().spanId);

      const lines: string[] = [];
      const sink = new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(chunk.toString());
          done();
        },
      });
      const log = createLogger({ level: 'info', destination: sink });
      context.with(trace.setSpan(ROOT_CONTEXT, span), () => log.info('inside'));
      log.info('outside');
      const [inside, outside] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.equal(inside?.trace_id, span.spanContext().traceId);
      assert.equal(inside?.span_id, span.spanContext().spanId);
      assert.equal(outside?.trace_id, undefined);
      span.end();
      await tracing.forceFlush();
      assert.deepEqual(
        exporter.getFinishedSpans().map((s) => s.name),
        ['upstream'],
      );
    } finally {
      await tracing.shutdown();
    }
    assert.equal(tracingActive(), false);
  });

  it('never fails the traced command when the exporter fails: flush and shutdown resolve, the spans are dropped', async () => {
    const failing = {
      export(): void {
        throw new Error('Concurrent export limit reached');
      },
      shutdown: async (): Promise<void> => undefined,
    };
    const tracing = await startTracing({ exporter: failing, env: {} });
    assert.ok(tracing);
    inflowTracer().startSpan('lost').end();
    await tracing.forceFlush();
    await tracing.shutdown();
    assert.equal(tracingActive(), false);
  });
});
