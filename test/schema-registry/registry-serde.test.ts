/**
 * Avro, Protobuf and JSON Schema serdes in the Confluent wire format against the real Schema
 * Registry of the test run (Apicurio's Confluent-compatible API, or SCHEMA_REGISTRY_URL).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSchemaRegistryClient } from '../../src/kafka/schema-registry/registry-client.ts';
import { registrySerdeFromConfig } from '../../src/kafka/schema-registry/registry-from-config.ts';
import { createRegistrySerde } from '../../src/kafka/schema-registry/registry-serde.ts';
import { registryOrSkip } from '../setup/schema-registry.ts';

const url = registryOrSkip();
const run = `${process.pid}-${Date.now().toString(36)}`;

const AVRO = JSON.stringify({
  type: 'record',
  name: 'Transaction',
  namespace: 'inflow.test',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'features', type: { type: 'array', items: 'float' } },
  ],
});
const PROTO = `syntax = "proto3";
package inflow.test;
message Transaction { string id = 1; repeated float features = 2; }
message Score { string id = 1; double score = 2; }
`;
const JSON_SCHEMA = JSON.stringify({
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'Transaction',
  type: 'object',
  properties: { id: { type: 'string' }, features: { type: 'array', items: { type: 'number' } } },
  required: ['id', 'features'],
});

async function settle<T>(value: T | Promise<T>): Promise<T> {
  return value;
}

describe('Schema Registry serdes', { skip: url ? false : 'no Schema Registry (see the global setup message)' }, () => {
  const client = createSchemaRegistryClient({ url: url as string });

  it('writes Avro values framed with magic byte 0 and the registered id, and reads them back', async () => {
    const topic = `avro-${run}`;
    const serde = createRegistrySerde({ client, format: 'avro', topic, write: { schema: AVRO } });
    const bytes = (await settle(serde.serialize({ id: 't1', features: [0.5, 1.5] }))) as Buffer;
    assert.equal(bytes[0], 0);
    const latest = await client.latest(`${topic}-value`);
    assert.equal(bytes.readUInt32BE(1), latest.id);
    // id "t1" (zigzag length 2 → 0x04), a block of 2 little-endian floats (count 2 → 0x04), end of array.
    assert.equal(bytes.subarray(5).toString('hex'), '047431040000003f0000c03f00');
    const reader = createRegistrySerde({ client, format: 'avro', topic });
    const first = reader.deserialize(bytes);
    assert.ok(first instanceof Promise, 'the first record of a schema id waits for the registry');
    const value = (await first) as { id: string; features: Float32Array };
    // Avro arrays of float decode straight into a Float32Array (no JS number per item).
    assert.ok(value.features instanceof Float32Array);
    assert.deepEqual({ id: value.id, features: Array.from(value.features) }, { id: 't1', features: [0.5, 1.5] });
    const second = reader.deserialize(bytes);
    assert.ok(!(second instanceof Promise), 'later records of the same id decode synchronously from the cache');
  });

  it('writes Avro keys under the <topic>-key subject', async () => {
    const topic = `avro-key-${run}`;
    const serde = createRegistrySerde({ client, format: 'avro', topic, isKey: true, write: { schema: '"string"' } });
    const bytes = (await settle(serde.serialize('user-7'))) as Buffer;
    assert.equal(bytes.readUInt32BE(1), (await client.latest(`${topic}-key`)).id);
    assert.equal(await settle(createRegistrySerde({ client, format: 'avro', topic, isKey: true }).deserialize(bytes)), 'user-7');
  });

  it('writes Protobuf with message indexes: [0] as the single byte 0, the second message as [1]', async () => {
    const topic = `proto-${run}`;
    const first = createRegistrySerde({ client, format: 'protobuf', topic, write: { schema: PROTO } });
    const a = (await settle(first.serialize({ id: 'p1', features: [1, 2] }))) as Buffer;
    assert.equal(a[5], 0, 'message index [0] is the single byte 0');
    // Field 2 packed (proto3 default): tag 0x12, 8 bytes, two little-endian floats.
    assert.equal(a.subarray(6).toString('hex'), '0a02703112080000803f00000040');
    const second = createRegistrySerde({
      client,
      format: 'protobuf',
      topic: `proto-score-${run}`,
      write: { schema: PROTO, recordName: 'inflow.test.Score' },
    });
    const b = (await settle(second.serialize({ id: 'p1', score: 0.25 }))) as Buffer;
    assert.equal(b.subarray(5, 7).toString('hex'), '0202', 'indexes [1]: zigzag count 1, zigzag index 1');
    const reader = createRegistrySerde({ client, format: 'protobuf', topic });
    assert.deepEqual(await settle(reader.deserialize(a)), { id: 'p1', features: [1, 2] });
    assert.deepEqual(await settle(reader.deserialize(b)), { id: 'p1', score: 0.25 });
  });

  it('writes JSON Schema records as framed JSON text and refuses a value the schema does not allow', async () => {
    const topic = `json-${run}`;
    const serde = createRegistrySerde({ client, format: 'json-schema', topic, write: { schema: JSON_SCHEMA } });
    const bytes = (await settle(serde.serialize({ id: 'j1', features: [1, 2] }))) as Buffer;
    assert.equal(bytes.subarray(5).toString(), '{"id":"j1","features":[1,2]}');
    assert.deepEqual(await settle(createRegistrySerde({ client, format: 'json-schema', topic }).deserialize(bytes)), {
      id: 'j1',
      features: [1, 2],
    });
    await assert.rejects(async () => serde.serialize({ id: 'j2', features: 'nope' }), {
      code: 'SERIALIZATION',
      message: /subject "json-.*-value", schema id \d+\): value does not fit JSON Schema Transaction: \/features must be array/,
    });
  });

  it('names subjects by the record and topic-record strategies', async () => {
    const topic = `strategy-${run}`;
    const ns = `inflow.s${run.replace(/\W/g, '')}`;
    const schema = JSON.stringify({ type: 'record', name: 'Event', namespace: ns, fields: [{ name: 'x', type: 'int' }] });
    await settle(
      createRegistrySerde({ client, format: 'avro', topic, subjectNameStrategy: 'record', write: { schema } }).serialize({ x: 1 }),
    );
    await settle(
      createRegistrySerde({ client, format: 'avro', topic, subjectNameStrategy: 'topic-record', write: { schema } }).serialize({ x: 1 }),
    );
    assert.equal((await client.latest(`${ns}.Event`)).subject, `${ns}.Event`);
    assert.equal((await client.latest(`${topic}-${ns}.Event`)).subject, `${topic}-${ns}.Event`);
  });

  it('writes with the subject latest version or a fixed schema id when asked to', async () => {
    const topic = `latest-${run}`;
    const v1 = JSON.stringify({ type: 'record', name: 'R', fields: [{ name: 'a', type: 'int' }] });
    const v2 = JSON.stringify({
      type: 'record',
      name: 'R',
      fields: [
        { name: 'a', type: 'int' },
        { name: 'b', type: 'int', default: 0 },
      ],
    });
    const id1 = await client.register(`${topic}-value`, { schemaType: 'AVRO', schema: v1, references: [] });
    const id2 = await client.register(`${topic}-value`, { schemaType: 'AVRO', schema: v2, references: [] });
    const latest = (await settle(
      createRegistrySerde({ client, format: 'avro', topic, write: { useLatest: true } }).serialize({ a: 1, b: 2 }),
    )) as Buffer;
    assert.equal(latest.readUInt32BE(1), id2);
    const fixed = (await settle(
      createRegistrySerde({ client, format: 'avro', topic, write: { schemaId: id1 } }).serialize({ a: 1 }),
    )) as Buffer;
    assert.equal(fixed.readUInt32BE(1), id1);
  });

  it('reads and writes Avro that references a named type registered under another subject', async () => {
    const ns = `inflow.r${run.replace(/\W/g, '')}`;
    const point = JSON.stringify({ type: 'record', name: 'Point', namespace: ns, fields: [{ name: 'x', type: 'double' }] });
    await client.register(`point-${run}`, { schemaType: 'AVRO', schema: point, references: [] });
    const pointVersion = await client.latest(`point-${run}`);
    const shape = JSON.stringify({ type: 'record', name: 'Shape', namespace: ns, fields: [{ name: 'corner', type: `${ns}.Point` }] });
    const topic = `refs-${run}`;
    const serde = createRegistrySerde({
      client,
      format: 'avro',
      topic,
      write: { schema: shape, references: [{ name: `${ns}.Point`, subject: `point-${run}`, version: pointVersion.version }] },
    });
    const bytes = (await settle(serde.serialize({ corner: { x: 2.5 } }))) as Buffer;
    const fresh = createRegistrySerde({ client: createSchemaRegistryClient({ url: url as string }), format: 'avro', topic });
    assert.deepEqual(JSON.parse(JSON.stringify(await settle(fresh.deserialize(bytes)))), { corner: { x: 2.5 } });
  });

  it('fails a record with an unknown schema id as a SERIALIZATION error that names the id', async () => {
    const reader = createRegistrySerde({ client, format: 'avro', topic: `unknown-${run}` });
    const bytes = Buffer.from([0, 0x7f, 0xff, 0xff, 0x01, 0x02]);
    await assert.rejects(async () => reader.deserialize(bytes), {
      code: 'SERIALIZATION',
      message: /schema id 2147483393 is not in the schema registry/,
    });
  });

  it('fails a record without the magic byte as a SERIALIZATION error that says what was expected', () => {
    const reader = createRegistrySerde({ client, format: 'avro', topic: `nomagic-${run}` });
    assert.throws(() => reader.deserialize(Buffer.from('{"id":"x"}')), {
      code: 'SERIALIZATION',
      message:
        /nomagic-.* value: record is not in the Confluent wire format: expected magic byte 0 and a 4-byte schema id, got 10 bytes starting 0x7b22/,
    });
  });

  it('fails a value the output schema cannot hold with the field that did not match', async () => {
    const serde = createRegistrySerde({ client, format: 'avro', topic: `mismatch-${run}`, write: { schema: AVRO } });
    await assert.rejects(async () => serde.serialize({ id: 'x', features: ['a'] }), {
      code: 'SERIALIZATION',
      message: /value does not fit Avro schema inflow\.test\.Transaction: features\.0 = "a"/,
    });
  });

  it('reports an incompatible schema change the registry refuses, naming the subject', async () => {
    const topic = `compat-${run}`;
    const subject = `${topic}-value`;
    const v1 = JSON.stringify({ type: 'record', name: 'C', fields: [{ name: 'a', type: 'int' }] });
    await client.register(subject, { schemaType: 'AVRO', schema: v1, references: [] });
    await client.setCompatibility('BACKWARD', subject);
    // A new field without a default cannot read the old records: BACKWARD refuses it.
    const v2 = JSON.stringify({
      type: 'record',
      name: 'C',
      fields: [
        { name: 'a', type: 'int' },
        { name: 'b', type: 'string' },
      ],
    });
    assert.equal(await client.isCompatible(subject, { schemaType: 'AVRO', schema: v2, references: [] }), false);
    const serde = createRegistrySerde({ client, format: 'avro', topic, write: { schema: v2 } });
    await assert.rejects(async () => serde.serialize({ a: 1, b: 'x' }), {
      code: 'FAILED_PRECONDITION',
      message: new RegExp(`the output schema was refused by the registry for subject "${subject}".*409`),
    });
  });

  it('asks the registry once for a refused output schema: each record fails with the cached reason until the refusal expires', async () => {
    const topic = `refused-${run}`;
    const subject = `${topic}-value`;
    const v1 = JSON.stringify({ type: 'record', name: 'R', fields: [{ name: 'a', type: 'int' }] });
    await client.register(subject, { schemaType: 'AVRO', schema: v1, references: [] });
    await client.setCompatibility('BACKWARD', subject);
    const v2 = JSON.stringify({
      type: 'record',
      name: 'R',
      fields: [
        { name: 'a', type: 'int' },
        { name: 'b', type: 'string' },
      ],
    });
    let registerCalls = 0;
    const counting = {
      ...client,
      register: (s: string, schema: Parameters<typeof client.register>[1]) => (registerCalls++, client.register(s, schema)),
    };
    let clock = 1_000_000;
    const serde = createRegistrySerde({
      client: counting,
      format: 'avro',
      topic,
      write: { schema: v2 },
      refusalTtlMs: 30_000,
      now: () => clock,
    });
    await assert.rejects(async () => serde.serialize({ a: 1, b: 'x' }), { code: 'FAILED_PRECONDITION', message: /409/ });
    for (let i = 0; i < 5; i++) {
      clock += 1_000;
      await assert.rejects(async () => serde.serialize({ a: i, b: 'y' }), {
        code: 'FAILED_PRECONDITION',
        message: new RegExp(`subject "${subject}".*409.*refusal cached: the registry is asked again in ${30 - i - 1} s`),
      });
    }
    assert.equal(registerCalls, 1, 'the refused schema was sent to the registry once, not once per record');
    clock += 30_000;
    await assert.rejects(async () => serde.serialize({ a: 9, b: 'z' }), { code: 'FAILED_PRECONDITION', message: /409/ });
    assert.equal(registerCalls, 2, 'after the refusal expired the registry was asked again');
  });

  it('reads records of older and newer compatible writer schemas with its own Avro reader schema, and dead-letters an incompatible one', async () => {
    const topic = `evolve-${run}`;
    const field = (name: string, type: unknown, extra: object = {}) => ({ name, type, ...extra });
    const v1 = JSON.stringify({
      type: 'record',
      name: 'Reading',
      fields: [field('id', 'string'), field('pixels', { type: 'array', items: 'float' })],
    });
    const v2 = JSON.stringify({
      type: 'record',
      name: 'Reading',
      fields: [field('id', 'string'), field('pixels', { type: 'array', items: 'float' }), field('site', 'string', { default: 'unknown' })],
    });
    const old = (await createRegistrySerde({ client, format: 'avro', topic, write: { schema: v1 } }).serialize({
      id: 'a',
      pixels: [1, 2],
    })) as Buffer;
    const nu = (await createRegistrySerde({ client, format: 'avro', topic, write: { schema: v2 } }).serialize({
      id: 'b',
      pixels: [3],
      site: 'lab',
    })) as Buffer;
    assert.notEqual(old.readUInt32BE(1), nu.readUInt32BE(1), 'two schema versions under the subject');

    // Through the config path a pipeline uses (readerSchema of a topic's format).
    const readV2 = registrySerdeFromConfig(client, { format: 'avro', readerSchema: v2 }, { topic, isKey: false, baseDir: '.' });
    const a = (await readV2.deserialize(old)) as { id: string; site: string };
    assert.deepEqual([a.id, a.site], ['a', 'unknown'], 'an older record gets the reader default');
    const b = (await readV2.deserialize(nu)) as { id: string; site: string; pixels: Float32Array };
    assert.deepEqual([b.id, b.site, Array.from(b.pixels)], ['b', 'lab', [3]]);
    const readV1 = createRegistrySerde({ client, format: 'avro', topic, readerSchema: v1 });
    assert.deepEqual(
      Object.keys((await readV1.deserialize(nu)) as object),
      ['id', 'pixels'],
      'a newer record loses the field the reader lacks',
    );

    const other = JSON.stringify({ type: 'record', name: 'Reading', fields: [field('id', 'long')] });
    const bad = (await createRegistrySerde({ client, format: 'avro', topic: `${topic}-other`, write: { schema: other } }).serialize({
      id: 7,
    })) as Buffer;
    await assert.rejects(async () => readV2.deserialize(bad), {
      code: 'SERIALIZATION',
      message: /schema id \d+: written with Avro schema Reading, which the reader schema Reading cannot read/,
    });
    assert.throws(() => createRegistrySerde({ client, format: 'protobuf', topic, readerSchema: v1 }), { code: 'INVALID_CONFIG' });
  });
});
