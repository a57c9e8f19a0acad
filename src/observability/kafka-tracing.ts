/**
 * Tracing of Kafka records, after the OpenTelemetry messaging semantic conventions
 * (https://opentelemetry.io/docs/specs/semconv/messaging/kafka/): the W3C trace context travels
 * in record headers (`traceparent`, `tracestate`, as the Java and Go instrumentations write
 * them); a consumed record gets a CONSUMER span `process <topic>` whose parent is the context its
 * headers carry; an output record gets a PRODUCER span `send <topic>` and that span's context in
 * its headers, so a consumer downstream continues the same trace. Callers check
 * {@link tracingActive} first: these helpers assume tracing is on.
 */
import { type Context, context, ROOT_CONTEXT, type Span, SpanKind, trace } from '@opentelemetry/api';
import { extractContext, inflowTracer, injectContext } from './tracing.ts';

/** A Kafka record header, as src/kafka/types.ts has it. */
type Header = readonly [key: string, value: Buffer];

/** The trace context headers inflow reads and replaces. */
export const TRACE_HEADERS: readonly string[] = ['traceparent', 'tracestate', 'baggage'];

function lastHeader(headers: readonly Header[], name: string): string | undefined {
  for (let i = headers.length - 1; i >= 0; i--) {
    const h = headers[i];
    if (h && h[0] === name) return h[1].toString('utf8');
  }
  return undefined;
}

/** The context a record's headers carry (a root context when they carry none). */
export function contextOfHeaders(headers: readonly Header[]): Context {
  return extractContext((name) => lastHeader(headers, name), ROOT_CONTEXT);
}

/** `headers` with the trace context of `ctx` instead of any they had. */
export function headersWithContext(headers: readonly Header[], ctx: Context = context.active()): Header[] {
  const out: Header[] = headers.filter(([k]) => !TRACE_HEADERS.includes(k));
  injectContext((name, value) => out.push([name, Buffer.from(value)]), ctx);
  return out;
}

/** Where a consumed record came from. */
export interface ConsumedAt {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint | number | string;
  readonly headers: readonly Header[];
  readonly group?: string | undefined;
}

/** Starts the CONSUMER span of one consumed record, child of the context in its headers. */
export function startProcessSpan(record: ConsumedAt): { span: Span; context: Context } {
  const parent = contextOfHeaders(record.headers);
  const span = inflowTracer().startSpan(
    `process ${record.topic}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'kafka',
        'messaging.operation.type': 'process',
        'messaging.operation.name': 'process',
        'messaging.destination.name': record.topic,
        'messaging.destination.partition.id': String(record.partition),
        'messaging.kafka.offset': Number(record.offset),
        ...(record.group ? { 'messaging.consumer.group.name': record.group } : {}),
      },
    },
    parent,
  );
  return { span, context: trace.setSpan(parent, span) };
}

/**
 * The PRODUCER span of one output record (`send <topic>`, child of the active context), ended at
 * once: it marks the hand-over to the producer, whose batching and acks are the runner's. Returns
 * the record's headers carrying this span's context.
 */
export function sendSpanHeaders(topic: string, headers: readonly Header[]): Header[] {
  const span = inflowTracer().startSpan(`send ${topic}`, {
    kind: SpanKind.PRODUCER,
    attributes: {
      'messaging.system': 'kafka',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'send',
      'messaging.destination.name': topic,
    },
  });
  const out = headersWithContext(headers, trace.setSpan(context.active(), span));
  span.end();
  return out;
}
