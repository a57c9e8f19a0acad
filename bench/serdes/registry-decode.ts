/**
 * Decode (and encode) cost per record of the same content in each format the pipeline reads:
 * JSON text, Avro, Protobuf and JSON Schema in the Confluent wire format. The content is a
 * digits record `{id, pixels: 64 floats}` (the digits-mlp input), and for the row of a bigger
 * model, `{id, pixels: 784 floats}`. The registry serdes run against a real Schema Registry
 * (SCHEMA_REGISTRY_URL, or a local Apicurio started here); timing starts after the schema is
 * cached, so it measures the codec path a pipeline pays per record. `decode+tensor` adds what a
 * predict step pays next: the pixels field into the model's FP32 input tensor (the field mapping).
 *
 *   node bench/serdes/registry-decode.ts [--records 5000] [--reps 5] [--json]
 */
import { parseArgs } from 'node:util';
import { createSchemaRegistryClient } from '../../src/kafka/schema-registry/registry-client.ts';
import { startLocalRegistry } from '../../src/kafka/schema-registry/local-registry.ts';
import { createRegistrySerde, type SchemaFormat } from '../../src/kafka/schema-registry/registry-serde.ts';
import { type AsyncSerde, jsonSerde } from '../../src/kafka/serdes.ts';
import { compileInputMapping } from '../../src/streams/api/field-mapping.ts';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '20000' },
    reps: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
  },
});
const records = Number(values.records);
const reps = Number(values.reps);

const local = process.env.SCHEMA_REGISTRY_URL ? undefined : await startLocalRegistry();
const url = process.env.SCHEMA_REGISTRY_URL ?? local?.url ?? '';
const client = createSchemaRegistryClient({ url });
const run = Date.now().toString(36);

function schemas(width: number): Record<SchemaFormat, string> {
  return {
    avro: JSON.stringify({
      type: 'record',
      name: `Row${width}`,
      fields: [
        { name: 'id', type: 'long' },
        { name: 'pixels', type: { type: 'array', items: 'float' } },
      ],
    }),
    protobuf: `syntax = "proto3";\nmessage Row${width} { int64 id = 1; repeated float pixels = 2; }\n`,
    'json-schema': JSON.stringify({
      $schema: 'http://json-schema.org/draft-07/schema#',
      title: `Row${width}`,
      type: 'object',
      properties: { id: { type: 'integer' }, pixels: { type: 'array', items: { type: 'number' } } },
      required: ['id', 'pixels'],
    }),
  };
}

/**
 * The best of `reps` passes of the mean µs per call of `fn` over `inputs`: on a shared machine the
 * fastest pass is the one least disturbed by other work (the first pass only warms the JIT up).
 */
function time<T>(inputs: readonly T[], fn: (x: T) => unknown): number {
  const results: number[] = [];
  for (let r = 0; r < reps + 1; r++) {
    const start = process.hrtime.bigint();
    for (const x of inputs) fn(x);
    const us = Number(process.hrtime.bigint() - start) / 1000 / inputs.length;
    if (r > 0) results.push(us); // the first pass warms the JIT up
  }
  return Math.min(...results);
}

const rows: { width: number; format: string; bytes: number; decodeUs: number; toTensorUs: number; encodeUs: number }[] = [];
try {
  for (const width of [64, 784]) {
    // float32 values, as a model row holds them (so every format carries the same numbers).
    const values = Array.from({ length: records }, (_, id) => ({
      id,
      pixels: Array.from({ length: width }, (_, i) => Math.fround(((id * 31 + i * 7) % 170) / 10)),
    }));
    const serdes: [string, AsyncSerde<unknown>][] = [['json', jsonSerde()]];
    for (const [format, schema] of Object.entries(schemas(width)) as [SchemaFormat, string][]) {
      serdes.push([format, createRegistrySerde({ client, format, topic: `bench-${format}-${width}-${run}`, write: { schema } })]);
    }
    const toTensor = compileInputMapping({ input: { field: 'pixels', dtype: 'FP32', shape: [width] } });
    for (const [format, serde] of serdes) {
      await serde.serialize(values[0]); // registers the schema: not part of the timing
      const encoded = values.map((v) => serde.serialize(v) as Buffer);
      await serde.deserialize(encoded[0] as Buffer); // caches the schema by id
      const decodeUs = time(encoded, (b) => serde.deserialize(b));
      const toTensorUs = time(encoded, (b) => toTensor(serde.deserialize(b)));
      const encodeUs = time(values, (v) => serde.serialize(v));
      const bytes = encoded.reduce((a, b) => a + b.length, 0) / encoded.length;
      rows.push({ width, format, bytes: Math.round(bytes), decodeUs, toTensorUs, encodeUs });
    }
  }
} finally {
  await local?.stop();
}

if (values.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
else {
  process.stdout.write(
    `| floats per record | format | bytes/record | decode µs/record | decode+tensor µs/record | encode µs/record |\n|---:|---|---:|---:|---:|---:|\n`,
  );
  for (const r of rows) {
    process.stdout.write(
      `| ${r.width} | ${r.format} | ${r.bytes} | ${r.decodeUs.toFixed(2)} | ${r.toTensorUs.toFixed(2)} | ${r.encodeUs.toFixed(2)} |\n`,
    );
  }
}
